"""The AWS adapter's pure parts: keys, URIs, settings, the package's declared requirements."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from adapters.aws.api import _raw_body
from adapters.aws.s3_batch import _csv_record, batch_format, output_key
from adapters.aws.s3_model import split_s3_uri
from adapters.aws.settings import AwsSettings
from core.errors import ArtifactError, InvalidTicket

ROOT = Path(__file__).parents[3]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("incoming/a/b.csv", "enriched/a/b.jsonl"),
        ("incoming/x.jsonl", "enriched/x.jsonl"),
        ("incoming/dir.v2/noext", "enriched/dir.v2/noext.jsonl"),
        ("elsewhere/y.ndjson", "enriched/elsewhere/y.jsonl"),
    ],
)
def test_output_keys_mirror_input_keys(key: str, expected: str) -> None:
    assert output_key(key, "incoming/", "enriched/") == expected


def test_errors_file_sits_beside_the_output() -> None:
    assert (
        output_key("incoming/a.csv", "incoming/", "enriched/", ".errors.jsonl")
        == "enriched/a.errors.jsonl"
    )


@pytest.mark.parametrize(
    ("key", "fmt"),
    [("a.CSV", "csv"), ("a.jsonl", "jsonl"), ("a.ndjson", "jsonl"), ("a.json", None), ("a", None)],
)
def test_batch_format_by_extension(key: str, fmt: str | None) -> None:
    assert batch_format(key) == fmt


def test_a_csv_row_with_more_cells_than_the_header_is_refused() -> None:
    row = {"subject": "s", "description": "", "product": "hdfs"}
    assert _csv_record(row) == row
    with pytest.raises(ValueError, match="more cells"):
        _csv_record({"subject": "s", None: ["x"]})  # type: ignore[dict-item]


def test_s3_uris() -> None:
    assert split_s3_uri("s3://bucket/models/v1") == ("bucket", "models/v1/")
    assert split_s3_uri("s3://bucket") == ("bucket", "")
    with pytest.raises(ArtifactError):
        split_s3_uri("https://bucket/models/")


def test_bodies_are_bytes_and_bad_base64_names_the_body() -> None:
    assert _raw_body('{"a": "é"}', False) == '{"a": "é"}'.encode()
    assert _raw_body("eyJhIjogMX0=", True) == b'{"a": 1}'
    assert _raw_body(None, False) == b""
    with pytest.raises(InvalidTicket) as raised:
        _raw_body("not base64!", True)
    assert raised.value.problems[0].field == "body"


def test_settings_read_the_same_prefix_as_the_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKET_ENRICH_TICKETS_TABLE", "t1")
    monkeypatch.setenv("TICKET_ENRICH_SUBJECT_MAX_BYTES", "99")
    settings = AwsSettings()
    assert settings.tickets_table == "t1"
    assert settings.limits.subject_bytes == 99
    assert AwsSettings(tickets_table="explicit").tickets_table == "explicit"


def test_the_function_requirements_are_the_core_and_the_aws_extra_without_boto3() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {
        Requirement(spec).name.lower(): str(Requirement(spec).specifier)
        for spec in [*project["dependencies"], *project["optional-dependencies"]["aws"]]
    }
    declared.pop("boto3")
    lines = (ROOT / "deploy" / "aws" / "function" / "requirements.txt").read_text().splitlines()
    shipped = {
        Requirement(line).name.lower(): str(Requirement(line).specifier)
        for line in lines
        if line.strip() and not line.startswith("#")
    }
    assert shipped == declared


def test_item_size_counts_names_and_values_as_dynamodb_does() -> None:
    from adapters.aws.dynamodb_store import ticket_item_bytes
    from core.ports import StoredTicket

    ticket = StoredTicket("id1", None, "t", {"subject": "é"}, {"needs_review": True})
    # pk "ticket#id1", kind, id, received_at, needs_review (BOOL), ticket and enrichment JSON.
    expected = (
        len("pk")
        + len("ticket#id1")
        + len("kind")
        + len("ticket")
        + len("id")
        + len("id1")
        + len("received_at")
        + len("t")
        + len("needs_review")
        + 1
        + len("ticket")
        + len('{"subject": "é"}'.encode())
        + len("enrichment")
        + len('{"needs_review": true}')
    )
    assert ticket_item_bytes(ticket) == expected


@pytest.mark.parametrize("name", ["Tickets", "1tickets", "tickets_prod", "a" * 26])
def test_deploy_refuses_a_stack_name_that_cannot_name_the_bucket(name: str) -> None:
    import argparse

    from core.errors import TicketEnrichError
    from core.settings import Settings
    from deploy.aws.command import run

    with pytest.raises(TicketEnrichError, match="--stack-name"):
        run(argparse.Namespace(stack_name=name, dry_run=True), Settings())

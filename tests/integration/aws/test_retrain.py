"""The retrain function against moto's S3: a closed-ticket export uploaded under closed/ and the
recorded S3 put event → a challenger trained, registered and promoted in the S3 registry; a
worse export refused; a redelivered event and a schedule tick with nothing new trained on
skipped."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.aws import retrain as aws_retrain
from adapters.aws.registry import S3ModelRegistry
from tests.integration.aws.conftest import REGION, FakeLambdaContext, client, load_event
from tests.support import write_tickets

ROWS = 300


def _export(tmp_path: Path, *, inverted: bool = False) -> bytes:
    """Generated closed tickets, one hour apart. ``inverted`` swaps the labels of the older
    three quarters: a challenger trained on it learns the opposite of the truth, while the
    newest fifth (the window both models are judged on) keeps its true labels."""
    source = write_tickets(tmp_path / f"tickets-{inverted}.jsonl", rows=ROWS, seed=11)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    lines = []
    for i, line in enumerate(source.read_text().splitlines()):
        record = json.loads(line)
        record["created_at"] = (start + timedelta(hours=i)).isoformat()
        if inverted and i < ROWS * 3 // 4:
            record["priority"] = "normal" if record["priority"] == "urgent" else "urgent"
        lines.append(json.dumps(record))
    return ("\n".join(lines) + "\n").encode()


def _put_event(bucket: str, key: str) -> dict[str, Any]:
    event = load_event("s3_put_closed_export.json")
    event["Records"][0]["s3"]["bucket"]["name"] = bucket
    event["Records"][0]["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    event["Records"][0]["s3"]["object"]["key"] = key
    return event


@pytest.fixture
def logs() -> Iterator[Callable[[str], list[dict[str, Any]]]]:
    """The function's JSON log lines with a given message, read off the logger's stream."""
    buffer = io.StringIO()
    # The logger keeps the stream it was created with.
    stream = aws_retrain.logger.registered_handler.setStream(buffer)  # type: ignore[attr-defined]

    def lines(message: str) -> list[dict[str, Any]]:
        parsed = [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
        return [line for line in parsed if line.get("message") == message]

    yield lines
    aws_retrain.logger.registered_handler.setStream(stream)  # type: ignore[attr-defined]


@pytest.fixture
def bucket(aws_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """A fresh bucket, and the retrain function's environment as the template sets it."""
    name = f"batches-{uuid.uuid4().hex[:12]}"
    client("s3", aws_env).create_bucket(Bucket=name)
    for variable, value in {
        "TICKET_ENRICH_AWS_ENDPOINT_URL": aws_env,
        "TICKET_ENRICH_AWS_REGION": REGION,
        "TICKET_ENRICH_REGISTRY_BUCKET": name,
        "TICKET_ENRICH_REGISTRY_PREFIX": "models/",
        "TICKET_ENRICH_CLOSED_PREFIX": "closed/",
        "TICKET_ENRICH_RETRAIN_DATA_SPEC": '{"field_columns": ["product"]}',
        "TICKET_ENRICH_RETRAIN_WORK_DIR": str(tmp_path / "work"),
    }.items():
        monkeypatch.setenv(variable, value)
    aws_retrain.retrainer.cache_clear()
    yield name
    aws_retrain.retrainer.cache_clear()


def test_an_export_is_trained_promoted_then_a_worse_one_refused(
    bucket: str, aws_env: str, tmp_path: Path, logs: Callable[[str], list[dict[str, Any]]]
) -> None:
    s3 = client("s3", aws_env)
    registry = S3ModelRegistry(s3, bucket, "models/")
    first_key = "closed/2026-02-01.jsonl"
    s3.put_object(Bucket=bucket, Key=first_key, Body=_export(tmp_path))

    result = aws_retrain.retrain(_put_event(bucket, first_key), FakeLambdaContext())

    (first,) = result["runs"]
    assert first["promoted"] is True and first["champion"] is None, first
    assert first["export"] == f"s3://{bucket}/{first_key}"
    production = registry.production()
    assert production is not None and production.version == first["challenger"]
    assert production.decision == {k: v for k, v in first.items() if k != "export"}
    assert first["window"]["rows"] == ROWS - int(ROWS * 0.8)
    assert production.metrics["test"]["macro_f1"] > 0.9
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="models/")["Contents"]}
    assert {"models/registry.json", f"models/{production.version}/weights.bin"} <= keys
    # The verified artifact comes back out of S3 and serves.
    from core.enricher import load_enricher

    served = load_enricher(registry.fetch(production.version, tmp_path / "fetched"))
    assert served.model_version == production.version
    promoted = logs("challenger promoted")
    assert len(promoted) == 1 and promoted[0]["challenger"] == production.version
    assert promoted[0]["metrics"]["challenger"]["macro_f1"] is not None

    # A worse export: the challenger is registered, judged on the same newest tickets as the
    # champion, and refused; production is untouched and the registry says why.
    worse_key = "closed/2026-03-01.jsonl"
    s3.put_object(Bucket=bucket, Key=worse_key, Body=_export(tmp_path, inverted=True))
    (second,) = aws_retrain.retrain(_put_event(bucket, worse_key), FakeLambdaContext())["runs"]
    assert second["promoted"] is False and second["reason"].startswith("refused: "), second
    assert second["champion"] == production.version
    judged = second["metrics"]
    assert judged["challenger"]["macro_f1"] < judged["champion"]["macro_f1"] - 0.01
    assert registry.get(second["challenger"]).stage == "candidate"
    assert registry.get(second["challenger"]).decision == {
        k: v for k, v in second.items() if k != "export"
    }
    assert registry.production() == production
    refused = logs("challenger refused")
    assert len(refused) == 1 and refused[0]["reason"] == second["reason"]

    # S3 delivers the first event again: its data was judged, nothing is trained.
    (again,) = aws_retrain.retrain(_put_event(bucket, first_key), FakeLambdaContext())["runs"]
    assert again["skipped"] is True and again["version"] == production.version
    assert len(registry.versions()) == 2


def test_the_schedule_trains_on_the_newest_export(
    bucket: str, aws_env: str, tmp_path: Path
) -> None:
    s3 = client("s3", aws_env)
    registry = S3ModelRegistry(s3, bucket, "models/")
    tick = load_event("scheduled_retrain.json")

    # Nothing exported yet: nothing to do.
    assert aws_retrain.retrain(tick, FakeLambdaContext()) == {"runs": []}

    s3.put_object(Bucket=bucket, Key="closed/2026-02-01.jsonl", Body=_export(tmp_path))
    s3.put_object(Bucket=bucket, Key="closed/notes.txt", Body=b"not an export")
    s3.put_object(Bucket=bucket, Key="incoming/2026-09-09.jsonl", Body=b"{}\n")
    (run,) = aws_retrain.retrain(tick, FakeLambdaContext())["runs"]
    assert run["export"] == f"s3://{bucket}/closed/2026-02-01.jsonl"
    assert run["promoted"] is True
    production = registry.production()
    assert production is not None and production.version == run["challenger"]

    # The next tick finds no newer export: the one it finds was judged already.
    (idle,) = aws_retrain.retrain(tick, FakeLambdaContext())["runs"]
    assert idle["skipped"] is True and idle["version"] == production.version
    assert len(registry.versions()) == 1


def test_the_generated_event_with_an_encoded_key_trains_on_the_export_it_names(
    bucket: str, aws_env: str, tmp_path: Path
) -> None:
    event = load_event("s3_put_closed_export_encoded_key.json")
    event["Records"][0]["s3"]["bucket"]["name"] = bucket
    # S3 (and the generator) send the key URL-encoded: no object has this raw key.
    assert event["Records"][0]["s3"]["object"]["key"] == (
        "closed/export%202026%2BQ4%20%28final%29%3D%C3%A9.jsonl"
    )
    key = "closed/export 2026+Q4 (final)=é.jsonl"
    client("s3", aws_env).put_object(Bucket=bucket, Key=key, Body=_export(tmp_path))

    (run,) = aws_retrain.retrain(event, FakeLambdaContext())["runs"]

    assert run["export"] == f"s3://{bucket}/{key}"
    assert run["promoted"] is True


def test_an_object_outside_the_closed_prefix_is_not_trained_on(bucket: str, aws_env: str) -> None:
    client("s3", aws_env).put_object(Bucket=bucket, Key="incoming/x.jsonl", Body=b"{}\n")
    event = _put_event(bucket, "incoming/x.jsonl")
    assert aws_retrain.retrain(event, FakeLambdaContext()) == {"runs": []}


def test_a_bad_export_fails_the_invocation_with_the_column_named(
    bucket: str, aws_env: str, logs: Callable[[str], list[dict[str, Any]]]
) -> None:
    from core.errors import TrainingDataError

    key = "closed/broken.jsonl"
    row = {"subject": "s", "description": "d", "created_at": "2026-01-01T00:00:00Z"}
    client("s3", aws_env).put_object(Bucket=bucket, Key=key, Body=json.dumps(row).encode())
    with pytest.raises(TrainingDataError, match="priority"):
        aws_retrain.retrain(_put_event(bucket, key), FakeLambdaContext())
    failed = logs("retraining failed")
    assert failed and failed[0]["export"] == f"s3://{bucket}/{key}"


def test_unknown_data_spec_fields_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.errors import TrainingDataError

    monkeypatch.setenv("TICKET_ENRICH_RETRAIN_DATA_SPEC", '{"subjet_column": "Summary"}')
    with pytest.raises(TrainingDataError, match="subjet_column"):
        aws_retrain.data_spec(aws_retrain.RetrainSettings())
    monkeypatch.setenv("TICKET_ENRICH_RETRAIN_DATA_SPEC", '{"label_column": "Priority"}')
    assert aws_retrain.data_spec(aws_retrain.RetrainSettings()).label_column == "Priority"

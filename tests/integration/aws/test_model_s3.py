"""The model fetched from moto's S3 into a /tmp-like cache at cold start: checksums verified
on the way, pinned by the SHA-256 of checksums.json, reused by the next cold start."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from adapters.aws import api
from adapters.aws import runtime as aws_runtime
from adapters.aws.s3_model import S3ModelStore, upload_artifact
from core.errors import ArtifactError
from tests.integration.aws.conftest import FakeLambdaContext, client, load_event


@pytest.fixture
def model_uri(aws_env: str, small_model_dir: Path) -> tuple[str, str]:
    s3 = client("s3", aws_env)
    bucket = f"models-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    uri = f"s3://{bucket}/ticket-priority/v1/"
    sha = upload_artifact(s3, small_model_dir, uri)
    return uri, sha


def test_upload_then_fetch_round_trips_the_artifact(
    aws_env: str, model_uri: tuple[str, str], small_model_dir: Path, tmp_path: Path
) -> None:
    uri, sha = model_uri
    assert sha == hashlib.sha256((small_model_dir / "checksums.json").read_bytes()).hexdigest()

    local = S3ModelStore(client("s3", aws_env), tmp_path / "cache").fetch(uri, sha)

    assert local == tmp_path / "cache" / sha
    listed = json.loads((small_model_dir / "checksums.json").read_text())
    for name in [*listed, "checksums.json"]:
        assert (local / name).read_bytes() == (small_model_dir / name).read_bytes()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [sha]  # no partial copy left


def test_a_cold_start_serves_the_model_from_s3_and_the_next_uses_the_cache(
    configure: Any, aws_env: str, model_uri: tuple[str, str], tmp_path: Path
) -> None:
    uri, sha = model_uri
    cache = tmp_path / "tmp-cache"
    configure(
        TICKET_ENRICH_MODEL_DIR=str(tmp_path / "no-bundled-model"),
        TICKET_ENRICH_MODEL_S3_URI=uri,
        TICKET_ENRICH_MODEL_SHA256=sha,
        TICKET_ENRICH_MODEL_CACHE_DIR=str(cache),
    )
    event = load_event("http_post_ticket.json")
    assert api.http_api(event, FakeLambdaContext())["statusCode"] == 201
    assert (cache / sha / "weights.bin").is_file()

    # The next cold start in the same sandbox reads the copy in /tmp, not the model files in S3.
    s3 = client("s3", aws_env)
    bucket, prefix = uri[len("s3://") :].split("/", 1)
    s3.delete_object(Bucket=bucket, Key=prefix + "weights.bin")
    aws_runtime.runtime.cache_clear()  # a new cold start, same environment and /tmp
    again = api.http_api(load_event("http_post_ticket.json"), FakeLambdaContext())
    assert again["statusCode"] == 200  # the same ticket, read back through the cached model


def test_a_tampered_file_in_s3_is_refused_and_nothing_is_cached(
    aws_env: str, model_uri: tuple[str, str], tmp_path: Path
) -> None:
    uri, sha = model_uri
    s3 = client("s3", aws_env)
    bucket, prefix = uri[len("s3://") :].split("/", 1)
    weights = s3.get_object(Bucket=bucket, Key=prefix + "weights.bin")["Body"].read()
    s3.put_object(Bucket=bucket, Key=prefix + "weights.bin", Body=weights[:-8])

    with pytest.raises(ArtifactError, match="weights.bin does not match its checksum"):
        S3ModelStore(s3, tmp_path / "cache").fetch(uri, sha)
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_model_other_than_the_pinned_one_is_refused(
    aws_env: str, model_uri: tuple[str, str], tmp_path: Path
) -> None:
    uri, _ = model_uri
    with pytest.raises(ArtifactError, match="not the pinned"):
        S3ModelStore(client("s3", aws_env), tmp_path / "cache").fetch(uri, "0" * 64)


def test_a_missing_model_is_an_artifact_error(aws_env: str, tmp_path: Path) -> None:
    s3 = client("s3", aws_env)
    bucket = f"empty-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    with pytest.raises(ArtifactError, match="cannot read"):
        S3ModelStore(s3, tmp_path / "cache").fetch(f"s3://{bucket}/nothing/")

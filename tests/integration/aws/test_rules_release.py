"""Priority rules carried to AWS as a released model version, against moto's server: `ticket-enrich
rules release` makes the version, the S3 registry takes it as it takes a trained one, `rollout
aws publish` points a Lambda version at it, and the API handler built from that version's
configuration fires the released rule, while the model it came from stays in the registry
unchanged."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest

from adapters.aws import api
from adapters.aws.registry import S3ModelRegistry
from adapters.local.cli import main
from core.rules import RULES_FORMAT
from tests.integration.aws.conftest import FakeLambdaContext, client, load_event

ZEBRA_TICKET = {"subject": "zebra stampede in the data centre", "description": "please help"}
_ROLE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def _function(endpoint: str, name: str) -> None:
    """An API function with version 1 published behind its ``live`` alias (moto needs no
    Docker for these control-plane calls)."""
    role = client("iam", endpoint).create_role(
        RoleName=name, AssumeRolePolicyDocument=json.dumps(_ROLE_POLICY)
    )["Role"]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
    lam = client("lambda", endpoint)
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": buffer.getvalue()},
        Environment={"Variables": {"TICKET_ENRICH_MODEL_DIR": "/var/task/model"}},
    )
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)


def _post(ticket: dict[str, Any]) -> dict[str, Any]:
    event = load_event("http_post_ticket.json")
    event["body"] = base64.b64encode(json.dumps(ticket).encode()).decode()
    event["isBase64Encoded"] = True
    response = api.http_api(event, FakeLambdaContext())
    assert response["statusCode"] == 201, response["body"]
    enrichment: dict[str, Any] = json.loads(response["body"])["enrichment"]
    return enrichment


def test_released_rules_are_registered_published_and_fire_in_the_lambda_handler(
    aws_env: str,
    configure: Any,
    small_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env)
    s3 = client("s3", aws_env)
    bucket = f"batches-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    registry = S3ModelRegistry(s3, bucket, "models")
    trained = registry.register(small_model_dir)
    registry.set_stage(trained.version, "production", {"reason": "trained"})
    trained_files = {
        o["Key"]: o["ETag"]
        for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"models/{trained.version}/")["Contents"]
    }

    rules = tmp_path / "rules.json"
    rules.write_text(
        json.dumps(
            {
                "format": RULES_FORMAT,
                "version": "edited.4",
                "order": ["normal", "urgent"],
                "rules": [{"name": "zebra", "minimum": "urgent", "phrases": ["zebra stampede"]}],
            }
        )
    )
    released_dir = tmp_path / "released"
    assert (
        main(
            [
                "rules",
                "release",
                str(rules),
                "--model",
                str(small_model_dir),
                "--out",
                str(released_dir),
                "--by",
                "boss",
            ]
        )
        == 0
    )
    version = json.loads(capsys.readouterr().out)["version"]

    entry = registry.register(released_dir, parent=trained.version)
    assert (entry.version, entry.parent) == (version, trained.version)
    registry.set_stage(version, "production", {"reason": "rules edited.4 released"})
    assert registry.get(trained.version).stage == "archived"

    function = f"t{uuid.uuid4().hex[:8]}-http-api"
    _function(aws_env, function)
    published = main(
        [
            "rollout",
            "aws",
            "publish",
            "--function",
            function,
            "--model-version",
            version,
            "--registry",
            f"s3://{bucket}/models/",
        ]
    )
    assert published == 0, capsys.readouterr().err
    variables = client("lambda", aws_env).get_function_configuration(
        FunctionName=function, Qualifier="2"
    )["Environment"]["Variables"]
    assert variables["TICKET_ENRICH_MODEL_S3_URI"] == f"s3://{bucket}/models/{version}/"

    # A cold start of that Lambda version: its model from the registry, checksums pinned.
    configure(
        TICKET_ENRICH_MODEL_DIR=str(tmp_path / "no-bundled-model"),
        TICKET_ENRICH_MODEL_S3_URI=variables["TICKET_ENRICH_MODEL_S3_URI"],
        TICKET_ENRICH_MODEL_SHA256=variables["TICKET_ENRICH_MODEL_SHA256"],
        TICKET_ENRICH_MODEL_CACHE_DIR=str(tmp_path / "cache"),
    )
    enrichment = _post(ZEBRA_TICKET)
    assert enrichment["model"]["version"] == version
    assert (enrichment["priority"]["label"], enrichment["priority"]["rules"]) == (
        "urgent",
        ["zebra"],
    )

    # The trained version is still served as it was: its files in the registry never changed.
    after = {
        o["Key"]: o["ETag"]
        for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"models/{trained.version}/")["Contents"]
    }
    assert after == trained_files
    configure(
        TICKET_ENRICH_MODEL_DIR=str(tmp_path / "no-bundled-model"),
        TICKET_ENRICH_MODEL_S3_URI=f"s3://{bucket}/models/{trained.version}/",
        TICKET_ENRICH_MODEL_SHA256=hashlib.sha256(
            (small_model_dir / "checksums.json").read_bytes()
        ).hexdigest(),
        TICKET_ENRICH_MODEL_CACHE_DIR=str(tmp_path / "cache"),
    )
    before = _post(ZEBRA_TICKET)
    assert before["model"]["version"] == trained.version
    assert "rules" not in before["priority"]

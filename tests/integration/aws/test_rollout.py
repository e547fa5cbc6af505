"""`ticket-enrich rollout aws` against moto's Lambda API on loopback: functions created from a
zip (moto needs no Docker for these control-plane calls), versions published, the ``live``
alias created as SAM's AutoPublishAlias does; then publish a version serving a model of the S3
registry, start with a share, status, promote, and a second rollout rolled back."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest

from adapters.aws.registry import S3ModelRegistry
from adapters.local.cli import main
from tests.integration.aws.conftest import client

HANDLER = b"def handler(event, context):\n    return {'statusCode': 200}\n"


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", HANDLER)
    return buffer.getvalue()


@pytest.fixture
def functions(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, list[str]]:
    """A stack's two API functions, each with version 1 published and the alias on it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env)
    stack = f"t{uuid.uuid4().hex[:8]}"
    iam = client("iam", aws_env)
    role = iam.create_role(
        RoleName=f"{stack}-api",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    lam = client("lambda", aws_env)
    names = [f"{stack}-rest-api", f"{stack}-http-api"]
    for name in names:
        lam.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": _zip()},
            Environment={"Variables": {"TICKET_ENRICH_MODEL_DIR": "/var/task/model"}},
        )
        version = lam.publish_version(FunctionName=name)["Version"]
        lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    return stack, names


def _rollout(
    capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, list[dict[str, Any]], str]:
    code = main(["rollout", "aws", *args])
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines() if line], captured.err


def _publish_code_change(lam: Any, name: str) -> str:
    lam.update_function_configuration(
        FunctionName=name, Environment={"Variables": {"TICKET_ENRICH_ENRICH_SIMILAR": "false"}}
    )
    version: str = lam.publish_version(FunctionName=name)["Version"]
    return version


def test_publish_a_registry_model_start_with_a_share_and_promote(
    functions: tuple[str, list[str]],
    aws_env: str,
    small_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stack, names = functions
    s3 = client("s3", aws_env)
    bucket = f"{stack}-batches"
    s3.create_bucket(Bucket=bucket)
    entry = S3ModelRegistry(s3, bucket, "models").register(small_model_dir)

    code, published, _ = _rollout(
        capsys,
        "publish",
        "--stack-name",
        stack,
        "--model-version",
        entry.version,
        "--registry",
        f"s3://{bucket}/models/",
    )
    assert code == 0
    assert [(p["function"], p["version"]) for p in published] == [(n, "2") for n in names]
    uri = f"s3://{bucket}/models/{entry.version}/"
    checksums = (small_model_dir / "checksums.json").read_bytes()

    lam = client("lambda", aws_env)
    for name in names:
        variables = lam.get_function_configuration(FunctionName=name, Qualifier="2")["Environment"][
            "Variables"
        ]
        assert variables["TICKET_ENRICH_MODEL_S3_URI"] == uri
        assert variables["TICKET_ENRICH_MODEL_SHA256"] == hashlib.sha256(checksums).hexdigest()
        # The other settings are kept; the alias has not moved.
        assert variables["TICKET_ENRICH_MODEL_DIR"] == "/var/task/model"
        alias = lam.get_alias(FunctionName=name, Name="live")
        assert alias["FunctionVersion"] == "1" and not (alias.get("RoutingConfig") or {}).get(
            "AdditionalVersionWeights"
        )

    code, started, err = _rollout(
        capsys, "start", "--stack-name", stack, "--version", "2", "--share", "10"
    )
    assert code == 0, err
    for line, name in zip(started, names, strict=True):
        assert line["function"] == name and line["version"] == "1"
        assert line["shares"] == {"1": 90.0, "2": 10.0}
        assert line["models"] == {"1": "bundled", "2": uri}
        alias = lam.get_alias(FunctionName=name, Name="live")
        assert alias["FunctionVersion"] == "1"
        assert alias["RoutingConfig"]["AdditionalVersionWeights"] == {"2": 0.1}

    # A second rollout while one is in progress is refused; nothing changes.
    code, _, err = _rollout(
        capsys, "start", "--stack-name", stack, "--version", "2", "--share", "50"
    )
    assert code == 2 and "already rolling out version 2" in err

    code, status, _ = _rollout(capsys, "status", "--stack-name", stack)
    assert code == 0 and [s["new_version"] for s in status] == ["2", "2"]

    code, promoted, _ = _rollout(capsys, "promote", "--stack-name", stack)
    assert code == 0
    for line, name in zip(promoted, names, strict=True):
        assert line["version"] == "2" and line["shares"] == {"2": 100.0}
        alias = lam.get_alias(FunctionName=name, Name="live")
        assert alias["FunctionVersion"] == "2"
        assert not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")


def test_rollback_keeps_the_alias_on_the_old_version(
    functions: tuple[str, list[str]], aws_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, names = functions
    lam = client("lambda", aws_env)
    rest = names[0]
    assert _publish_code_change(lam, rest) == "2"

    code, started, err = _rollout(
        capsys, "start", "--function", rest, "--version", "2", "--share", "25"
    )
    assert code == 0, err
    assert [s["shares"] for s in started] == [{"1": 75.0, "2": 25.0}]
    # The other function was not asked for and is untouched.
    other = lam.get_alias(FunctionName=names[1], Name="live")
    assert not (other.get("RoutingConfig") or {}).get("AdditionalVersionWeights")

    code, rolled_back, _ = _rollout(capsys, "rollback", "--function", rest)
    assert code == 0
    assert rolled_back[0]["version"] == "1" and rolled_back[0]["shares"] == {"1": 100.0}
    alias = lam.get_alias(FunctionName=rest, Name="live")
    assert alias["FunctionVersion"] == "1"
    assert not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")

    # Nothing left to promote or roll back.
    code, _, err = _rollout(capsys, "promote", "--function", rest)
    assert code == 2 and "no rollout in progress" in err


def test_a_version_that_does_not_exist_or_already_serves_is_refused(
    functions: tuple[str, list[str]], aws_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    stack, names = functions
    code, _, err = _rollout(
        capsys, "start", "--stack-name", stack, "--version", "7", "--share", "5"
    )
    assert code == 2 and "version 7" in err
    code, _, err = _rollout(
        capsys, "start", "--stack-name", stack, "--version", "1", "--share", "5"
    )
    assert code == 2 and "already serves version 1" in err
    lam = client("lambda", aws_env)
    for name in names:
        alias = lam.get_alias(FunctionName=name, Name="live")
        assert not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")


@pytest.mark.parametrize("share", ["0", "100", "-5", "ten"])
def test_the_share_must_be_a_percentage_from_1_to_99(
    share: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["rollout", "aws", "start", "--version", "2", "--share", share])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--share" in err and ("from 1 to 99" in err or "not a number" in err)

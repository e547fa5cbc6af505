"""The SAM template checked by the tools CI trusts (cfn-lint, `sam validate --lint`), built by
`ticket-enrich deploy aws --dry-run` (a real `sam build`: pip fetches the arm64 wheels), and
the package it builds: small, no training stack, the model inside."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.aws.conftest import ROOT, TEMPLATE, template

SAM_VENV = ROOT / ".tools" / "sam" / "bin"
SETUP_HINT = "run tests/setup.d/20-aws.sh, which installs the AWS SAM CLI and cfn-lint there"


def _tool(name: str) -> str:
    path = SAM_VENV / name
    assert path.exists(), f"{path} is missing: {SETUP_HINT}"
    return str(path)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKET_ENRICH_", "AWS_"))}
    env["SAM_CLI_TELEMETRY"] = "0"
    # No credentials or network to AWS: every step here must work offline.
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    return env


def test_cfn_lint_passes() -> None:
    done = subprocess.run(
        [_tool("cfn-lint"), str(TEMPLATE)], capture_output=True, text=True, env=_env()
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_sam_validate_lint_passes() -> None:
    done = subprocess.run(
        [_tool("sam"), "validate", "--lint", "--template-file", str(TEMPLATE)],
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is a valid SAM Template" in done.stdout + done.stderr


def _statements(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        if "Effect" in node and ("Action" in node or "NotAction" in node):
            found.append(node)
        for value in node.values():
            found += _statements(value)
    elif isinstance(node, list):
        for value in node:
            found += _statements(value)
    return found


def test_every_iam_statement_names_its_actions_and_resources() -> None:
    resources = template()["Resources"]
    roles = {
        k: v
        for k, v in resources.items()
        if v["Type"] in ("AWS::IAM::Role", "AWS::IAM::ManagedPolicy")
    }
    statements = _statements({k: v["Properties"] for k, v in roles.items()})
    assert len(statements) >= 15
    for statement in statements:
        if statement.get("Action") == "sts:AssumeRole":
            continue
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert all("*" not in a for a in actions), statement
        resource = json.dumps(statement["Resource"])
        assert resource != '"*"' and ':*"' not in resource and '"*"' not in resource, statement
    # No function falls back to SAM's generated role (which attaches AWS managed policies).
    functions = [v for v in resources.values() if v["Type"] == "AWS::Serverless::Function"]
    assert len(functions) == 6
    assert all("Role" in f["Properties"] and "Policies" not in f["Properties"] for f in functions)


def test_the_code_and_the_template_declare_the_same_table() -> None:
    from adapters.aws.dynamodb_store import TABLE_DEFINITION

    declared = template()["Resources"]["TicketsTable"]["Properties"]
    for key, value in TABLE_DEFINITION.items():
        assert declared[key] == value, key


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory, small_model_dir: Path) -> tuple[str, Path]:
    build_dir = tmp_path_factory.mktemp("aws-build")
    _tool("sam")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "adapters.local.cli",
            "deploy",
            "aws",
            "--dry-run",
            "--model",
            str(small_model_dir),
            "--build-dir",
            str(build_dir),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=540,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, build_dir


def test_the_dry_run_prints_what_would_be_created_and_deploys_nothing(
    dry_run: tuple[str, Path],
) -> None:
    out, _ = dry_run
    for kind, name in [
        ("AWS::Serverless::Function", "RestApiFunction"),
        ("AWS::Serverless::Function", "KinesisFunction"),
        ("AWS::Serverless::Api", "RestApi"),
        ("AWS::Serverless::HttpApi", "HttpApi"),
        ("AWS::DynamoDB::Table", "TicketsTable"),
        ("AWS::S3::Bucket", "BatchBucket"),
        ("AWS::Kinesis::Stream", "TicketStream"),
        ("AWS::CloudWatch::Alarm", "RestApiThrottles"),
    ]:
        assert any(kind in line and line.split()[-1] == name for line in out.splitlines()), name
    assert "dry run: nothing was uploaded or deployed" in out
    assert "model bundled under /var/task/model" in out


def test_the_package_has_the_model_and_the_adapter_and_no_training_stack(
    dry_run: tuple[str, Path], small_model_dir: Path
) -> None:
    from deploy.aws.package import function_dirs, measure

    _, build_dir = dry_run
    functions = function_dirs(build_dir)
    assert [f.name for f in functions] == [
        "HttpApiFunction",
        "KinesisFunction",
        "OutboxFunction",
        "RestApiFunction",
        "RetrainFunction",
        "S3BatchFunction",
    ]
    serving = [f for f in functions if f.name != "RetrainFunction"]
    assert all(measure(f).forbidden == [] for f in serving)
    package = functions[0]
    report = measure(package)
    assert report.zipped_bytes < 25 * 1024 * 1024
    assert not report.bundles_boto3  # the Lambda runtime provides boto3
    for module in (
        "adapters/aws/api.py",
        "adapters/aws/handlers.py",
        "adapters/helpdesk/zendesk.py",
        "core/intake.py",
    ):
        assert (package / module).is_file(), module
    assert not (package / "adapters" / "local").exists()
    assert not (package / "training").exists()
    for name in json.loads((small_model_dir / "checksums.json").read_text()):
        assert (package / "model" / name).read_bytes() == (small_model_dir / name).read_bytes()
    for top in ("pydantic_core", "aws_lambda_powertools", "httpx", "eld", "vaderSentiment"):
        assert (package / top).is_dir(), top
    # The wheels are Lambda's (Linux arm64), not this machine's.
    (native,) = (package / "pydantic_core").glob("_pydantic_core*.so")
    assert "aarch64" in native.name


def test_the_retrain_package_has_the_training_stack_within_lambdas_limit_and_no_model(
    dry_run: tuple[str, Path],
) -> None:
    from deploy.aws.command import UNZIPPED_LIMIT_BYTES
    from deploy.aws.package import measure

    out, build_dir = dry_run
    package = build_dir / "RetrainFunction"
    report = measure(package)
    assert {"sklearn", "scipy", "numpy", "training"} <= set(report.forbidden)
    assert report.unzipped_bytes < UNZIPPED_LIMIT_BYTES
    assert report.model_bytes == 0 and not (package / "model").exists()
    assert not report.bundles_boto3
    assert not (package / "matplotlib").exists()
    assert not list((package / "sklearn").rglob("tests"))
    for module in ("adapters/aws/retrain.py", "adapters/aws/registry.py", "training/retrain.py"):
        assert (package / module).is_file(), module
    assert not (package / "adapters" / "local").exists()
    # python3.12's wheels (Amazon Linux 2023), for Lambda's arm64.
    assert list((package / "sklearn").rglob("*.cpython-312-aarch64-linux-gnu.so"))
    line = next(x for x in out.splitlines() if x.strip().startswith("RetrainFunction"))
    assert "model 0.0 MB" in line


def test_the_serving_functions_run_snapstart_versions_on_python_3_12() -> None:
    doc = template()
    assert doc["Globals"]["Function"]["Runtime"] == "python3.12"
    functions = {
        name: r["Properties"]
        for name, r in doc["Resources"].items()
        if r["Type"] == "AWS::Serverless::Function" and name != "RetrainFunction"
    }
    assert len(functions) == 5
    for name, properties in functions.items():
        assert properties["SnapStart"] == {"ApplyOn": "PublishedVersions"}, name
        assert properties["AutoPublishAlias"] == "live", name
        # The hooks are registered by the module Lambda imports for the handler.
        module = properties["Handler"].rsplit(".", 1)[0]
        assert (
            "register_snapstart_hooks()" in (ROOT / (module.replace(".", "/") + ".py")).read_text()
        )


def test_the_batch_functions_can_send_to_the_dead_letter_queue_they_are_given() -> None:
    from adapters.aws.settings import AwsSettings

    resources = template()["Resources"]
    assert "dead_letter_queue_url" in AwsSettings.model_fields
    for function, role in (("S3BatchFunction", "S3BatchRole"), ("KinesisFunction", "KinesisRole")):
        variables = resources[function]["Properties"]["Environment"]["Variables"]
        assert variables["TICKET_ENRICH_DEAD_LETTER_QUEUE_URL"] == "RejectedRecords"
        statements = _statements(resources[role]["Properties"])
        sends = [s for s in statements if s["Action"] == "sqs:SendMessage"]
        assert any("RejectedRecords.Arn" in json.dumps(s["Resource"]) for s in sends), role

"""deploy/spark's EMR Serverless job runs, filled in as the README says and sent with boto3 to
moto's server: the requests `aws emr-serverless start-job-run --cli-input-json` sends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.aws.conftest import client

DEPLOY = Path(__file__).parents[3] / "deploy" / "spark"
ACCOUNT = "123456789012"  # moto's account: it refuses a role of another account


def filled_in(name: str, **values: str) -> dict[str, object]:
    text = (DEPLOY / name).read_text()
    for key, value in values.items():
        text = text.replace(f"REPLACE_WITH_{key}", value)
    assert "REPLACE_WITH_" not in text, "a placeholder the README does not name"
    loaded: dict[str, object] = json.loads(text)
    return loaded


@pytest.mark.parametrize(
    ("name", "command"),
    [("emr-serverless-batch.json", "batch"), ("emr-serverless-train.json", "train")],
)
def test_the_job_runs_start_on_an_application_with_the_custom_image(
    aws_env: str, name: str, command: str
) -> None:
    emr = client("emr-serverless", aws_env)
    application = emr.create_application(
        name="ticket-enrich",
        releaseLabel="emr-7.5.0",
        type="SPARK",
        imageConfiguration={
            "imageUri": f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/ticket-enrich-emr:0.1.0"
        },
    )["applicationId"]
    request = filled_in(name, APPLICATION_ID=application, ACCOUNT=ACCOUNT, BUCKET="tickets")

    started = emr.start_job_run(**request)

    run = emr.get_job_run(applicationId=application, jobRunId=started["jobRunId"])["jobRun"]
    assert run["name"] == request["name"]
    assert run["executionRole"] == f"arn:aws:iam::{ACCOUNT}:role/ticket-enrich-emr-serverless"
    submit = run["jobDriver"]["sparkSubmit"]
    assert submit["entryPoint"] == "s3://tickets/ticket-enrich/main.py"
    assert submit["entryPointArguments"][:3] == [command, "--engine", "spark"]
    assert run["configurationOverrides"]["monitoringConfiguration"] == {
        "s3MonitoringConfiguration": {"logUri": "s3://tickets/ticket-enrich/logs/"}
    }

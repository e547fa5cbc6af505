"""The Spark job definitions in deploy/spark against each service's own request schema and
the command line's own parser. (EMR Serverless is also sent to moto's server:
tests/integration/aws/test_spark_jobs.py; `main.py` runs under `spark-submit` in
tests/integration/spark/test_submit.py.)"""

from __future__ import annotations

import itertools
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ParamValidationError
from botocore.session import get_session
from botocore.validate import validate_parameters
from databricks.sdk.service.jobs import JobSettings
from google.cloud import dataproc_v1
from google.protobuf.json_format import ParseError

from adapters.local.cli import build_parser

DEPLOY = Path(__file__).parents[3] / "deploy" / "spark"
EMR = ("emr-serverless-batch.json", "emr-serverless-train.json")
DATABRICKS = ("databricks-batch-job.json", "databricks-train-job.json")
DATAPROC = ("dataproc-batch.json",)
PLACEHOLDER = re.compile(r"REPLACE_WITH_[A-Z_]+")


def definition(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DEPLOY / name).read_text())
    return loaded


def job_arguments(name: str) -> list[str]:
    """The arguments each service passes to `main.py`."""
    body = definition(name)
    if name in EMR:
        args = body["jobDriver"]["sparkSubmit"]["entryPointArguments"]
    elif name in DATAPROC:
        args = body["pysparkBatch"]["args"]
    else:
        (task,) = body["tasks"]
        args = task["spark_python_task"]["parameters"]
    assert isinstance(args, list) and all(isinstance(a, str) for a in args)
    return args


def test_every_definition_in_the_folder_is_checked_here() -> None:
    assert {p.name for p in DEPLOY.glob("*.json")} == {*EMR, *DATABRICKS, *DATAPROC}


@pytest.mark.parametrize("name", [*EMR, *DATAPROC, *DATABRICKS])
def test_the_arguments_are_a_spark_command_the_command_line_accepts(name: str) -> None:
    args = build_parser().parse_args(job_arguments(name))
    assert args.engine == "spark"
    expected = "train" if "train" in name else "batch"
    assert args.command == expected
    # Everything the job reads and writes is in the cloud's object storage: a cluster's
    # driver has no local copy of the model or the history.
    scheme = {"emr": "s3://", "dat": "gs://", "dbr": "abfss://"}[
        "dbr" if name.startswith("databricks") else name[:3]
    ]
    locations = (
        [args.model, args.input, args.output] if expected == "batch" else [args.data, args.out]
    )
    assert all(loc.startswith(scheme) for loc in locations), locations
    if expected == "batch":
        assert args.overwrite  # a retried job replaces its own half-written output


@pytest.mark.parametrize("name", EMR)
def test_emr_serverless_requests_match_botocores_model(name: str) -> None:
    shape = get_session().get_service_model("emr-serverless").operation_model("StartJobRun")
    body = definition(name)
    # The CLI fills in the idempotency token, as boto3 does.
    validate_parameters({**body, "clientToken": "t"}, shape.input_shape)
    with pytest.raises(ParamValidationError, match="entryPointArgument"):
        bad = json.loads(json.dumps(body).replace("entryPointArguments", "entryPointArgument"))
        validate_parameters({**bad, "clientToken": "t"}, shape.input_shape)
    # Drivers and executors run the image's Python 3.11, where ticket-enrich is installed.
    submit = shlex.split(body["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"])
    conf = dict(v.split("=", 1) for k, v in itertools.pairwise(submit) if k == "--conf")
    dockerfile = (DEPLOY / "emr-serverless.Dockerfile").read_text()
    for key in (
        "spark.emr-serverless.driverEnv.PYSPARK_PYTHON",
        "spark.executorEnv.PYSPARK_PYTHON",
    ):
        assert conf[key] == "/usr/bin/python3.11"
    assert "python3.11 -m pip install" in dockerfile


def test_the_dataproc_batch_is_a_valid_batch_message() -> None:
    text = (DEPLOY / "dataproc-batch.json").read_text()
    batch = dataproc_v1.Batch.from_json(text)  # unknown fields raise
    assert list(batch.pyspark_batch.args) == job_arguments("dataproc-batch.json")
    assert batch.pyspark_batch.main_python_file_uri.endswith("/main.py")
    assert batch.runtime_config.container_image
    with pytest.raises(ParseError, match="mainPythonFile"):
        dataproc_v1.Batch.from_json(text.replace("mainPythonFileUri", "mainPythonFile"))


@pytest.mark.parametrize("name", DATABRICKS)
def test_databricks_jobs_are_job_settings_the_sdk_knows_whole(name: str) -> None:
    body = definition(name)
    # The SDK's model drops what it does not know: a round trip that changes nothing means
    # every key is a Jobs API field.
    assert JobSettings.from_dict(body).as_dict() == body
    bad = {**body, "max_concurrent_run": 1}
    assert JobSettings.from_dict(bad).as_dict() != bad
    (task,) = body["tasks"]
    assert task["spark_python_task"]["python_file"].endswith("/main.py")
    assert any(lib.get("whl", "").endswith(".whl") for lib in task["libraries"])


@pytest.mark.parametrize("name", [*EMR, *DATAPROC, *DATABRICKS])
def test_only_the_documented_placeholders_are_left_to_fill_in(name: str) -> None:
    found = set(PLACEHOLDER.findall((DEPLOY / name).read_text()))
    readme = (DEPLOY / "README.md").read_text()
    assert found and "REPLACE_WITH_" in readme
    assert found <= {
        "REPLACE_WITH_ACCOUNT",
        "REPLACE_WITH_APPLICATION_ID",
        "REPLACE_WITH_BUCKET",
        "REPLACE_WITH_PROJECT",
        "REPLACE_WITH_REGION",
    }, found

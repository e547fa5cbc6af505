"""deploy/spark/main.py under PySpark's own `spark-submit`, as EMR, Dataproc and Databricks run
it: the job's session comes from `spark-submit` (local[2] here), and the `ticket-enrich`
command line runs on it. The JVM runs in a time zone other than UTC, as a cluster may."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pyspark

from adapters.spark.local import run_local_batch
from core import load_enricher
from tests.integration.spark.test_batch import enriched_rows, error_rows
from tests.support import service_env, write_tickets
from training.data import vendored_data_path

MAIN = Path(__file__).parents[3] / "deploy" / "spark" / "main.py"
SPARK_SUBMIT = Path(pyspark.__file__).parent / "bin" / "spark-submit"


def spark_submit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = service_env()
    # The cluster's Python for the driver and the executors; a JVM whose zone is not UTC.
    env.update(PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    env["TZ"] = "America/New_York"
    command = [
        str(SPARK_SUBMIT),
        "--master",
        "local[2]",
        "--conf",
        "spark.driver.host=127.0.0.1",
        "--conf",
        "spark.driver.bindAddress=127.0.0.1",
        "--conf",
        "spark.ui.enabled=false",
        "--conf",
        "spark.sql.shuffle.partitions=4",
        str(MAIN),
        *args,
    ]
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False
    )


def export_head(path: Path, rows: int) -> Path:
    """The first ``rows`` records of the vendored helpdesk export, as the export has them."""
    with vendored_data_path().open(encoding="utf-8", newline="") as source:
        reader = csv.reader(source)
        with path.open("w", encoding="utf-8", newline="") as target:
            writer = csv.writer(target)
            for number, record in enumerate(reader):
                if number > rows:
                    break
                writer.writerow(record)
    return path


def test_the_batch_job_under_spark_submit_enriches_as_the_local_engine(
    model_dir: Path, tmp_path: Path
) -> None:
    data = export_head(tmp_path / "export.csv", 300)
    out = tmp_path / "spark"

    done = spark_submit(
        "batch",
        "--engine",
        "spark",
        "--model",
        str(model_dir),
        "--load-date",
        "2031-01-02",
        str(data),
        str(out),
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert (summary["enriched"], summary["rejected"]) == (300, 0)
    enricher = load_enricher(model_dir)
    local = run_local_batch(
        enricher, str(data), str(tmp_path / "local"), load_date=date(2031, 1, 2)
    )
    assert local.enriched == 300
    got = enriched_rows(out)
    assert got == enriched_rows(tmp_path / "local")
    # Creation dates are UTC dates whatever the cluster's zone: the export's 16/Jul/13 23:47
    # and the like are read with the training format and land on their UTC day.
    for row in got.values():
        assert row["created_date"] == row["ticket"]["created_at"][:10]
    assert error_rows(out / "_errors") == {}


def test_the_training_job_under_spark_submit_writes_an_artifact_serving_loads(
    tmp_path: Path,
) -> None:
    data = write_tickets(tmp_path / "closed.jsonl", rows=160)
    out = tmp_path / "artifact"

    done = spark_submit(
        "train",
        "--engine",
        "spark",
        "--data",
        str(data),
        "--field-column",
        "product",
        "--out",
        str(out),
        "--models-dir",
        str(tmp_path / "models"),
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == str(out)
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["features"]["engine"] == "spark"
    enricher = load_enricher(out)
    enrichment = enricher.enrich({"subject": "outage in cluster 3", "description": "data loss"})[
        "enrichment"
    ]
    assert enrichment["priority"]["label"] in {"urgent", "normal"}
    assert enrichment["model"]["version"] == metadata["version"]

"""The Spark trainer against the single-machine trainer, on the vendored data's reference split."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from core import load_enricher
from core.errors import TrainingDataError
from tests.support import write_tickets
from training.data import PRESETS, DataSpec, vendored_data_path
from training.spark import train_model_spark
from training.train import TrainingResult


def test_spark_trainer_is_within_001_macro_f1_of_the_single_machine_trainer(
    spark: SparkSession, trained: TrainingResult, tmp_path: Path
) -> None:
    # The priority target alone: the comparison is on priority, and each further target is
    # another grid of fits.
    spec = replace(PRESETS["hadoop"], target_columns={})
    result = train_model_spark(spark, str(vendored_data_path()), spec, out_dir=tmp_path / "m")
    single = trained.metadata
    spark_f1 = result.metadata["metrics"]["test"]["macro_f1"]
    single_f1 = single["metrics"]["test"]["macro_f1"]
    print(f"test macro-F1: spark {spark_f1:.4f}, single machine {single_f1:.4f}")
    assert abs(spark_f1 - single_f1) <= 0.01

    # The same split, the same vocabulary, the same hyper-parameters chosen.
    assert result.metadata["training_data"]["split"] == single["training_data"]["split"]
    assert result.metadata["labels"] == single["labels"]
    for key in ("priority_C", "priority_class_weight"):
        assert result.metadata["features"][key] == single["features"][key]
    spark_model = json.loads((tmp_path / "m" / "model.json").read_text())
    single_model = json.loads((trained.artifact_dir / "model.json").read_text())
    assert spark_model["blocks"][0]["terms"] == single_model["blocks"][0]["terms"]

    # Serving loads it unchanged: checksums, format and the self-check on recorded samples.
    enricher = load_enricher(tmp_path / "m")
    assert len(enricher.artifact.samples) >= 3
    enriched = enricher.enrich({"subject": "NameNode fails to start after upgrade"})["enrichment"]
    assert enriched["priority"]["label"] in single["labels"]
    assert "similar" not in enriched and "resolution_time" not in enriched
    assert (tmp_path / "m" / "report" / "report.md").is_file()


def test_train_engine_spark_from_the_command_line(tmp_path: Path) -> None:
    data = write_tickets(tmp_path / "closed.jsonl", rows=80)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKET_ENRICH_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "adapters.local.cli",
            "train",
            "--engine",
            "spark",
            "--master",
            "local[2]",
            "--data",
            str(data),
            "--field-column",
            "product",
            "--out",
            str(tmp_path / "m"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "test macro-F1" in done.stderr
    metadata = json.loads((tmp_path / "m" / "metadata.json").read_text())
    assert set(metadata["targets"]) == {"priority"}
    assert metadata["custom_fields"] == ["product"]
    assert metadata["features"]["engine"] == "spark"
    enricher = load_enricher(tmp_path / "m")
    enriched = enricher.enrich({"subject": "outage", "custom_fields": {"product": "hdfs"}})
    assert enriched["enrichment"]["priority"]["label"] in {"urgent", "normal"}
    assert (tmp_path / "m" / "report" / "report.md").is_file()


def test_bad_training_data_stops_with_the_column_and_row(
    spark: SparkSession, tmp_path: Path
) -> None:
    data = write_tickets(tmp_path / "closed.jsonl", rows=30)
    lines = data.read_text().splitlines()
    bad = json.loads(lines[11])
    bad["created_at"] = "not a time"
    lines[11] = json.dumps(bad)
    data.write_text("\n".join(lines) + "\n")
    with pytest.raises(TrainingDataError, match=r"column 'created_at', row 12: cannot read"):
        train_model_spark(spark, str(data), DataSpec(), out_dir=tmp_path / "m")

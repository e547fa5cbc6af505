"""A model released with other priority rules (`ticket-enrich rules release`) on a local Spark:
the batch job applies the released rules.json, and names the released version."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from pyspark.sql import SparkSession

from adapters.spark.job import run_spark_batch
from core.rules import RULES_FORMAT
from core.rules_release import release_rules
from tests.integration.spark.test_batch import enriched_rows


def test_the_spark_batch_applies_the_released_rules(
    spark: SparkSession, small_model_dir: Path, tmp_path: Path
) -> None:
    spec = {
        "format": RULES_FORMAT,
        "version": "edited.2",
        "order": ["normal", "urgent"],
        "rules": [{"name": "zebra", "minimum": "urgent", "phrases": ["zebra stampede"]}],
    }
    released = release_rules(small_model_dir, spec, tmp_path / "released", by="boss")
    tickets = tmp_path / "tickets.jsonl"
    tickets.write_text(
        json.dumps({"subject": "zebra stampede in the data centre", "external_id": "Z-1"})
        + "\n"
        + json.dumps({"subject": "a question about the configuration", "external_id": "Q-1"})
        + "\n"
    )

    out = tmp_path / "out"
    summary = run_spark_batch(
        spark, str(released.path), str(tickets), str(out), load_date=date(2031, 1, 2)
    )

    assert (summary.enriched, summary.rejected) == (2, 0)
    rows = {r["external_id"]: r for r in enriched_rows(out).values()}
    zebra, question = rows["Z-1"]["enrichment"], rows["Q-1"]["enrichment"]
    assert zebra["model"]["version"] == released.version
    assert (zebra["priority"]["label"], zebra["priority"]["rules"]) == ("urgent", ["zebra"])
    assert rows["Z-1"]["priority"] == "urgent"
    assert "rules" not in question["priority"]

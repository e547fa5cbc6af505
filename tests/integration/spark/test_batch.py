"""The batch job on a local Spark (two cores) against `ticket-enrich enrich` and the local engine."""

from __future__ import annotations

import json
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from adapters.spark.job import run_spark_batch
from adapters.spark.local import run_local_batch
from core import load_enricher
from core.errors import TicketEnrichError
from tests.support import run_cli
from training.data import vendored_data_path

ROOT = Path(__file__).parents[3]
LOAD_DATE = date(2031, 1, 2)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd)


def enriched_rows(path: Path) -> dict[int, dict[str, Any]]:
    table = pads.dataset(path, format="parquet", partitioning="hive").to_table()
    rows = {}
    for row in table.to_pylist():
        row["enrichment"] = json.loads(row["enrichment"])
        row["ticket"] = json.loads(row["ticket"])
        assert row["enrichment"].pop("enriched_at")
        row["created_date"] = str(row["created_date"])
        rows[row["row"]] = row
    assert len(rows) == table.num_rows, "row numbers must be unique"
    return rows


def error_rows(path: Path) -> dict[int, dict[str, Any]]:
    return {r["row"]: r for r in pq.read_table(path).to_pylist()}


def test_spark_batch_on_the_vendored_data_matches_the_cli_row_for_row(
    spark: SparkSession, model_dir: Path, tmp_path: Path
) -> None:
    data = vendored_data_path()
    done = cli("enrich", "--model", str(model_dir), str(data), "--out", "cli.jsonl", cwd=tmp_path)
    rejected_by_cli = {
        json.loads(line)["row"] for line in done.stderr.splitlines() if '"row"' in line
    }
    expected = {}
    for line in (tmp_path / "cli.jsonl").read_text().splitlines():
        record = json.loads(line)
        record["enrichment"].pop("enriched_at")
        expected[record["row"]] = record
    assert len(expected) > 2400 and rejected_by_cli

    out = tmp_path / "spark"
    summary = run_spark_batch(spark, str(model_dir), str(data), str(out), load_date=LOAD_DATE)
    assert (summary.enriched, summary.rejected) == (len(expected), len(rejected_by_cli))
    got = enriched_rows(out)
    assert got.keys() == expected.keys()
    for number, want in expected.items():
        row = got[number]
        assert row["enrichment"] == want["enrichment"], f"row {number}"
        # Both read the export's creation time with the training time format.
        assert row["ticket"] == want["ticket"], f"row {number}"
        created = row["ticket"]["created_at"]
        assert row["created_date"] == created[:10] == row["created_at"].date().isoformat()
        assert row["priority"] == want["enrichment"]["priority"]["label"]
        assert row["external_id"] == want["ticket"]["external_id"]
    errors = error_rows(out / "_errors")
    assert errors.keys() == rejected_by_cli
    assert all("longer than" in e["reason"] for e in errors.values())
    # One directory per creation date, as the rows say.
    dates = {p.name.removeprefix("created_date=") for p in out.glob("created_date=*")}
    assert dates == {r["created_date"] for r in got.values()} and len(dates) > 500

    # The single-process engine, run as a user runs it, writes the same rows.
    local = cli(
        "batch",
        "--engine",
        "local",
        "--model",
        str(model_dir),
        "--load-date",
        "2031-01-02",
        str(data),
        "local",
        cwd=tmp_path,
    )
    assert local.returncode == 0, local.stderr
    assert json.loads(local.stdout)["enriched"] == len(expected)
    assert enriched_rows(tmp_path / "local") == got
    assert error_rows(tmp_path / "local" / "_errors") == errors


def _tickets(path: Path) -> Path:
    lines = [
        json.dumps(
            {
                "subject": "outage",
                "description": "production down",
                "external_id": "A-1",
                "created_at": "2024-02-29T23:30:00-05:00",
            }
        ),
        "",
        "{broken json",
        json.dumps({"subject": "slow upgrade", "requester": {"email": "ann@example.com"}}),
        json.dumps(["not", "an", "object"]),
        json.dumps({"subject": " ", "description": ""}),
        json.dumps({"subject": "crash", "created_at": "2024-03-01T08:00:00Z", "team": "storage"}),
        json.dumps({"subject": "x" * 5000}),
        json.dumps({"subject": "mail me at bob@example.com", "created_at": "2023-12-31T23:59:59Z"}),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bad_records_go_to_the_errors_output_and_never_fail_the_job(
    spark: SparkSession, small_model_dir: Path, tmp_path: Path
) -> None:
    data = _tickets(tmp_path / "tickets.jsonl")
    out = tmp_path / "spark"
    summary = run_spark_batch(spark, str(small_model_dir), str(data), str(out), load_date=LOAD_DATE)
    assert (summary.enriched, summary.rejected) == (4, 4)
    errors = error_rows(out / "_errors")
    assert {n: e["reason"].split(":")[0] for n, e in errors.items()} == {
        3: "is not valid JSON",
        5: "ticket",
        6: "ticket",
        8: "subject",
    }
    assert errors[3]["raw"] == "{broken json"
    assert errors[3]["source"] == data.resolve().as_uri()
    got = enriched_rows(out)
    assert {n: r["created_date"] for n, r in got.items()} == {
        1: "2024-03-01",  # 23:30 at UTC-5 is the next day in UTC
        4: "2031-01-02",  # no creation time: the load date
        7: "2024-03-01",
        9: "2023-12-31",
    }
    assert (
        got[9]["ticket"]["subject"] == "mail me at [EMAIL]"
        or "bob@" not in got[9]["ticket"]["subject"]
    )
    assert got[7]["ticket"]["custom_fields"] == {"team": "storage"}

    enricher = load_enricher(small_model_dir)
    local = run_local_batch(enricher, str(data), str(tmp_path / "local"), load_date=LOAD_DATE)
    assert (local.enriched, local.rejected) == (4, 4)
    assert enriched_rows(tmp_path / "local") == got
    assert error_rows(tmp_path / "local" / "_errors") == errors

    # Parquet in: the same enrichments as the JSONL it came from.
    good = [json.loads(line) for i, line in enumerate(data.read_text().splitlines(), 1) if i in got]
    for ticket in good:
        ticket.setdefault("created_at", None)
        ticket.setdefault("team", None)
        ticket.setdefault("requester", None)
        ticket.setdefault("external_id", None)
        ticket.setdefault("description", None)
    pq.write_table(pa.Table.from_pylist(good), tmp_path / "tickets.parquet")
    summary = run_spark_batch(
        spark,
        str(small_model_dir),
        str(tmp_path / "tickets.parquet"),
        str(tmp_path / "pq"),
        load_date=LOAD_DATE,
    )
    assert (summary.enriched, summary.rejected) == (4, 0)
    from_parquet = enriched_rows(tmp_path / "pq")
    assert [from_parquet[n]["enrichment"] for n in sorted(from_parquet)] == [
        got[n]["enrichment"] for n in sorted(got)
    ]


def test_an_existing_output_is_kept_unless_overwrite_is_asked(
    spark: SparkSession, small_model_dir: Path, tmp_path: Path
) -> None:
    data = _tickets(tmp_path / "tickets.jsonl")
    out = str(tmp_path / "out")
    # The artifact given as a URL travels through Spark's file sources, as from object storage.
    model = small_model_dir.resolve().as_uri()
    run_spark_batch(spark, model, str(data), out, load_date=LOAD_DATE)
    with pytest.raises(TicketEnrichError, match="--overwrite"):
        run_spark_batch(spark, model, str(data), out, load_date=LOAD_DATE)
    again = run_spark_batch(
        spark, model, str(data), out, load_date=date(2032, 1, 1), overwrite=True
    )
    assert again.enriched == 4
    dates = {r["created_date"] for r in enriched_rows(Path(out)).values()}
    # Replaced, not added to: the first run's load date is gone with its rows.
    assert "2032-01-01" in dates and str(LOAD_DATE) not in dates
    # The staged enrichment is removed once both outputs are written.
    assert sorted(p.name for p in Path(out).iterdir() if p.name.startswith("_")) == [
        "_SUCCESS",
        "_errors",
    ]


def test_an_existing_errors_location_is_refused_before_any_work(
    spark: SparkSession, small_model_dir: Path, tmp_path: Path
) -> None:
    data = _tickets(tmp_path / "tickets.jsonl")
    errors = tmp_path / "rejected"
    errors.mkdir()
    (errors / "keep.txt").write_text("an earlier run's file")
    out = tmp_path / "out"
    with pytest.raises(TicketEnrichError, match=f"{errors} exists"):
        run_spark_batch(
            spark,
            str(small_model_dir),
            str(data),
            str(out),
            errors=str(errors),
            load_date=LOAD_DATE,
        )
    assert not out.exists() and (errors / "keep.txt").is_file()
    summary = run_spark_batch(
        spark,
        str(small_model_dir),
        str(data),
        str(out),
        errors=str(errors),
        load_date=LOAD_DATE,
        overwrite=True,
    )
    assert summary.rejected == len(error_rows(errors)) > 0
    assert not (errors / "keep.txt").exists() and not (out / "_errors").exists()

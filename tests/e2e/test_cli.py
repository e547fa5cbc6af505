"""The `ticket-enrich` command as a user runs it: a real process, real files."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support import run_cli, write_tickets


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd)


def test_train_with_no_options_uses_the_vendored_data(tmp_path: Path) -> None:
    result = run("train", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    latest = tmp_path / "models" / "latest"
    assert latest.is_symlink() and (tmp_path / result.stdout.strip()).resolve() == latest.resolve()
    metadata = json.loads((latest / "metadata.json").read_text())
    assert metadata["training_data"]["rows"] == 1733
    assert metadata["labels"] == ["low", "normal", "urgent"]
    assert {"sha256", "spec", "split"} <= set(metadata["training_data"])
    assert {"scikit-learn", "python"} <= set(metadata["libraries"])
    report = latest / "report"
    assert (report / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((report / "metrics.json").read_text())
    assert set(metrics["baselines"]) == {
        "majority",
        "tfidf_linearsvc",
        "tfidf_linearsvc_tuned",
        "tfidf_logreg_balanced",
    }
    assert "test macro-F1" in result.stderr and "grid 1/" in result.stderr

    evaluated = run(
        "evaluate",
        "--model",
        str(latest),
        "--data",
        str(Path(__file__).parents[2] / "training" / "data" / "hadoop_bugs.csv"),
        cwd=tmp_path,
    )
    assert evaluated.returncode == 0, evaluated.stderr
    assert "347: the test window" in evaluated.stdout
    evaluation = json.loads((latest / "evaluation" / "metrics.json").read_text())
    assert evaluation["model"]["macro_f1"] == pytest.approx(metrics["model"]["macro_f1"], abs=1e-9)


def test_train_evaluate_enrich_on_a_custom_export(tmp_path: Path) -> None:
    data = write_tickets(tmp_path / "closed.jsonl")
    trained = run(
        "train",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "m"),
        "--field-column",
        "product",
        "--target",
        "team=team",
        "--target",
        "queue=no_such_column",
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr
    model = tmp_path / "m"
    metadata = json.loads((model / "metadata.json").read_text())
    assert metadata["custom_fields"] == ["product"]
    assert set(metadata["targets"]) == {"priority", "team"}
    assert metadata["training_data"]["skipped_targets"] == ["queue"]
    assert "'queue': the export has no such column" in trained.stderr

    evaluated = run(
        "evaluate",
        "--model",
        str(model),
        "--data",
        str(data),
        "--split",
        "all",
        "--out",
        str(tmp_path / "eval"),
        cwd=tmp_path,
    )
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["model"]["rows"] == 120

    batch = tmp_path / "new.jsonl"
    batch.write_text(
        json.dumps({"subject": "outage in production", "custom_fields": {"product": "hdfs"}})
        + "\n"
        + json.dumps({"subject": 5})
        + "\n"
        + json.dumps({"description": "slow upgrade", "external_id": "X-1"})
        + "\n"
    )
    enriched = run(
        "enrich",
        "--model",
        str(model),
        str(batch),
        "--out",
        str(tmp_path / "out.jsonl"),
        cwd=tmp_path,
    )
    assert enriched.returncode == 1  # one row was rejected
    lines = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [x["row"] for x in lines] == [1, 3]
    assert lines[0]["enrichment"]["priority"]["label"] in ("normal", "urgent")
    assert lines[0]["enrichment"]["categories"]["team"]["label"] in ("storage", "compute")
    assert lines[1]["ticket"]["external_id"] == "X-1"
    assert '"row": 2' in enriched.stderr and '"field": "subject"' in enriched.stderr


def test_enrich_reads_a_helpdesk_export_with_the_training_columns(
    model_dir: Path, tmp_path: Path
) -> None:
    export = tmp_path / "export.csv"
    source = (Path(__file__).parents[2] / "training" / "data" / "hadoop_bugs.csv").read_text()
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(source)))[:20]
    with export.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = run("enrich", "--model", str(model_dir), str(export), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = [json.loads(x) for x in result.stdout.splitlines()]
    assert len(out) == 20
    assert out[0]["ticket"]["subject"] == rows[0]["Summary"]
    assert out[0]["ticket"]["external_id"] == rows[0]["Issue id"]
    # The creation time too, read with the training time format (`30/Sep/21 17:20`).
    created = datetime.strptime(rows[0]["Created"], "%d/%b/%y %H:%M").replace(tzinfo=UTC)
    assert datetime.fromisoformat(out[0]["ticket"]["created_at"]) == created


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("train", "--data", "missing.csv"), "missing.csv: no such file"),
        (("train", "--data", "{empty}"), "the file is empty"),
        (("train", "--preset", "nope"), "unknown preset 'nope'"),
        (("train", "--label-map", "oops"), "--label-map expects NAME=VALUE"),
        (("enrich", "--model", "nowhere", "x.jsonl"), "train one with `ticket-enrich train`"),
    ],
)
def test_bad_input_gives_a_message_and_exit_code_2_not_a_traceback(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    result = run(*(a.replace("{empty}", str(empty)) for a in args), cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_enrich_reports_hostile_jsonl_lines_per_row(tmp_path: Path, small_model_dir: Path) -> None:
    tickets = tmp_path / "hostile.jsonl"
    tickets.write_text(
        "[" * 100_000
        + "\n"
        + '{"subject": "x", "custom_fields": {"n": '
        + "9" * 5000
        + "}}\n"
        + '{"subject": "Disk full on node 7"}\n'
    )
    result = run_cli("enrich", "--model", str(small_model_dir), str(tickets))
    assert result.returncode == 1, result.stderr
    assert [json.loads(line)["row"] for line in result.stdout.splitlines()] == [3]
    errors = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert [e["row"] for e in errors] == [1, 2]
    assert "nests deeper" in errors[0]["problems"][0]["message"]
    assert "Traceback" not in result.stderr

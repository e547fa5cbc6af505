"""The Spark trainer against the single-machine trainer: on the vendored data's reference split
(the priority model, the resolution time, the similar tickets, the drift reference), and on
generated tickets where the two must write the same index and reference."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pyspark.sql import SparkSession

from core import load_enricher
from core.drift import REFERENCE_FILE, Reference
from core.errors import TrainingDataError
from tests.support import SMALL_CONFIG, run_cli, write_tickets
from training.data import PRESETS, DataSpec, load_dataset, vendored_data_path
from training.evaluate import score_rows
from training.spark import SparkTrainingResult, train_model_spark
from training.train import TrainingResult, train_model


@pytest.fixture(scope="module")
def spark_trained(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The vendored data trained once on Spark. The priority target alone: the comparison is on
    priority, and each further target is another grid of fits."""
    spec = replace(PRESETS["hadoop"], target_columns={})
    out = tmp_path_factory.mktemp("spark-model") / "m"
    return train_model_spark(spark, str(vendored_data_path()), spec, out_dir=out)


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _test_tickets(trained: TrainingResult) -> list[dict[str, str]]:
    return [
        {"subject": e.doc["subject"], "description": e.doc["description"][:60_000]}
        for e in trained.split.test
    ]


def test_spark_trainer_is_within_001_macro_f1_of_the_single_machine_trainer(
    spark_trained: SparkTrainingResult, trained: TrainingResult
) -> None:
    result = spark_trained
    single = trained.metadata
    # The two fits of one model, each answering its most probable label: the decision weights
    # on top are chosen for different objectives (the single-machine one also holds macro-F1
    # at or above the tuned references', which Spark does not fit).
    spark_f1 = result.metadata["metrics"]["test_most_probable"]["macro_f1"]
    single_f1 = single["metrics"]["test_most_probable"]["macro_f1"]
    spark_decided, single_decided = result.metadata["metrics"]["test"], single["metrics"]["test"]
    print(
        f"test macro-F1, most probable label: spark {spark_f1:.4f}, single machine "
        f"{single_f1:.4f}; with the decision weights: spark {spark_decided['macro_f1']:.4f} "
        f"(urgent recall {spark_decided['urgent_recall']:.3f}), single machine "
        f"{single_decided['macro_f1']:.4f} (urgent recall {single_decided['urgent_recall']:.3f})"
    )
    assert abs(spark_f1 - single_f1) <= 0.01
    # The same objective, the tuned references' floor included: Spark fits them on the driver
    # from the same windows, which on this data are whole.
    spark_decision = result.metadata["targets"]["priority"]["decision"]
    single_decision = single["targets"]["priority"]["decision"]
    assert spark_decision["objective"] == single_decision["objective"]
    assert "tuned references' 0." in spark_decision["objective"]

    # The same split, the same vocabulary, the same hyper-parameters chosen.
    assert result.metadata["training_data"]["split"] == single["training_data"]["split"]
    assert result.metadata["labels"] == single["labels"]
    for key in ("priority_C", "priority_class_weight"):
        assert result.metadata["features"][key] == single["features"][key]
    spark_model = json.loads((result.artifact_dir / "model.json").read_text())
    single_model = json.loads((trained.artifact_dir / "model.json").read_text())
    assert spark_model["blocks"][0]["terms"] == single_model["blocks"][0]["terms"]


def test_spark_artifact_has_every_file_and_field_of_the_single_machine_one(
    spark_trained: SparkTrainingResult, trained: TrainingResult
) -> None:
    spark_dir, single_dir = spark_trained.artifact_dir, trained.artifact_dir
    assert _files(spark_dir) == _files(single_dir)
    checksums = json.loads((spark_dir / "checksums.json").read_text())
    assert set(checksums) == set(json.loads((single_dir / "checksums.json").read_text()))
    # The same rules file, byte for byte: the default set for the same labels.
    assert (spark_dir / "rules.json").read_bytes() == (single_dir / "rules.json").read_bytes()
    spark_meta, single_meta = spark_trained.metadata, trained.metadata
    assert set(spark_meta) == set(single_meta)
    assert spark_meta["rules"] == single_meta["rules"]
    # The fixture trains priority alone, which is never withheld.
    assert spark_meta["withheld_targets"] == {}
    # The Spark trainer quotes no baselines: the majority class, TF-IDF + LinearSVC and the
    # tuned references are further models fitted on one machine.
    assert set(spark_meta["metrics"]) == set(single_meta["metrics"]) - {"baselines"}
    for part in ("resolution_time", "duplicates", "test", "test_most_probable", "validation"):
        assert set(spark_meta["metrics"][part]) == set(single_meta["metrics"][part])
    spark_priority = spark_meta["targets"]["priority"]
    single_priority = single_meta["targets"]["priority"]
    assert set(spark_priority) == set(single_priority)
    assert set(spark_priority["class_bands"]) == set(spark_meta["labels"])
    assert set(spark_priority["decision"]) == set(single_priority["decision"])
    assert set(spark_priority["decision"]["weights"]) == set(spark_meta["labels"])
    spark_model = json.loads((spark_dir / "model.json").read_text())["targets"]["priority"]
    single_model = json.loads((single_dir / "model.json").read_text())["targets"]["priority"]
    assert set(spark_model) == set(single_model)
    assert spark_model["class_bands"] == spark_priority["class_bands"]
    assert spark_model["decision"] == spark_priority["decision"]
    spark_report = json.loads((spark_dir / "report" / "metrics.json").read_text())
    single_report = json.loads((single_dir / "report" / "metrics.json").read_text())
    assert set(spark_report) == set(single_report)
    assert spark_report["baselines"] == {}
    assert set(single_meta["features"]) - set(spark_meta["features"]) <= {
        "resolution_C",
        "resolution_class_weight",
        "resolution_temperature",
    }

    # Serving loads it unchanged: checksums, format, the self-check on recorded samples (now
    # with their resolution hours), and every field.
    enricher = load_enricher(spark_dir)
    assert len(enricher.artifact.samples) >= 3
    assert all("resolution_hours" in s["expected"] for s in enricher.artifact.samples)
    enriched = enricher.enrich({"subject": "NameNode fails to start after upgrade"})["enrichment"]
    assert enriched["priority"]["label"] in single_meta["labels"]
    low, high = enriched["resolution_time"]["interval_90"]
    assert 0 <= low <= enriched["resolution_time"]["hours"] <= high
    assert len(enriched["similar"]) == 5
    assert isinstance(enriched["possible_duplicate"], bool)
    Reference.from_dict(enricher.artifact.read_json(REFERENCE_FILE))
    report = (spark_dir / "report" / "report.md").read_text()
    assert "## Resolution time" in report and "## Possible duplicates" in report
    assert "## Decision" in report and "## Auto-apply per predicted class" in report


def test_spark_sets_priority_bands_out_of_fold_as_the_single_machine_trainer_does(
    spark_trained: SparkTrainingResult, trained: TrainingResult
) -> None:
    # Both set the priority's per-class bands on forward-chaining folds of the training window
    # (the folds share one vocabulary on Spark, one each on one machine): the same classes are
    # auto-applied, from nearly the same confidence, and the test window agrees.
    spark_bands = spark_trained.metadata["targets"]["priority"]["class_bands"]
    single_bands = trained.metadata["targets"]["priority"]["class_bands"]
    print(f"per-class bands: spark {spark_bands}, single machine {single_bands}")
    applied = {label for label, band in single_bands.items() if band["high"] <= 1.0}
    assert applied, "the single-machine trainer auto-applies some class on this data"
    assert {label for label, band in spark_bands.items() if band["high"] <= 1.0} == applied
    for label in applied:
        assert abs(spark_bands[label]["high"] - single_bands[label]["high"]) <= 0.02
    spark_auto = spark_trained.metadata["metrics"]["test"]["auto_apply"]
    single_auto = trained.metadata["metrics"]["test"]["auto_apply"]
    assert abs(spark_auto["share"] - single_auto["share"]) <= 0.01
    assert spark_auto["precision"] == single_auto["precision"]


def test_spark_model_serves_its_rules_decision_weights_and_per_class_bands(
    spark_trained: SparkTrainingResult, trained: TrainingResult
) -> None:
    enricher = load_enricher(spark_trained.artifact_dir)
    assert enricher.rules is not None
    target = enricher.artifact.model["targets"]["priority"]
    weights, class_bands = target["decision"]["weights"], target["class_bands"]

    # A cue urgent in any helpdesk: the default rule raises it, the model's answer stays beside.
    outage = enricher.enrich(
        {"subject": "Production is down", "description": "All customers get 500 errors."}
    )["enrichment"]
    priority = outage["priority"]
    assert priority["label"] == "urgent"
    assert priority["rules"] and "model_prediction" in priority
    assert outage["explanation"][0]["rule"] == priority["rules"][0]
    calm = enricher.enrich(
        {"subject": "Not urgent: a question about last week's outage", "description": "Thanks."}
    )["enrichment"]["priority"]
    assert "rules" not in calm

    # Every test ticket: the label is the largest weighted probability, the band the label's own.
    for ticket in _test_tickets(trained)[:150]:
        result = enricher.enrich(ticket)["enrichment"]["priority"]
        own = result.get("model_prediction", result)
        probabilities = result["probabilities"]
        assert own["label"] == max(probabilities, key=lambda k: probabilities[k] * weights[k])
        bands = class_bands[result["label"]]
        expected = (
            "high"
            if result["confidence"] >= bands["high"]
            else "medium"
            if result["confidence"] >= bands["medium"]
            else "low"
        )
        assert result["band"] == expected

    # The test figures the Spark trainer recorded are those of the model as served.
    rows = trained.split.test
    served = score_rows(enricher, rows)
    recorded = spark_trained.metadata["metrics"]["test"]
    for key in ("macro_f1", "accuracy", "urgent_recall"):
        assert served[key] == pytest.approx(recorded[key], abs=1e-9)
    assert served["auto_apply"]["share"] == pytest.approx(recorded["auto_apply"]["share"], abs=1e-9)
    decision = spark_trained.metadata["targets"]["priority"]["decision"]
    print(
        f"spark decision: weights {decision['weights']}, objective met "
        f"{decision['objective_met']}, validation {decision['validation']}; auto-applied on "
        f"test {recorded['auto_apply']}"
    )


def test_resolution_time_agrees_with_the_single_machine_model(
    spark_trained: SparkTrainingResult, trained: TrainingResult
) -> None:
    spark_enricher = load_enricher(spark_trained.artifact_dir)
    single_enricher = load_enricher(trained.artifact_dir)
    gaps = []
    for ticket in _test_tickets(trained):
        a = spark_enricher.enrich(ticket)["enrichment"]["resolution_time"]["hours"]
        b = single_enricher.enrich(ticket)["enrichment"]["resolution_time"]["hours"]
        gaps.append(abs(np.log1p(a) - np.log1p(b)))
    median_gap = float(np.median(gaps))
    spark_m = spark_trained.metadata["metrics"]["resolution_time"]["model"]
    single_m = trained.metadata["metrics"]["resolution_time"]["model"]
    print(
        f"resolution time: median |log1p gap| {median_gap:.4f}, max {max(gaps):.4f}; test "
        f"median |log error| spark {spark_m['median_abs_log_error']:.4f}, single machine "
        f"{single_m['median_abs_log_error']:.4f}"
    )
    # The same objective and penalty; MLlib's L-BFGS stops on a relative tolerance of 1e-6,
    # scikit-learn's solver on its own, which leaves differences of the order of 1e-3 in the
    # log of the hours (a tenth of a percent), far below the model's own error (above 1).
    assert median_gap <= 0.01
    assert abs(spark_m["median_abs_log_error"] - single_m["median_abs_log_error"]) <= 0.01
    assert spark_trained.metadata["metrics"]["resolution_time"]["rows"] == len(trained.split.test)


def test_similar_tickets_agree_with_the_single_machine_index(
    spark_trained: SparkTrainingResult, trained: TrainingResult
) -> None:
    spark_index = json.loads((spark_trained.artifact_dir / "index.json").read_text())
    single_index = json.loads((trained.artifact_dir / "index.json").read_text())

    # The same tickets, named and described alike (no resolution here: the Spark model was
    # trained without that target), and the same duplicate threshold.
    def described(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in d.items() if k != "resolution"} for d in docs]

    assert described(spark_index.pop("docs")) == described(single_index.pop("docs"))
    assert spark_index.pop("threshold") == pytest.approx(single_index.pop("threshold"), abs=1e-9)
    assert spark_index == single_index
    spark_dup = spark_trained.metadata["metrics"]["duplicates"]
    single_dup = trained.metadata["metrics"]["duplicates"]
    assert spark_dup["threshold"] == pytest.approx(single_dup["threshold"], abs=1e-9)
    for window in ("validation", "test"):
        assert spark_dup[window] == pytest.approx(single_dup[window])

    # Weights are rounded to 5 decimals in both; a last-bit difference in a TF-IDF value can
    # move one rounding step, so the top five may differ in a tie, not more.
    spark_enricher = load_enricher(spark_trained.artifact_dir)
    single_enricher = load_enricher(trained.artifact_dir)
    same = 0
    tickets = _test_tickets(trained)
    for ticket in tickets:
        a = spark_enricher.enrich(ticket)["enrichment"]
        b = single_enricher.enrich(ticket)["enrichment"]
        same += [s["id"] for s in a["similar"]] == [s["id"] for s in b["similar"]]
        assert [s["score"] for s in a["similar"]] == pytest.approx(
            [s["score"] for s in b["similar"]], abs=1e-4
        )
    assert same >= 0.98 * len(tickets)


def test_drift_reference_agrees_with_the_single_machine_one(
    spark_trained: SparkTrainingResult, trained: TrainingResult
) -> None:
    spark_ref = json.loads((spark_trained.artifact_dir / REFERENCE_FILE).read_text())
    single_ref = json.loads((trained.artifact_dir / REFERENCE_FILE).read_text())
    assert spark_ref["inputs"]["tickets"] == single_ref["inputs"]["tickets"]
    assert spark_ref["predictions"]["tickets"] == single_ref["predictions"]["tickets"]
    for feature in ("text_length", "language"):
        assert spark_ref["inputs"]["counts"][feature] == single_ref["inputs"]["counts"][feature]
    # The 300 most common words: words tied in count at the cut may fall either side.
    shared = set(spark_ref["vocabulary"]) & set(single_ref["vocabulary"])
    assert len(shared) >= 0.98 * len(single_ref["vocabulary"])
    # The answers of two fits of the same model: the same labels, counts within a few tickets.
    spark_p = spark_ref["predictions"]["counts"]["priority"]
    single_p = single_ref["predictions"]["counts"]["priority"]
    assert set(spark_p) == set(single_p)
    assert all(abs(spark_p[k] - single_p[k]) <= 15 for k in single_p)


def _closed_tickets(path: Path) -> Path:
    """Generated tickets with a resolution time, a resolution (some duplicates) and no id
    column, so that the index names tickets by their line."""
    source = write_tickets(path.with_suffix(".base.jsonl"), rows=120)
    rng = random.Random(11)
    lines = []
    for i, line in enumerate(source.read_text().splitlines()):
        record = json.loads(line)
        created = datetime.fromisoformat(record["created_at"].replace("Z", "+00:00"))
        hours = 2 + (i * 7) % 20 if record["priority"] == "urgent" else 30 + (i * 13) % 200
        record["resolved_at"] = (created + timedelta(hours=hours)).isoformat()
        record["resolution"] = rng.choices(["Fixed", "Duplicate", "Won't Fix"], [6, 2, 2])[0]
        lines.append(json.dumps(record))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_spark_and_single_machine_write_the_same_index_and_reference(
    spark: SparkSession, tmp_path: Path
) -> None:
    data = _closed_tickets(tmp_path / "closed.jsonl")
    spec = DataSpec(
        field_columns=("product",),
        resolved_column="resolved_at",
        target_columns={"resolution": "resolution"},
        duplicate_where={"resolution": "Duplicate"},
    )
    single = train_model(load_dataset(data, spec), out_dir=tmp_path / "one", config=SMALL_CONFIG)
    result = train_model_spark(spark, str(data), spec, out_dir=tmp_path / "s", config=SMALL_CONFIG)
    assert _files(result.artifact_dir) == _files(single.artifact_dir)
    assert set(result.metadata["targets"]) == {"priority", "resolution"}
    assert set(result.metadata) == set(single.metadata)
    # A secondary target is withheld from the default fields exactly when it did not beat the
    # majority class on validation, and the artifact says so to serving.
    resolution = result.metadata["withheld_targets"].get("resolution")
    spark_model = json.loads((result.artifact_dir / "model.json").read_text())
    assert spark_model["targets"]["resolution"].get("default", True) is (resolution is None)
    if resolution is not None:
        assert resolution["validation_macro_f1"] <= resolution["validation_majority_macro_f1"]
    assert set(result.metadata["targets"]["resolution"]["class_bands"]) == set(
        result.metadata["targets"]["resolution"]["labels"]
    )

    spark_index = json.loads((result.artifact_dir / "index.json").read_text())
    single_index = json.loads((single.artifact_dir / "index.json").read_text())
    # Tickets named by their line, with their resolution and creation date.
    assert spark_index["docs"][0]["id"].isdigit()
    assert {d["resolution"] for d in spark_index["docs"]} == {"Fixed", "Duplicate", "Won't Fix"}
    threshold = spark_index.pop("threshold")
    assert threshold == pytest.approx(single_index.pop("threshold"), abs=1e-9)
    assert spark_index == single_index
    spark_bin = np.frombuffer((result.artifact_dir / "index.bin").read_bytes(), dtype=np.uint8)
    single_bin = np.frombuffer((single.artifact_dir / "index.bin").read_bytes(), dtype=np.uint8)
    terms, postings = spark_index["terms"], spark_index["postings"]
    split = 4 * (terms + 1) + 4 * postings
    assert spark_bin[:split].tobytes() == single_bin[:split].tobytes()
    spark_w = spark_bin[split:].view("<f8")
    assert np.allclose(spark_w, single_bin[split:].view("<f8"), rtol=0, atol=1.1e-5)

    # The inputs profile is the data's alone: identical. The answers are two fits' answers.
    spark_ref = json.loads((result.artifact_dir / REFERENCE_FILE).read_text())
    single_ref = json.loads((single.artifact_dir / REFERENCE_FILE).read_text())
    for key in ("format", "vocabulary", "fields", "field_values", "inputs"):
        assert spark_ref[key] == single_ref[key]
    assert spark_ref["predictions"]["tickets"] == single_ref["predictions"]["tickets"]

    enriched = load_enricher(result.artifact_dir).enrich(
        {"subject": "outage in cluster 3", "description": "data loss", "custom_fields": {}}
    )["enrichment"]
    assert enriched["categories"]["resolution"]["label"] in {"Fixed", "Duplicate", "Won't Fix"}
    assert enriched["resolution_time"]["hours"] > 0
    assert enriched["similar"] and enriched["similar"][0]["id"].isdigit()


def test_resolution_time_is_left_out_when_a_ticket_has_no_resolved_time(
    spark: SparkSession, tmp_path: Path
) -> None:
    data = _closed_tickets(tmp_path / "closed.jsonl")
    lines = data.read_text().splitlines()
    record = json.loads(lines[5])
    record["resolved_at"] = ""
    lines[5] = json.dumps(record)
    data.write_text("\n".join(lines) + "\n")
    config = replace(SMALL_CONFIG, c_grid=(1.0,), class_weights=(None,))
    spec = DataSpec(resolved_column="resolved_at")
    messages: list[str] = []
    result = train_model_spark(
        spark, str(data), spec, out_dir=tmp_path / "s", config=config, progress=messages.append
    )
    assert "resolution time: some tickets lack a resolved time; not trained" in messages
    assert result.metadata["metrics"]["resolution_time"] is None
    assert "regressors" not in json.loads((result.artifact_dir / "model.json").read_text())
    enriched = load_enricher(result.artifact_dir).enrich({"subject": "outage"})["enrichment"]
    assert "resolution_time" not in enriched and "similar" in enriched


def test_train_engine_spark_from_the_command_line(tmp_path: Path) -> None:
    data = write_tickets(tmp_path / "closed.jsonl", rows=80)
    done = run_cli(
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
        cwd=tmp_path,
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


def test_a_secondary_target_learns_only_from_the_tickets_that_have_it(
    spark: SparkSession, tmp_path: Path
) -> None:
    # Two in five closed tickets have no resolution (the key missing, or blank): both
    # trainers leave them out of that target alone, so neither learns a blank or "Other" class.
    data = _closed_tickets(tmp_path / "closed.jsonl")
    lines = []
    for i, line in enumerate(data.read_text().splitlines()):
        record = json.loads(line)
        if i % 5 == 1:
            del record["resolution"]
        elif i % 5 == 3:
            record["resolution"] = " "
        lines.append(json.dumps(record))
    data.write_text("\n".join(lines) + "\n")
    spec = DataSpec(target_columns={"resolution": "resolution"})
    single = train_model(load_dataset(data, spec), out_dir=tmp_path / "one", config=SMALL_CONFIG)
    result = train_model_spark(spark, str(data), spec, out_dir=tmp_path / "s", config=SMALL_CONFIG)
    single_labels = single.metadata["targets"]["resolution"]["labels"]
    spark_labels = result.metadata["targets"]["resolution"]["labels"]
    assert spark_labels == single_labels == ["Duplicate", "Fixed", "Won't Fix"]

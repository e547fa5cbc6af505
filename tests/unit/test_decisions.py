"""Decision weights and per-class bands chosen on a validation window, and served as chosen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.artifact import write_artifact
from core.enricher import load_enricher
from core.model import LinearTextModel
from core.text import BlockAnalyzer, ticket_document
from training.decisions import DecisionObjective, class_bands, decide, decision_weights
from training.model import LinearHead, pack_model

LABELS = ["low", "normal", "urgent"]


def _window(seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Urgent tickets whose urgent probability is raised but rarely the largest."""
    rng = np.random.default_rng(seed)
    truth = np.array(["normal"] * 150 + ["low"] * 60 + ["urgent"] * 30)
    proba = np.empty((len(truth), 3))
    for i, label in enumerate(truth):
        urgent = rng.uniform(0.25, 0.45) if label == "urgent" else rng.uniform(0.02, 0.3)
        low = rng.uniform(0.4, 0.6) if label == "low" else rng.uniform(0.05, 0.3)
        proba[i] = [low, max(1.0 - low - urgent, 0.01), urgent]
    return proba / proba.sum(axis=1, keepdims=True), truth


def test_the_weights_reach_the_urgent_recall_the_argmax_misses() -> None:
    proba, truth = _window()
    weights, report = decision_weights(proba, truth, LABELS, ["urgent"])
    chosen = np.asarray(LABELS)[decide(proba, np.array([weights[x] for x in LABELS]))]
    recall = float((chosen[truth == "urgent"] == "urgent").mean())
    plain = np.asarray(LABELS)[decide(proba, None)]
    assert float((plain[truth == "urgent"] == "urgent").mean()) < 0.5
    assert recall >= 0.5
    assert report["objective_met"] is True
    assert report["validation"]["urgent_recall"] == pytest.approx(recall)
    assert weights["low"] == weights["normal"] == 1.0 < weights["urgent"]


def test_an_unreachable_recall_keeps_the_most_probable_label() -> None:
    proba, truth = _window()
    proba[truth == "urgent", 2] = 0.0
    weights, report = decision_weights(proba, truth, LABELS, ["urgent"], DecisionObjective(0.5))
    assert weights == {label: 1.0 for label in LABELS}
    assert report["objective_met"] is False


def test_weights_that_cost_macro_f1_on_the_check_window_are_not_kept() -> None:
    proba, truth = _window()
    # An earlier window where the same urgent probabilities belong to normal tickets.
    check_truth = np.where(truth == "urgent", "normal", truth)
    weights, report = decision_weights(
        proba, truth, LABELS, ["urgent"], DecisionObjective(0.5), (proba, check_truth)
    )
    assert weights == {label: 1.0 for label in LABELS}
    assert report["objective_met"] is False
    same, _ = decision_weights(proba, truth, LABELS, ["urgent"], check=(proba, truth))
    assert same["urgent"] > 1


def test_each_class_gets_its_own_high_band_or_none() -> None:
    # "normal" is right whenever it is confident; "low" never reaches 90 % precision.
    confidence = np.linspace(0.5, 0.99, 60)
    proba = np.column_stack([np.zeros(60), confidence, 1 - confidence])
    truth = np.where(confidence > 0.7, "normal", "urgent")
    low_rows = np.column_stack([np.full(40, 0.8), np.full(40, 0.1), np.full(40, 0.1)])
    proba = np.vstack([proba, low_rows])
    truth = np.concatenate([truth, np.where(np.arange(40) % 2 == 0, "low", "normal")])
    bands = class_bands(proba, truth, LABELS, None, 0.9, 0.75, 10)
    assert 0.6 < bands["normal"]["high"] <= 0.72
    assert bands["low"]["high"] > 1
    assert bands["urgent"]["high"] > 1


def _artifact(tmp_path: Path, decision: bool, per_class: bool) -> Path:
    analyzer = BlockAnalyzer("text", "text", 2, None)
    terms = ["during", "the last", "outage", "printer"]
    # Columns: terms; rows: low, normal, urgent. The function-word terms push "urgent" hardest.
    coef = np.array(
        [[0.0, 0.0, -1.0, 1.0], [0.0, 0.0, -1.0, 0.5], [3.0, 3.0, 2.0, -1.5]], dtype=float
    )
    head = LinearHead(
        LABELS,
        coef,
        np.array([0.5, 1.0, -0.2]),
        1.0,
        {"high": 0.95, "medium": 0.6},
        {"normal": {"high": 0.5, "medium": 0.4}} if per_class else None,
        {"weights": {"low": 1.0, "normal": 1.0, "urgent": 3.0}} if decision else None,
    )
    spec, weights = pack_model([(analyzer, terms, np.ones(4))], {"priority": head})
    metadata = {"name": "t", "version": "1", "labels": LABELS, "bands": head.bands}
    return write_artifact(tmp_path / "m", spec, weights, metadata, [])


def test_serving_applies_the_decision_weights_and_the_per_class_band(tmp_path: Path) -> None:
    # P(normal) is the largest, P(urgent) about 0.25: three times it wins with the weights.
    ticket = {"subject": "printer outage", "description": ""}
    plain = load_enricher(_artifact(tmp_path / "a", False, False)).enrich(ticket)
    weighted = load_enricher(_artifact(tmp_path / "b", True, False)).enrich(ticket)
    banded = load_enricher(_artifact(tmp_path / "c", False, True)).enrich(ticket)
    p, w, b = (x["enrichment"]["priority"] for x in (plain, weighted, banded))
    assert w["probabilities"] == p["probabilities"] == b["probabilities"]
    assert (p["label"], p["band"]) == ("normal", "low")
    assert w["label"] == "urgent"
    assert w["confidence"] == pytest.approx(p["probabilities"]["urgent"])
    # normal's own bands start at 0.4 (medium) and 0.5 (high) instead of 0.6 and 0.95.
    assert 0.4 <= b["confidence"] < 0.5
    assert (b["label"], b["band"]) == ("normal", "medium")


def test_explanations_skip_function_word_terms(tmp_path: Path) -> None:
    enricher = load_enricher(_artifact(tmp_path, False, False))
    model = LinearTextModel(enricher.artifact.model, enricher.artifact.weights)
    doc = ticket_document("outage during the last upgrade", "")
    features = model.features(doc)
    terms = [t["term"] for t in model.explain(features, "priority", "urgent")]
    assert terms == ["outage"]


def test_out_of_fold_predicts_each_fold_from_the_tickets_before_it_only() -> None:
    from training.data import Example
    from training.model import ModelConfig, out_of_fold

    words = {"urgent": "outage down crash", "normal": "slow upgrade question"}
    labels = ["urgent", "normal"] * 40
    # The last fold holds a class no earlier ticket has: it cannot be predicted, and a class
    # outside the given labels gets no column.
    labels[-8:] = ["legal"] * 8
    examples = [
        Example(i, ticket_document(words.get(label, "licence audit"), ""), label, None, None, None)
        for i, label in enumerate(labels)
    ]
    config = ModelConfig(band_folds=(0.5, 0.75), min_df=1)
    got = out_of_fold(
        examples,
        np.array(labels),
        (),
        {"C": 10.0, "class_weight": None},
        1.0,
        config,
        np.array(["normal", "urgent"]),
    )
    assert got is not None
    proba, truth = got
    assert len(truth) == len(labels) - 40
    assert list(truth) == labels[40:]
    assert proba.shape == (40, 2)
    # Tickets of the known classes are told apart by models that never saw them.
    known = truth != "legal"
    assert (np.array(["normal", "urgent"])[proba[known].argmax(axis=1)] == truth[known]).all()

"""The Spark trainer chooses decision weights, per-class bands and the majority class's score
with the single-machine code: given the same validation probabilities, the same choices."""

from __future__ import annotations

import numpy as np
import pytest

from training.model import ModelConfig, choose_decisions
from training.spark import _trust

LABELS = ["low", "normal", "urgent"]


def _window(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Urgent tickets whose urgent probability is raised but rarely the largest."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(LABELS, size=rows, p=[0.25, 0.63, 0.12])
    proba = np.empty((rows, 3))
    for i, label in enumerate(truth):
        urgent = rng.uniform(0.25, 0.45) if label == "urgent" else rng.uniform(0.02, 0.3)
        low = rng.uniform(0.4, 0.7) if label == "low" else rng.uniform(0.05, 0.3)
        proba[i] = [low, max(1.0 - low - urgent, 0.01), urgent]
    return proba / proba.sum(axis=1, keepdims=True), truth


@pytest.mark.parametrize(
    ("with_check", "floor"), [(False, None), (True, None), (True, 0.2), (False, 0.99)]
)
def test_spark_trust_is_the_single_machine_choice(with_check: bool, floor: float | None) -> None:
    val_proba, y_val = _window(300, 1)
    _, y_fit = _window(900, 2)
    check = _window(250, 3) if with_check else None
    config = ModelConfig()
    single = choose_decisions(
        "priority", val_proba, y_fit, y_val, ["urgent"], config, lambda _m: None, check, floor
    )
    values, counts = np.unique(y_fit, return_counts=True)
    decision, bands, majority_f1 = _trust(
        "priority",
        LABELS,
        val_proba,
        y_val,
        str(values[counts.argmax()]),
        ["urgent"],
        config,
        lambda _m: None,
        check,
        floor,
    )
    assert decision == single.decision
    assert decision is not None
    # A floor no weighting keeps leaves the most probable label; a reachable one weights urgent.
    assert (decision["weights"]["urgent"] > 1.0) is (floor != 0.99)
    assert bands == single.class_bands
    assert majority_f1 == single.majority_f1


def test_a_target_without_urgent_labels_gets_bands_and_no_weights() -> None:
    val_proba, y_val = _window(300, 4)
    decision, bands, _ = _trust(
        "category", LABELS, val_proba, y_val, "normal", [], ModelConfig(), lambda _m: None, None
    )
    assert decision is None
    assert set(bands) == set(LABELS)
    assert all(b["medium"] <= b["high"] for b in bands.values())

"""Report figures: per-class auto-apply and the urgent queue's average precision."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics import classification_metrics

LABELS = ["low", "normal", "urgent"]


def test_auto_apply_uses_each_predicted_labels_own_threshold() -> None:
    truth = ["normal", "normal", "low", "urgent", "low"]
    pred = ["normal", "normal", "normal", "urgent", "low"]
    confidence = np.array([0.9, 0.8, 0.85, 0.95, 0.99])
    m = classification_metrics(
        truth, pred, LABELS, ["urgent"], confidence, {"normal": 0.82, "urgent": 1.01}
    )
    auto = m["auto_apply"]
    # normal at 0.90 and 0.85 apply (one wrong); urgent never; low has no threshold: never.
    assert auto["share"] == pytest.approx(2 / 5)
    assert auto["precision"] == pytest.approx(0.5)
    assert auto["per_class"]["normal"] == {"applied": 2, "precision": 0.5}
    assert auto["per_class"]["urgent"] == {"applied": 0, "precision": None}
    assert auto["per_class"]["low"]["applied"] == 0


def test_urgent_average_precision_ranks_the_queue_by_urgent_probability() -> None:
    truth = ["urgent", "normal", "urgent", "low"]
    pred = ["normal"] * 4
    perfect = classification_metrics(
        truth, pred, LABELS, ["urgent"], urgent_scores=np.array([0.9, 0.2, 0.8, 0.1])
    )
    reversed_ = classification_metrics(
        truth, pred, LABELS, ["urgent"], urgent_scores=np.array([0.1, 0.9, 0.2, 0.8])
    )
    assert perfect["urgent_average_precision"] == pytest.approx(1.0)
    assert reversed_["urgent_average_precision"] == pytest.approx((1 / 3 + 2 / 4) / 2)

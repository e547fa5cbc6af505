"""The figures every report quotes, computed the same way for the model and its baselines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 10
) -> float:
    """Top-label ECE: the gap between confidence and accuracy, averaged over equal-width bins."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(confidence[mask].mean() - correct[mask].mean())
    return float(total)


def classification_metrics(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    labels: Sequence[str],
    urgent_labels: Sequence[str],
    confidence: np.ndarray | None = None,
    high_threshold: float | None = None,
) -> dict[str, Any]:
    """Macro-F1, per-class precision and recall, urgent recall, and, given confidences,
    calibration error and the share of tickets auto-applied at "high" with its precision."""
    truth, pred = np.asarray(y_true), np.asarray(y_pred)
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, pred, labels=list(labels), zero_division=0
    )
    urgent = np.isin(truth, list(urgent_labels))
    result: dict[str, Any] = {
        "rows": len(truth),
        "macro_f1": float(
            f1_score(truth, pred, labels=list(labels), average="macro", zero_division=0)
        ),
        "accuracy": float((truth == pred).mean()),
        "urgent_recall": float(np.isin(pred[urgent], list(urgent_labels)).mean())
        if urgent.any()
        else None,
        "per_class": {
            label: {
                "precision": float(p),
                "recall": float(r),
                "f1": float(f),
                "support": int(s),
            }
            for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
        },
        "confusion_matrix": {
            "labels": list(labels),
            "matrix": confusion_matrix(truth, pred, labels=list(labels)).tolist(),
        },
        "calibration_error": None,
        "auto_apply": None,
    }
    if confidence is not None:
        correct = truth == pred
        result["calibration_error"] = expected_calibration_error(confidence, correct)
        if high_threshold is not None:
            high = confidence >= high_threshold
            result["auto_apply"] = {
                "threshold": high_threshold,
                "share": float(high.mean()),
                "precision": float(correct[high].mean()) if high.any() else None,
            }
    return result

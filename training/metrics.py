"""The figures every report quotes, computed the same way for the model and its baselines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)


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
    high_threshold: float | Mapping[str, float] | None = None,
    urgent_scores: np.ndarray | None = None,
) -> dict[str, Any]:
    """Macro-F1, per-class precision and recall, urgent recall; given confidences, calibration
    error and the share of tickets auto-applied at "high" (one threshold, or one per predicted
    label) with its precision, overall and per predicted label; given each ticket's urgent
    probability, the average precision of ranking the queue by it."""
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
        "urgent_average_precision": None,
    }
    if urgent_scores is not None and urgent.any():
        result["urgent_average_precision"] = float(average_precision_score(urgent, urgent_scores))
    if confidence is not None:
        correct = truth == pred
        result["calibration_error"] = expected_calibration_error(confidence, correct)
        if high_threshold is not None:
            if isinstance(high_threshold, Mapping):
                cut = np.array([high_threshold.get(str(p), 1.01) for p in pred], dtype=float)
            else:
                cut = np.full(len(pred), float(high_threshold))
            high = confidence >= cut
            result["auto_apply"] = {
                "threshold": high_threshold
                if not isinstance(high_threshold, Mapping)
                else dict(high_threshold),
                "share": float(high.mean()),
                "precision": float(correct[high].mean()) if high.any() else None,
                "per_class": {
                    label: {
                        "applied": int((high & (pred == label)).sum()),
                        "precision": float(correct[high & (pred == label)].mean())
                        if (high & (pred == label)).any()
                        else None,
                    }
                    for label in labels
                },
            }
    return result

"""Live model quality: how the served predictions compare with what agents said they should be."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from core.ports import Correction


def macro_f1(truth: Sequence[str], predicted: Sequence[str]) -> float | None:
    """Macro-averaged F1 over the labels that occur in either sequence (None when empty)."""
    labels = sorted(set(truth) | set(predicted))
    if not labels:
        return None
    scores = []
    for label in labels:
        tp = sum(1 for t, p in zip(truth, predicted, strict=True) if t == label and p == label)
        fp = sum(1 for t, p in zip(truth, predicted, strict=True) if t != label and p == label)
        fn = sum(1 for t, p in zip(truth, predicted, strict=True) if t == label and p != label)
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


def _scores(items: Sequence[Correction], urgent: Sequence[str]) -> dict[str, Any]:
    truth = [c.label for c in items]
    predicted = [c.predicted or "" for c in items]
    urgent_truth = [p for t, p in zip(truth, predicted, strict=True) if t in urgent]
    return {
        "tickets": len(items),
        "agreement": sum(c.agrees for c in items) / len(items) if items else None,
        "macro_f1": macro_f1(truth, predicted),
        "urgent_recall": (
            sum(1 for p in urgent_truth if p in urgent) / len(urgent_truth)
            if urgent_truth
            else None
        ),
    }


def live_quality(
    corrections: Sequence[Correction], labels: Sequence[str], urgent: Sequence[str]
) -> dict[str, Any]:
    """Agreement, macro-F1 and urgent recall of agents' latest corrections of one target,
    overall and per model version that made the prediction. ``labels`` are the model's, listed
    for the reader; labels nobody used are left out of the macro average."""
    by_version: dict[str, list[Correction]] = defaultdict(list)
    for c in corrections:
        by_version[c.model_version or "unknown"].append(c)
    return {
        "labels": list(labels),
        "urgent_labels": list(urgent),
        "overall": _scores(corrections, urgent),
        "versions": {v: _scores(items, urgent) for v, items in sorted(by_version.items())},
    }

"""Cost-aware decisions and per-class trust, chosen on the validation window.

A missed urgent ticket costs far more than a normal one looked at early, so the label is not
simply the most probable one: each urgent class's probability is multiplied by a decision
weight (1 for the other classes) and the largest product wins. The weights are chosen on the
validation window for a stated objective: the best macro-F1 among the weightings that find at
least ``urgent_recall`` of the urgent tickets while validation macro-F1 stays at or above the
tuned references' (``macro_f1_floor``) and within ``tolerance`` of the most probable label's, on
the validation window and on an earlier check window (the end of the fit window, predicted by a
model fitted on the tickets before it), so that weights that only suit one window of a few
hundred tickets are not kept. Only the urgent classes are weighted,
and only upwards, so that a window chooses one or two numbers, not one per class; when no
weighting meets the objective, the label stays the most probable one.

Trust is per class as well: the "high" (auto-apply) band of a class starts at the lowest
confidence at which that class's predictions reach the target precision on the validation
window, with enough tickets behind it; a class that never does is never auto-applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

NOT_REACHED = 1.01


@dataclass(frozen=True)
class DecisionObjective:
    """What the decision weights aim for on the validation window."""

    urgent_recall: float = 0.5
    # How far macro-F1 may fall below the most probable label's on a window.
    tolerance: float = 0.01
    # The best validation macro-F1 of the references tuned on the same window, if known.
    macro_f1_floor: float | None = None
    # Weights tried per urgent class (log-spaced; 1 is the plain most probable label).
    grid: tuple[float, ...] = tuple(float(w) for w in np.geomspace(1.0, 16.0, 41))
    rounds: int = 3

    def describe(self, urgent: Sequence[str]) -> str:
        """The objective in words, for the artifact and the report."""
        if not urgent:
            return "highest validation macro-F1"
        floor = (
            ""
            if self.macro_f1_floor is None
            else f", validation macro-F1 at least the tuned references' {self.macro_f1_floor:.3f}"
        )
        return (
            f"highest validation macro-F1 with recall of {', '.join(urgent)} at least "
            f"{self.urgent_recall:g}{floor} and macro-F1 no more than {self.tolerance:g} below "
            f"the most probable label's on the validation and check windows, weighting only "
            f"{', '.join(urgent)} (the most probable label where no weighting meets that)"
        )


def _macro_f1(truth: np.ndarray, pred: np.ndarray, k: int) -> float:
    scores = []
    for c in range(k):
        tp = float(np.sum((pred == c) & (truth == c)))
        fp = float(np.sum((pred == c) & (truth != c)))
        fn = float(np.sum((pred != c) & (truth == c)))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(scores))


def decide(proba: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Each row's chosen column: the largest weighted probability (plain argmax without
    weights), ties to the first column as serving breaks them."""
    return np.asarray((proba if weights is None else proba * weights).argmax(axis=1))


def decision_weights(
    proba: np.ndarray,
    y: np.ndarray,
    labels: Sequence[str],
    urgent: Sequence[str],
    objective: DecisionObjective | None = None,
    check: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Decision weights for ``proba`` (validation rows, columns in ``labels`` order) and truth
    ``y`` (labels; ones the model lacks count as wrong for every prediction): the urgent
    classes' weights by coordinate search over the objective's grid, every other class 1; and
    what they reach on the window beside the plain most probable label."""
    objective = objective or DecisionObjective()
    k = len(labels)
    index = {label: i for i, label in enumerate(labels)}
    truth = np.array([index.get(str(v), -1) for v in y])
    urgent_cols = [index[u] for u in urgent if u in index]
    is_urgent = np.isin(truth, urgent_cols) if urgent_cols else np.zeros(len(truth), bool)

    check_truth = None if check is None else np.array([index.get(str(v), -1) for v in check[1]])

    def check_f1(w: np.ndarray | None) -> float | None:
        if check is None or check_truth is None or not len(check_truth):
            return None
        return _macro_f1(check_truth, decide(check[0], w), k)

    plain_check = check_f1(None)
    plain_f1 = _macro_f1(truth, decide(proba, None), k)

    def score(w: np.ndarray) -> tuple[bool, float, float]:
        pred = decide(proba, w)
        recall = float(np.isin(pred[is_urgent], urgent_cols).mean()) if is_urgent.any() else 0.0
        f1 = _macro_f1(truth, pred, k)
        feasible = (
            bool(is_urgent.any())
            and recall >= objective.urgent_recall
            and f1 >= plain_f1 - objective.tolerance
            and (objective.macro_f1_floor is None or f1 >= objective.macro_f1_floor)
        )
        if feasible and plain_check is not None:
            got = check_f1(w)
            feasible = got is not None and got >= plain_check - objective.tolerance
        return feasible, f1, recall

    weights = np.ones(k)
    best = score(weights)
    plain = best
    for _ in range(objective.rounds):
        changed = False
        for c in urgent_cols:
            for g in objective.grid:
                trial = weights.copy()
                trial[c] = g
                # Feasible first, then macro-F1, then urgent recall; a tie keeps the weights
                # nearer to the plain argmax.
                got = score(trial)
                if got > best:
                    weights, best, changed = trial, got, True
        if not changed:
            break
    if not best[0]:
        weights, best = np.ones(k), plain
    return {label: float(w) for label, w in zip(labels, weights, strict=True)}, {
        "objective": objective.describe([labels[c] for c in urgent_cols]),
        "objective_met": best[0],
        "validation": {"macro_f1": best[1], "urgent_recall": best[2] if urgent_cols else None},
        "validation_argmax": {
            "macro_f1": plain[1],
            "urgent_recall": plain[2] if urgent_cols else None,
        },
        "check_window": None
        if plain_check is None
        else {
            "rows": len(check[1]) if check is not None else 0,
            "macro_f1": check_f1(weights),
            "macro_f1_argmax": plain_check,
        },
    }


def class_bands(
    proba: np.ndarray,
    y: np.ndarray,
    labels: Sequence[str],
    weights: np.ndarray | None,
    high_precision: float,
    medium_precision: float,
    min_support: int,
) -> dict[str, dict[str, float]]:
    """For each class, the lowest confidence at which the window's predictions of that class at
    or above it reach each band's precision over at least ``min_support`` tickets (cutting only
    between distinct confidences); a band no threshold reaches starts above 1."""
    chosen = decide(proba, weights)
    confidence = proba[np.arange(len(chosen)), chosen]
    truth = np.asarray([str(v) for v in y])
    out: dict[str, dict[str, float]] = {}
    for c, label in enumerate(labels):
        mine = chosen == c
        conf = confidence[mine]
        order = np.argsort(-conf, kind="stable")
        conf_sorted = conf[order]
        correct = (truth[mine] == label)[order]
        counts = np.arange(1, len(order) + 1)
        precision = np.cumsum(correct) / counts
        distinct = np.append(conf_sorted[1:] < conf_sorted[:-1], True)[: len(order)]
        bands: dict[str, float] = {}
        for band, target in (("high", high_precision), ("medium", medium_precision)):
            ok = (precision >= target) & (counts >= min_support) & distinct
            bands[band] = float(conf_sorted[np.flatnonzero(ok).max()]) if ok.any() else NOT_REACHED
        bands["medium"] = min(bands["medium"], bands["high"])
        out[str(label)] = bands
    return out

"""Model designs tried against issue 22's accuracy targets, beside the shipped one.

Each design changes one thing of `training.model` (an extra feature block, the
hyper-parameter grid, the feature settings, the training data, or the model kind in place of
the logistic regression: an ordinal model, or tickets weighted by recency) and is measured on
the vendored Hadoop split:

    python -m bench.accuracy_designs validation hadoop rules-block
    python -m bench.accuracy_designs test hadoop rules-block
    python -m bench.accuracy_designs folds hadoop shipped 0.03125,0.0625,0.125,0.25,1,4,16
    python -m bench.accuracy_designs bands hadoop shipped
    python -m bench.accuracy_designs ensemble hadoop shipped
    python -m bench.accuracy_designs ceiling hadoop shipped

``validation`` fits the model as training does (hyper-parameters, decision weights and the
check window on the validation window, per-class bands on the out-of-fold tickets) and prints
what that chose and reached, without touching the test window. ``test`` does the same and then
scores the priority on the test window as `training.train` reports it: it is meant to be run
once per design, after the design was judged on validation. ``folds`` prints the pooled
out-of-fold macro-F1 of each C (and class weighting) over `ModelConfig.band_folds`; ``bands``
prints each class's out-of-fold precision among its most confident predictions; ``ensemble``
the validation macro-F1 of other model kinds on the design's features and of mixes with the
logistic regression (`ensemble_scores`); ``ceiling`` what the test window would allow if the
decisions were chosen on it (`ceiling_figures`): a bound, not a design. Designs whose features
serving lacks are measured here only: their artifact could not be exported.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial
from itertools import pairwise, product
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import FeatureUnion
from sklearn.svm import LinearSVC

from core.rules import RuleSet, load_rules
from training import model as trained_model
from training.baselines import tune_references
from training.data import (
    PRESETS,
    Example,
    Split,
    load_dataset,
    time_split,
    vendored_data_path,
)
from training.decisions import decide
from training.default_rules import DEFAULT_RULES
from training.metrics import classification_metrics
from training.model import FittedModel, ModelConfig, fit_model

BuildFeatures = Callable[[Sequence[str], ModelConfig], FeatureUnion]


class SubjectChars:
    """Character n-grams of the subject's words, each word padded with a space on both sides
    (as scikit-learn's ``char_wb``), lower-cased."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high

    def __call__(self, doc: Mapping[str, Any]) -> list[str]:
        out: list[str] = []
        for word in str(doc.get("subject") or "").lower().split():
            padded = f" {word} "
            for n in range(self.low, self.high + 1):
                out += [padded[i : i + n] for i in range(max(len(padded) - n + 1, 1))]
        return out


class RuleHits:
    """The default priority rules a ticket fires, as tokens (``rule:<name>`` and ``rule:any``),
    or ``rule:none``."""

    def __init__(self) -> None:
        self.rules: RuleSet = load_rules(DEFAULT_RULES, ["low", "normal", "urgent"])

    def __call__(self, doc: Mapping[str, Any]) -> list[str]:
        matches = self.rules.match(str(doc.get("subject") or ""), str(doc.get("description") or ""))
        if not matches:
            return ["rule:none"]
        return [f"rule:{m.rule}" for m in matches] + ["rule:any"]


# Priority labels from the least to the most urgent, for the ordinal design.
PRIORITY_RANK = {
    **{label: i for i, label in enumerate(("low", "normal", "urgent"))},
    **{label: i for i, label in enumerate(("Trivial", "Minor", "Major", "Critical", "Blocker"))},
}


class OrdinalLogistic(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Cumulative-link logistic regression: for each step of `PRIORITY_RANK` among the labels
    seen, a binary logistic regression for "at least this urgent"; a label's probability is the
    difference of its two neighbouring (monotone) cumulative probabilities. ``class_weight``
    applies to each binary fit. ``decision_function`` gives log-probabilities, so the product's
    temperature, decision weights and bands run on it unchanged."""

    def __init__(self, C: float = 1.0, class_weight: str | None = None, max_iter: int = 100):
        self.C, self.class_weight, self.max_iter = C, class_weight, max_iter

    def fit(self, x: Any, y: Any) -> OrdinalLogistic:
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        self.order_ = np.argsort([PRIORITY_RANK[str(label)] for label in self.classes_])
        by_rank = {label: i for i, label in enumerate(self.classes_[self.order_])}
        rank = np.array([by_rank[label] for label in y])
        self.steps_ = [
            LogisticRegression(
                C=self.C, class_weight=self.class_weight, max_iter=self.max_iter
            ).fit(x, (rank >= k).astype(int))
            for k in range(1, len(self.classes_))
        ]
        return self

    def predict_proba(self, x: Any) -> np.ndarray:
        k = len(self.classes_)
        cumulative = np.ones((x.shape[0], k + 1))
        cumulative[:, k] = 0.0
        for i, step in enumerate(self.steps_, start=1):
            cumulative[:, i] = step.predict_proba(x)[:, 1]
        cumulative[:, 1:k] = np.minimum.accumulate(cumulative[:, 1:k], axis=1)
        by_rank = np.clip(cumulative[:, :k] - cumulative[:, 1:], 1e-9, None)
        proba = np.empty_like(by_rank)
        proba[:, self.order_] = by_rank
        return np.asarray(proba / proba.sum(axis=1, keepdims=True))

    def decision_function(self, x: Any) -> np.ndarray:
        return np.asarray(np.log(self.predict_proba(x)))

    def predict(self, x: Any) -> np.ndarray:
        return np.asarray(self.classes_[self.predict_proba(x).argmax(axis=1)])


class RecentFirst(LogisticRegression):  # type: ignore[misc]
    """Logistic regression whose tickets weigh less the older they are: row ``i`` of ``n``
    weighs ``0.5 ** ((n - 1 - i) / half_life)`` (normalised to a mean of 1). The rows the
    trainer fits priority on are in creation order, so the position stands for the age."""

    half_life = 600.0

    def fit(self, x: Any, y: Any, sample_weight: Any = None) -> RecentFirst:
        n = x.shape[0]
        weight = 0.5 ** ((n - 1 - np.arange(n)) / self.half_life)
        super().fit(x, y, sample_weight=weight * n / weight.sum())
        return self


def _recent_first(half_life: float) -> type:
    return type(f"RecentFirst{half_life:g}", (RecentFirst,), {"half_life": half_life})


def _with_block(
    name: str, analyzer: Callable[[Mapping[str, Any]], list[str]], min_df: int = 2
) -> BuildFeatures:
    """`training.model.build_features` with one more TF-IDF block."""
    shipped = trained_model.build_features

    def build(field_names: Sequence[str], config: ModelConfig) -> FeatureUnion:
        features = shipped(field_names, config)
        features.transformer_list.append(
            (name, TfidfVectorizer(analyzer=analyzer, sublinear_tf=True, min_df=min_df))
        )
        return features

    return build


# Design name → (extra feature block builder or None, ModelConfig overrides).
DESIGNS: dict[str, tuple[Callable[[], BuildFeatures] | None, dict[str, Any]]] = {
    "shipped": (None, {}),
    # min_df 1 for the rules block: a rule fires on a handful of tickets.
    "rules-block": (lambda: _with_block("rules", RuleHits(), 1), {}),
    "subject-chars-2-4": (lambda: _with_block("subject_chars", SubjectChars(2, 4)), {}),
    "ngram-1": (None, {"ngram_max": 1}),
    "ngram-3": (None, {"ngram_max": 3}),
    "description-1000": (None, {"description_max_chars": 1000}),
    # C and class weighting as the forward-chaining folds chose them (see ``folds``).
    "folds-c-hadoop": (None, {"c_grid": (0.125,), "class_weights": ("balanced",)}),
    "folds-c-hadoop-5": (None, {"c_grid": (0.25,), "class_weights": ("balanced",)}),
    # The tracker's open tickets join the data (see `OPEN_TICKETS`).
    "open-tickets": (None, {}),
    "open-tickets-validation": (None, {}),
    # Another model kind in place of the logistic regression (see `MODEL_KINDS`).
    "ordinal": (None, {}),
    "recent-300": (None, {}),
    "recent-600": (None, {}),
    "recent-1200": (None, {}),
}
# Designs that replace the trainer's logistic regression (everywhere it fits priority).
MODEL_KINDS: dict[str, Callable[[], type]] = {
    "ordinal": lambda: OrdinalLogistic,
    **{f"recent-{h}": partial(_recent_first, h) for h in (300, 600, 1200)},
}
# Designs that add the export's open tickets (their priority as it stands) created before the
# validation window to the fitting tickets, and with "validation" also those of the validation
# window to it; the test window stays the closed tickets alone.
OPEN_TICKETS = {"open-tickets": False, "open-tickets-validation": True}
_OPEN_STATUSES = ("Open", "Patch Available", "In Progress", "Reopened")


def _setup(design: str) -> ModelConfig:
    block, overrides = DESIGNS[design]
    if block is not None:
        setattr(trained_model, "build_features", block())  # noqa: B010
    if design in MODEL_KINDS:
        setattr(trained_model, "LogisticRegression", MODEL_KINDS[design]())  # noqa: B010
    return ModelConfig(**overrides)


def _split(preset: str, design: str = "shipped") -> tuple[Split, Sequence[str]]:
    spec = PRESETS[preset]
    dataset = load_dataset(vendored_data_path(), spec)
    split = time_split(dataset.examples, 0.2, 0.2)
    if design in OPEN_TICKETS:
        open_spec = replace(
            spec,
            where={},
            where_in={"Status": _OPEN_STATUSES},
            resolved_column=None,
            target_columns={},
            duplicate_where={},
        )
        opened = load_dataset(vendored_data_path(), open_spec).examples
        first_validation, first_test = split.validation[0].created, split.test[0].created
        assert first_validation is not None and first_test is not None  # the preset has times

        def before(e: Example, start: datetime) -> bool:
            return e.created is not None and e.created < start

        def created(e: Example) -> datetime:
            assert e.created is not None
            return e.created

        fit = sorted(split.fit + [e for e in opened if before(e, first_validation)], key=created)
        validation = split.validation
        if OPEN_TICKETS[design]:
            extra = [e for e in opened if before(e, first_test) and not before(e, first_validation)]
            validation = sorted(validation + extra, key=created)
        split = Split(fit, validation, split.test)
    return split, spec.urgent_labels


def _fit(preset: str, design: str) -> tuple[FittedModel, Split, list[str], dict[str, Any]]:
    config = _setup(design)
    split, urgent = _split(preset, design)
    references = tune_references(split, lambda e: e.label)
    floor = max(p["validation_macro_f1"] for p in references.values())
    model = fit_model(
        split.fit, split.validation, (), [], config, urgent=urgent, macro_f1_floor=floor
    )
    chosen = model.classifiers["priority"]
    decision = chosen.decision or {}
    figures = {
        "preset": preset,
        "design": design,
        "tuned_references_validation_macro_f1": floor,
        "params": chosen.params,
        "validation_macro_f1_most_probable": chosen.validation_macro_f1,
        "decision_weights": decision.get("weights"),
        "objective_met": decision.get("objective_met"),
        "validation_with_weights": decision.get("validation"),
        "check_window": decision.get("check_window"),
        "high_bands": {k: v["high"] for k, v in (chosen.class_bands or {}).items()},
    }
    return model, split, [u for u in urgent if u in model.labels], figures


def test_figures(model: FittedModel, split: Split, urgent: list[str]) -> dict[str, Any]:
    """The priority's test-window figures, as `training.train` computes them."""
    chosen = model.classifiers["priority"]
    weights = chosen.classifier.decision_weights
    proba = model.predict_proba([e.doc for e in split.test])
    columns = decide(proba, None if weights is None else np.asarray(weights))
    predicted = [chosen.labels[i] for i in columns]
    truth = [e.label for e in split.test]
    urgent_columns = [i for i, label in enumerate(chosen.labels) if label in urgent]
    bands = chosen.class_bands or {}
    metrics = classification_metrics(
        truth,
        predicted,
        chosen.labels,
        urgent,
        proba[np.arange(len(predicted)), columns],
        {label: bands.get(label, chosen.bands)["high"] for label in chosen.labels},
        proba[:, urgent_columns].sum(axis=1),
    )
    plain = classification_metrics(
        truth, [chosen.labels[i] for i in proba.argmax(axis=1)], chosen.labels, urgent
    )
    auto = metrics["auto_apply"]
    return {
        "macro_f1": metrics["macro_f1"],
        "urgent_recall": metrics["urgent_recall"],
        "urgent_average_precision": metrics["urgent_average_precision"],
        "auto_apply_share": auto["share"],
        "auto_apply_precision": auto["precision"],
        "auto_apply_per_class": {k: v for k, v in auto["per_class"].items() if v["applied"]},
        "most_probable": {"macro_f1": plain["macro_f1"], "urgent_recall": plain["urgent_recall"]},
    }


def _precision_by_rank(
    confidence: np.ndarray, predicted: np.ndarray, right: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The confidences of the tickets ``predicted`` as one class, most confident first, and
    the precision among the first k of them for each k (``right``: the truth is that class)."""
    order = np.argsort(-confidence[predicted], kind="stable")
    correct = right[predicted][order]
    return confidence[predicted][order], np.cumsum(correct) / np.arange(1, len(order) + 1)


def ceiling_figures(
    labels: Sequence[str],
    proba: np.ndarray,
    truth: Sequence[str],
    urgent: Sequence[str],
    weights: Sequence[float] | None,
    macro_f1_floor: float = 0.48,
) -> dict[str, Any]:
    """What the test window would allow if the decisions were chosen on it, which no design
    may do. Over urgent weights from 1 to 40 (the urgent labels' probabilities times one
    factor): the largest macro-F1, and the largest urgent recall whose macro-F1 stays at
    ``macro_f1_floor`` or above; and the largest share of test tickets whose most confident
    predictions of each class are at least 90 % precise (a band per class set on the test
    window itself)."""
    names, answers = np.asarray(labels), np.asarray(truth)
    is_urgent = np.isin(answers, urgent)
    sweep = []
    for factor in np.exp(np.linspace(0.0, np.log(40.0), 60)):
        predicted = names[decide(proba, np.where(np.isin(names, urgent), factor, 1.0))]
        found = int((np.isin(predicted, urgent) & is_urgent).sum())
        macro_f1 = f1_score(answers, predicted, labels=names, average="macro", zero_division=0)
        sweep.append(
            {
                "urgent_weight": round(float(factor), 2),
                "macro_f1": round(float(macro_f1), 3),
                "urgent_recall": round(found / max(int(is_urgent.sum()), 1), 3),
            }
        )
    within = [row for row in sweep if row["macro_f1"] >= macro_f1_floor]
    columns = decide(proba, None if weights is None else np.asarray(weights))
    confidence = proba[np.arange(len(columns)), columns]
    applied = {}
    for c, label in enumerate(names):
        _, precision = _precision_by_rank(confidence, columns == c, answers == label)
        reached = np.flatnonzero(precision >= 0.9)
        applied[str(label)] = int(reached[-1] + 1) if len(reached) else 0
    return {
        "best_macro_f1": max(sweep, key=lambda r: r["macro_f1"]),
        "best_urgent_recall_at_floor": max(within, key=lambda r: r["urgent_recall"])
        if within
        else None,
        "urgent_weight_sweep": sweep[::6],
        "auto_apply_ceiling": {
            "share": round(sum(applied.values()) / len(answers), 3),
            "per_class": applied,
        },
    }


def _fold_windows(preset: str, design: str) -> tuple[list[tuple[Any, ...]], np.ndarray]:
    config = _setup(design)
    split, _ = _split(preset, design)
    train = split.fit + split.validation
    y = np.array([e.label for e in train])
    starts = [int(len(y) * f) for f in config.band_folds] + [len(y)]
    windows = []
    for a, b in pairwise(starts):
        features = trained_model.build_features((), config).fit([e.doc for e in train[:a]])
        windows.append(
            (
                features.transform([e.doc for e in train[:a]]),
                y[:a],
                features.transform([e.doc for e in train[a:b]]),
                y[a:b],
            )
        )
    return windows, y


def fold_scores(
    preset: str, design: str, c_grid: Sequence[float], weights: Sequence[str | None]
) -> dict[str, float]:
    """Pooled out-of-fold macro-F1 of each (C, class weighting)."""
    windows, y = _fold_windows(preset, design)
    labels = sorted(set(y))
    scores = {}
    for weight in weights:
        for c in c_grid:
            predicted, truth = [], []
            for x_a, y_a, x_b, y_b in windows:
                lr = LogisticRegression(C=c, class_weight=weight, max_iter=3000).fit(x_a, y_a)
                predicted.append(lr.predict(x_b))
                truth.append(y_b)
            scores[f"C={c:g} class_weight={weight}"] = float(
                f1_score(
                    np.concatenate(truth),
                    np.concatenate(predicted),
                    labels=labels,
                    average="macro",
                    zero_division=0,
                )
            )
    return scores


def band_curve(preset: str, design: str) -> dict[str, Any]:
    """Per predicted class: out-of-fold precision among its k most confident predictions, with
    the confidence of the k-th, for the chosen model (and its decision weights)."""
    model, split, _, figures = _fit(preset, design)
    chosen = model.classifiers["priority"]
    train = split.fit + split.validation
    y = np.array([e.label for e in train])
    labels = np.unique(y[: len(split.fit)])
    oof = trained_model.out_of_fold(
        train, y, (), chosen.params, chosen.temperature, ModelConfig(), labels
    )
    assert oof is not None
    proba, truth = oof
    weights = chosen.classifier.decision_weights
    columns = decide(proba, None if weights is None else np.asarray(weights))
    confidence = proba[np.arange(len(columns)), columns]
    out: dict[str, Any] = {"rows": len(truth), "high_bands": figures["high_bands"]}
    for c, label in enumerate(labels):
        ranked, precision = _precision_by_rank(confidence, columns == c, truth == label)
        out[str(label)] = {
            f"top {k}": [round(float(ranked[k - 1]), 3), round(precision[k - 1], 3)]
            for k in (10, 20, 30, 40, 60, 83, 100, 150)
            if k <= len(ranked)
        }
    return out


def _svc_margins(c: float, x_fit: Any, y_fit: np.ndarray, x_val: Any) -> np.ndarray:
    svc = LinearSVC(C=c, class_weight="balanced").fit(x_fit, y_fit)
    return np.asarray(svc.decision_function(x_val))


def ensemble_scores(
    split: Split,
    config: ModelConfig,
    lr_c: Sequence[float] = (0.5, 1, 2, 4, 8),
    svc_c: Sequence[float] = (0.03, 0.1, 0.3, 1),
    nb_alpha: Sequence[float] = (0.1, 0.3, 1),
    mix: Sequence[float] = (0, 0.25, 0.5, 1, 2),
) -> dict[str, Any]:
    """An ensemble across model kinds on the shipped features: the log-probabilities of a
    class-balanced logistic regression, plus ``mix`` times those of a class-balanced LinearSVC
    (its margins through a softmax) and of complement naive Bayes. Validation macro-F1 of each
    model alone and of the best mixes (most probable label), fitted on the fit window."""
    features = trained_model.build_features((), config).fit([e.doc for e in split.fit])
    x_fit = features.transform([e.doc for e in split.fit])
    x_val = features.transform([e.doc for e in split.validation])
    y_fit = np.array([e.label for e in split.fit])
    y_val = np.array([e.label for e in split.validation])
    labels = np.unique(y_fit)

    def log(p: np.ndarray) -> np.ndarray:
        return np.asarray(np.log(np.clip(p, 1e-12, 1.0)))

    def macro_f1(scores: np.ndarray) -> float:
        predicted = labels[scores.argmax(axis=1)]
        return float(f1_score(y_val, predicted, labels=labels, average="macro", zero_division=0))

    kinds: dict[str, dict[float, np.ndarray]] = {
        "logistic": {
            c: log(
                LogisticRegression(C=c, class_weight="balanced", max_iter=config.max_iter)
                .fit(x_fit, y_fit)
                .predict_proba(x_val)
            )
            for c in lr_c
        },
        "linear_svc": {
            c: log(trained_model.softmax(_svc_margins(c, x_fit, y_fit, x_val))) for c in svc_c
        },
        "complement_nb": {
            a: log(ComplementNB(alpha=a).fit(x_fit, y_fit).predict_proba(x_val)) for a in nb_alpha
        },
    }
    alone = {f"{kind} {k:g}": macro_f1(v) for kind, d in kinds.items() for k, v in d.items()}
    mixes = []
    for (c, lr), (cs, svc), (a, nb) in product(
        kinds["logistic"].items(), kinds["linear_svc"].items(), kinds["complement_nb"].items()
    ):
        for w_svc, w_nb in product(mix, mix):
            if w_svc or w_nb:
                name = f"logistic {c:g} + {w_svc:g} x svc {cs:g} + {w_nb:g} x nb {a:g}"
                mixes.append((macro_f1(lr + w_svc * svc + w_nb * nb), name))
    mixes.sort(reverse=True)
    return {
        "validation_macro_f1_alone": alone,
        "best_mixes": [{"mix": name, "validation_macro_f1": f1} for f1, name in mixes[:5]],
    }


def main(argv: Sequence[str] | None = None) -> None:
    """The command line (see the module's docstring)."""
    parser = argparse.ArgumentParser(prog="python -m bench.accuracy_designs")
    parser.add_argument(
        "mode", choices=("validation", "test", "ceiling", "folds", "bands", "ensemble")
    )
    parser.add_argument("preset", choices=("hadoop", "hadoop-5"))
    parser.add_argument("design", choices=tuple(DESIGNS))
    parser.add_argument("c_grid", nargs="?", default="0.25,0.5,1,2,4,8,16,32")
    parser.add_argument("--class-weights", default="None,balanced")
    args = parser.parse_args(argv)
    if args.mode == "folds":
        weights = [None if w == "None" else w for w in args.class_weights.split(",")]
        result: dict[str, Any] = fold_scores(
            args.preset, args.design, [float(c) for c in args.c_grid.split(",")], weights
        )
    elif args.mode == "bands":
        result = band_curve(args.preset, args.design)
    elif args.mode == "ensemble":
        config = _setup(args.design)
        result = ensemble_scores(_split(args.preset, args.design)[0], config)
    else:
        model, split, urgent, result = _fit(args.preset, args.design)
        if args.mode == "test":
            result["test"] = test_figures(model, split, urgent)
        elif args.mode == "ceiling":
            chosen = model.classifiers["priority"]
            result["test_ceiling"] = ceiling_figures(
                chosen.labels,
                model.predict_proba([e.doc for e in split.test]),
                [e.label for e in split.test],
                urgent,
                chosen.classifier.decision_weights,
            )
    json.dump(result, sys.stdout, indent=1, default=str)
    print()


if __name__ == "__main__":
    main()

"""The baselines every figure is quoted beside, given the same chance as the model.

Each reference is tuned as the model is: its hyper-parameters are chosen on the validation
window (fitting on the window before it) by macro-F1, then it is refitted on fit + validation
and scored on the test window. The untuned TF-IDF + LinearSVC of earlier reports stays for
comparison; the model is compared with the strongest reference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.svm import LinearSVC

from training.data import Example, Split
from training.metrics import classification_metrics

SVC_C_GRID = (0.1, 0.3, 1.0, 3.0)
LOGREG_C_GRID = (0.25, 1.0, 4.0, 16.0)
CLASS_WEIGHTS: tuple[str | None, ...] = (None, "balanced")
# The references tuned on the validation window, of which the strongest is the one to beat.
TUNED = ("tfidf_linearsvc_tuned", "tfidf_logreg_balanced")


def _text(e: Example) -> str:
    return f"{e.doc['subject']} {e.doc['description']}"


def _tune(
    make: Callable[[dict[str, Any]], Any],
    grid: Sequence[dict[str, Any]],
    split: Split,
    y_fit: Sequence[str],
    y_val: Sequence[str],
) -> dict[str, Any]:
    vectorizer = TfidfVectorizer()
    x_fit = vectorizer.fit_transform([_text(e) for e in split.fit])
    x_val = vectorizer.transform([_text(e) for e in split.validation])
    best: tuple[float, dict[str, Any]] | None = None
    for params in grid:
        predicted = make(params).fit(x_fit, y_fit).predict(x_val)
        score = float(f1_score(y_val, predicted, average="macro", zero_division=0))
        if best is None or score > best[0]:
            best = (score, params)
    assert best is not None
    return best[1] | {"validation_macro_f1": best[0]}


def _svc(p: dict[str, Any]) -> LinearSVC:
    return LinearSVC(C=p["C"], class_weight=p["class_weight"])


def _logreg(p: dict[str, Any]) -> LogisticRegression:
    return LogisticRegression(C=p["C"], class_weight="balanced", max_iter=3000)


_REFERENCES: dict[str, tuple[Callable[[dict[str, Any]], Any], list[dict[str, Any]]]] = {
    "tfidf_linearsvc_tuned": (
        _svc,
        [{"C": c, "class_weight": w} for w in CLASS_WEIGHTS for c in SVC_C_GRID],
    ),
    "tfidf_logreg_balanced": (_logreg, [{"C": c} for c in LOGREG_C_GRID]),
}


def tune_references(split: Split, label_of: Callable[[Example], str]) -> dict[str, Any]:
    """Each tuned reference's hyper-parameters, chosen by macro-F1 on the validation window
    (fitted on the fit window), with that ``validation_macro_f1``; empty when the fit window
    has a single label."""
    y_fit = [label_of(e) for e in split.fit]
    y_val = [label_of(e) for e in split.validation]
    if len(set(y_fit)) < 2:
        return {}
    return {
        name: _tune(make, grid, split, y_fit, y_val) for name, (make, grid) in _REFERENCES.items()
    }


def tuned_baselines(
    split: Split,
    label_of: Callable[[Example], str],
    labels: list[str],
    urgent: list[str],
    tuned: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Test-window metrics of the majority class, the untuned TF-IDF + LinearSVC, a LinearSVC
    whose C and class weighting are chosen on the validation window, and a class-balanced
    logistic regression whose C is; each tuned one carries its chosen ``params`` (``tuned``, if
    `tune_references` already chose them)."""
    train = split.fit + split.validation
    y_fit = [label_of(e) for e in split.fit]
    y_val = [label_of(e) for e in split.validation]
    y_train = y_fit + y_val
    y_test = [label_of(e) for e in split.test]
    vectorizer = TfidfVectorizer()
    x_train = vectorizer.fit_transform([_text(e) for e in train])
    x_test = vectorizer.transform([_text(e) for e in split.test])

    def score(estimator: Any) -> dict[str, Any]:
        return classification_metrics(
            y_test, estimator.fit(x_train, y_train).predict(x_test), labels, urgent
        )

    majority = DummyClassifier(strategy="most_frequent").fit(np.zeros((len(train), 1)), y_train)
    out: dict[str, Any] = {
        "majority": classification_metrics(
            y_test, majority.predict(np.zeros((len(y_test), 1))), labels, urgent
        ),
        "tfidf_linearsvc": score(LinearSVC()),
    }
    chosen = tune_references(split, label_of) if tuned is None else tuned
    for name, params in chosen.items():
        out[name] = score(_REFERENCES[name][0](params)) | {"params": params}
    return out


def strongest(baselines: dict[str, Any]) -> str:
    """The reference (tuned or not, the majority class aside) with the highest test macro-F1:
    the one the model is held against."""
    names = [n for n in baselines if n != "majority"]
    return max(names, key=lambda n: float(baselines[n]["macro_f1"]))

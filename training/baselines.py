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


def tuned_baselines(
    split: Split, label_of: Callable[[Example], str], labels: list[str], urgent: list[str]
) -> dict[str, Any]:
    """Test-window metrics of the majority class, the untuned TF-IDF + LinearSVC, a LinearSVC
    whose C and class weighting are chosen on the validation window, and a class-balanced
    logistic regression whose C is; each tuned one carries its chosen ``params``."""
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
    if len(set(y_fit)) < 2:
        return out

    def svc(p: dict[str, Any]) -> LinearSVC:
        return LinearSVC(C=p["C"], class_weight=p["class_weight"])

    def logreg(p: dict[str, Any]) -> LogisticRegression:
        return LogisticRegression(C=p["C"], class_weight="balanced", max_iter=3000)

    for name, make, grid in (
        (
            "tfidf_linearsvc_tuned",
            svc,
            [{"C": c, "class_weight": w} for w in CLASS_WEIGHTS for c in SVC_C_GRID],
        ),
        ("tfidf_logreg_balanced", logreg, [{"C": c} for c in LOGREG_C_GRID]),
    ):
        params = _tune(make, grid, split, y_fit, y_val)
        out[name] = score(make(params)) | {"params": params}
    return out


def strongest(baselines: dict[str, Any]) -> str:
    """The reference (tuned or not, the majority class aside) with the highest test macro-F1:
    the one the model is held against."""
    names = [n for n in baselines if n != "majority"]
    return max(names, key=lambda n: float(baselines[n]["macro_f1"]))

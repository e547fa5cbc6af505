"""The priority model: TF-IDF blocks, logistic regression, temperature scaling, confidence bands.

Fitting follows the time order of the data: hyper-parameters (regularisation and class weighting)
are chosen on the validation window, the temperature and the confidence bands are fitted on the
same window with the chosen model, the model is refitted on all training data, and the test window
is never looked at here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import FeatureUnion, Pipeline

from core.model import MODEL_FORMAT
from core.text import BlockAnalyzer
from training.data import Example

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameter grid and feature settings; the defaults are the product's."""

    c_grid: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
    class_weights: tuple[str | None, ...] = (None, "balanced")
    ngram_max: int = 2
    description_max_chars: int = 5000
    min_df: int = 2
    high_precision: float = 0.9
    medium_precision: float = 0.75
    min_band_support: int = 20
    max_iter: int = 3000


def build_features(field_names: Sequence[str], config: ModelConfig) -> FeatureUnion:
    """The TF-IDF blocks: the ticket's text, and its form fields when there are any; the
    analyzers are the very ones serving runs."""
    analyzers = [BlockAnalyzer("text", "text", config.ngram_max, config.description_max_chars)]
    if field_names:
        analyzers.append(BlockAnalyzer("fields", "fields", 1, None, tuple(field_names)))
    return FeatureUnion(
        [
            (
                a.name,
                TfidfVectorizer(
                    analyzer=a,
                    sublinear_tf=True,
                    min_df=1 if a.source == "fields" else config.min_df,
                    dtype=np.float64,
                ),
            )
            for a in analyzers
        ]
    )


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


class TemperatureScaledClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A linear classifier whose probabilities are ``softmax(decision_function / temperature)``.

    The temperature is a parameter: it is fitted on a validation window (with scikit-learn's
    own temperature scaling) before the final refit on all training data.
    """

    def __init__(self, estimator: Any = None, temperature: float = 1.0) -> None:
        self.estimator = estimator
        self.temperature = temperature

    def fit(self, x: Any, y: Any) -> TemperatureScaledClassifier:
        """Fit a clone of the wrapped estimator."""
        self.estimator_ = clone(self.estimator).fit(x, y)
        self.classes_ = self.estimator_.classes_
        return self

    def logits(self, x: Any) -> np.ndarray:
        """Decision values as one column per class (binary ``x`` becomes ``(-x, x)``)."""
        z = np.asarray(self.estimator_.decision_function(x), dtype=np.float64)
        return np.column_stack([-z, z]) if z.ndim == 1 else z

    def predict_proba(self, x: Any) -> np.ndarray:
        """Calibrated probabilities, one column per class in ``classes_`` order."""
        return _softmax(self.logits(x) / self.temperature)

    def predict(self, x: Any) -> np.ndarray:
        """The most probable class."""
        return np.asarray(self.classes_[self.predict_proba(x).argmax(axis=1)])


def band_thresholds(
    confidence: np.ndarray, correct: np.ndarray, config: ModelConfig
) -> dict[str, float]:
    """The lowest confidence at which predictions at or above it reach each band's precision on
    the validation window, with enough tickets behind it; a band no threshold reaches is empty
    (its threshold is above 1)."""
    order = np.argsort(-confidence, kind="stable")
    conf_sorted = confidence[order]
    counts = np.arange(1, len(order) + 1)
    precision = np.cumsum(correct[order]) / counts
    # Only cut between distinct confidences, so that ties fall on one side together.
    distinct = np.append(conf_sorted[1:] < conf_sorted[:-1], True)
    thresholds: dict[str, float] = {}
    for band, target in (("high", config.high_precision), ("medium", config.medium_precision)):
        ok = (precision >= target) & (counts >= config.min_band_support) & distinct
        thresholds[band] = float(conf_sorted[np.flatnonzero(ok).max()]) if ok.any() else 1.01
    thresholds["medium"] = min(thresholds["medium"], thresholds["high"])
    return thresholds


@dataclass
class FittedPriorityModel:
    """The scikit-learn pipeline, its export for serving and what validation said about it."""

    pipeline: Pipeline
    labels: list[str]
    params: dict[str, Any]
    bands: dict[str, float]
    validation: dict[str, Any] = field(default_factory=dict)

    @property
    def temperature(self) -> float:
        """The temperature fitted on the validation window."""
        return float(self.pipeline.named_steps["classifier"].temperature)

    def predict_proba(self, docs: Sequence[dict[str, Any]]) -> np.ndarray:
        """Calibrated probabilities, columns in `labels` order."""
        return np.asarray(self.pipeline.predict_proba(list(docs)))

    def export(self) -> dict[str, Any]:
        """The model as `core.model.LinearTextModel` reads it: plain JSON numbers, no pickle."""
        features: FeatureUnion = self.pipeline.named_steps["features"]
        classifier: TemperatureScaledClassifier = self.pipeline.named_steps["classifier"]
        lr: LogisticRegression = classifier.estimator_
        coef = np.asarray(lr.coef_, dtype=np.float64)
        intercept = np.asarray(lr.intercept_, dtype=np.float64)
        if coef.shape[0] == 1:
            coef = np.vstack([-coef[0], coef[0]])
            intercept = np.array([-intercept[0], intercept[0]])
        blocks, coef_blocks, start = [], [], 0
        for name, vectorizer in features.transformer_list:
            terms = vectorizer.get_feature_names_out()
            size = len(terms)
            blocks.append(
                {
                    "name": name,
                    "analyzer": vectorizer.analyzer.to_dict(),
                    "sublinear_tf": True,
                    "terms": [str(t) for t in terms],
                    "idf": [float(v) for v in vectorizer.idf_],
                }
            )
            coef_blocks.append([[float(v) for v in row[start : start + size]] for row in coef])
            start += size
        return {
            "format": MODEL_FORMAT,
            "blocks": blocks,
            "targets": {
                "priority": {
                    "labels": self.labels,
                    "coef": coef_blocks,
                    "intercept": [float(v) for v in intercept],
                    "temperature": self.temperature,
                    "bands": self.bands,
                }
            },
        }


def _pipeline(
    field_names: Sequence[str], config: ModelConfig, c: float, weight: str | None, t: float
) -> Pipeline:
    lr = LogisticRegression(C=c, class_weight=weight, max_iter=config.max_iter)
    return Pipeline(
        [
            ("features", build_features(field_names, config)),
            ("classifier", TemperatureScaledClassifier(lr, temperature=t)),
        ]
    )


def fit_priority_model(
    fit: list[Example],
    validation: list[Example],
    field_names: Sequence[str],
    config: ModelConfig | None = None,
    progress: Progress | None = None,
) -> FittedPriorityModel:
    """Choose hyper-parameters on the validation window, fit the temperature and the confidence
    bands there, then refit on fit + validation so the model knows the most recent tickets."""
    config = config or ModelConfig()
    say = progress or (lambda _msg: None)
    fit_docs, val_docs = [e.doc for e in fit], [e.doc for e in validation]
    y_fit, y_val = np.array([e.label for e in fit]), np.array([e.label for e in validation])
    features = build_features(field_names, config).fit(fit_docs)
    x_fit, x_val = features.transform(fit_docs), features.transform(val_docs)
    best: tuple[float, float, str | None, LogisticRegression] | None = None
    grid = [(c, w) for w in config.class_weights for c in config.c_grid]
    for step, (c, weight) in enumerate(grid, start=1):
        lr = LogisticRegression(C=c, class_weight=weight, max_iter=config.max_iter)
        lr.fit(x_fit, y_fit)
        score = float(f1_score(y_val, lr.predict(x_val), average="macro", zero_division=0))
        say(
            f"grid {step}/{len(grid)}: C={c:g} class_weight={weight}: "
            f"validation macro-F1 {score:.3f}"
        )
        if best is None or score > best[0]:
            best = (score, c, weight, lr)
    assert best is not None
    score, c, weight, lr = best
    say(f"chosen C={c:g} class_weight={weight} (validation macro-F1 {score:.3f})")
    calibrated = CalibratedClassifierCV(FrozenEstimator(lr), method="temperature").fit(x_val, y_val)
    temperature = 1.0 / float(calibrated.calibrated_classifiers_[0].calibrators[0].beta_)
    proba = calibrated.predict_proba(x_val)
    correct = calibrated.classes_[proba.argmax(axis=1)] == y_val
    bands = band_thresholds(proba.max(axis=1), correct, config)
    say(f"temperature {temperature:.3f}; confidence bands {bands}; refitting on all training data")
    pipeline = _pipeline(field_names, config, c, weight, temperature)
    pipeline.fit(fit_docs + val_docs, np.concatenate([y_fit, y_val]))
    return FittedPriorityModel(
        pipeline=pipeline,
        labels=[str(label) for label in pipeline.classes_],
        params={
            "C": c,
            "class_weight": weight,
            "ngram_max": config.ngram_max,
            "description_max_chars": config.description_max_chars,
            "min_df": config.min_df,
            "temperature": temperature,
        },
        bands=bands,
        validation={"macro_f1": score, "rows": len(validation)},
    )

"""The priority model: TF-IDF blocks, logistic regression, temperature scaling, confidence bands.

Fitting follows the time order of the data: hyper-parameters (regularisation and class weighting)
are chosen on the validation window, the temperature and the confidence bands are fitted on the
same window with the chosen model, the model is refitted on all training data, and the test window
is never looked at here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import f1_score
from sklearn.pipeline import FeatureUnion, Pipeline

from core.model import MODEL_FORMAT
from core.similar import INDEX_FORMAT
from core.text import BlockAnalyzer
from training.data import Example
from training.decisions import DecisionObjective, class_bands, decide, decision_weights

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
    # The decision objective of priority: find at least this share of the urgent tickets on the
    # validation window (None: the most probable label, no decision weights).
    urgent_recall: float | None = 0.5
    medium_precision: float = 0.75
    min_band_support: int = 20
    # Where the forward-chaining folds that set the priority's per-class bands start, as shares
    # of the training window (fit + validation): each fold is predicted by a model fitted on
    # every ticket before it. Pooled, they hold far more tickets than the validation window
    # alone, whose 20 most confident tickets of a class decide nothing reliably. Empty: the
    # validation window's bands.
    band_folds: tuple[float, ...] = (0.4, 0.52, 0.64, 0.76, 0.88)
    max_iter: int = 3000
    # Labels of a secondary target seen fewer times than this are merged into "Other".
    min_label_count: int = 10
    ridge_alphas: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0, 30.0)
    # Terms kept per closed ticket in the similar-ticket index, and results returned.
    index_terms: int = 40
    # Terms of a new ticket that query the index: its heaviest, which bound the work per ticket.
    query_terms: int = 15
    similar_count: int = 5


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


def softmax(z: np.ndarray) -> np.ndarray:
    """Each row of logits as probabilities (shifted by its maximum, so large logits do not
    overflow); both trainers and the design scripts use this one."""
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


class TemperatureScaledClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A linear classifier whose probabilities are ``softmax(decision_function / temperature)``.

    The temperature is a parameter: it is fitted on a validation window (with scikit-learn's
    own temperature scaling) before the final refit on all training data.
    """

    def __init__(
        self,
        estimator: Any = None,
        temperature: float = 1.0,
        decision_weights: Sequence[float] | None = None,
    ) -> None:
        self.estimator = estimator
        self.temperature = temperature
        self.decision_weights = decision_weights

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
        return softmax(self.logits(x) / self.temperature)

    def predict(self, x: Any) -> np.ndarray:
        """The class serving predicts: the most probable one, or the largest probability times
        its decision weight when the model has weights (`training.decisions`)."""
        weights = None if self.decision_weights is None else np.asarray(self.decision_weights)
        return np.asarray(self.classes_[decide(self.predict_proba(x), weights)])


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature ``T`` that minimises the mean log-loss of ``softmax(logits / T)`` on the
    validation window, as scikit-learn's temperature scaling fits it (the inverse temperature,
    searched in log space between e^-10 and e^10).

    ``y`` holds each row's column in ``logits``. Unlike scikit-learn's calibrator this accepts a
    window in which some of the model's classes never occur, as happens when a rare class's
    tickets all fall in the fit window.
    """
    if len(y) == 0:
        return 1.0  # nothing to calibrate on: the model's own scale
    rows = np.arange(len(y))
    columns = np.asarray(y, dtype=np.int64)

    def log_loss(log_beta: float) -> float:
        z = np.exp(log_beta) * logits
        top = z.max(axis=1)
        lse = top + np.log(np.exp(z - top[:, None]).sum(axis=1))
        return float(np.mean(lse - z[rows, columns]))

    found = minimize_scalar(
        log_loss, bounds=(-10.0, 10.0), options={"xatol": 64 * np.finfo(float).eps}
    )
    return float(1.0 / np.exp(found.x))


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


QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
OTHER = "Other"


@dataclass
class ChosenClassifier:
    """One categorical target: its fitted classifier and what validation chose for it."""

    classifier: TemperatureScaledClassifier
    params: dict[str, Any]
    bands: dict[str, float]
    validation_macro_f1: float
    # Per-class bands and (for priority) decision weights, chosen on the validation window.
    class_bands: dict[str, dict[str, float]] | None = None
    decision: dict[str, Any] | None = None
    validation_majority_macro_f1: float | None = None

    @property
    def shipped(self) -> bool:
        """Whether serving predicts this target by default: priority always; another target
        only when it beat always answering the majority class on the validation window."""
        majority = self.validation_majority_macro_f1
        return self.decision is not None or majority is None or self.validation_macro_f1 > majority

    @property
    def labels(self) -> list[str]:
        """Class labels in probability-column order."""
        return [str(label) for label in self.classifier.classes_]

    @property
    def temperature(self) -> float:
        """The temperature fitted on the validation window."""
        return float(self.classifier.temperature)


@dataclass
class ResolutionTimeModel:
    """Ridge regression of log(1 + hours) with residual quantiles from the validation window,
    which turn one prediction into a median and 50 % and 90 % intervals."""

    regressor: Ridge
    alpha: float
    residual_quantiles: dict[str, float]
    validation: dict[str, Any]

    def predict_hours(self, x: Any) -> dict[str, np.ndarray]:
        """Hours at each quantile for each row of the feature matrix."""
        z = np.asarray(self.regressor.predict(x), dtype=np.float64)
        return {q: np.maximum(np.expm1(z + r), 0.0) for q, r in self.residual_quantiles.items()}


@dataclass
class SimilarityIndex:
    """The closed tickets of the training window as truncated TF-IDF vectors of the text block,
    and the best-match score above which a new ticket is flagged a possible duplicate."""

    docs: list[dict[str, Any]]
    matrix: Any  # scipy.sparse CSR, rows = docs, weights rounded as exported
    threshold: float
    validation: dict[str, Any]
    terms: int

    def scores(self, x_text: Any) -> np.ndarray:
        """Similarity of each query row (text-block TF-IDF, truncated like the indexed rows) to
        every indexed ticket."""
        return np.asarray((truncate_rows(x_text, self.terms) @ self.matrix.T).toarray())


def truncate_rows(x_text: Any, k: int, decimals: int | None = None) -> Any:
    """Keep each row's ``k`` largest weights (ties: lower term index first, as serving does),
    optionally rounded as the artifact stores them."""
    from scipy import sparse

    rows, cols, vals = [], [], []
    x = x_text.tocsr()
    x.sort_indices()
    for r in range(x.shape[0]):
        start, end = x.indptr[r], x.indptr[r + 1]
        idx, data = x.indices[start:end], x.data[start:end]
        keep = np.lexsort((idx, -data))[:k]
        rows += [r] * len(keep)
        cols += idx[keep].tolist()
        kept = data[keep]
        vals += (np.round(kept, decimals) if decimals is not None else kept).tolist()
    return sparse.csr_matrix((vals, (rows, cols)), shape=x.shape)


def duplicate_threshold(best: np.ndarray, is_dup: np.ndarray) -> tuple[float, dict[str, Any]]:
    """The best-match score that maximises F1 for "closed as duplicate" on the validation
    window, with the precision and recall it reaches there."""
    if not is_dup.any():
        return 1.01, {"positives": 0, "precision": None, "recall": None, "f1": None}
    candidates = np.unique(best)
    top: tuple[float, float, float, float] = (-1.0, 1.01, 0.0, 0.0)
    for t in candidates:
        flagged = best >= t
        tp = float((flagged & is_dup).sum())
        if tp == 0:
            continue
        precision, recall = tp / flagged.sum(), tp / is_dup.sum()
        f1 = 2 * precision * recall / (precision + recall)
        if f1 > top[0]:
            top = (f1, float(t), precision, recall)
    f1, t, precision, recall = top
    return t, {
        "positives": int(is_dup.sum()),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1) if f1 >= 0 else None,
    }


@dataclass
class FittedModel:
    """Shared TF-IDF features, one calibrated classifier per target, the resolution-time model
    and the similar-ticket index: everything the artifact exports."""

    features: FeatureUnion
    classifiers: dict[str, ChosenClassifier]
    resolution: ResolutionTimeModel | None
    index: SimilarityIndex | None
    params: dict[str, Any]

    @property
    def pipeline(self) -> Pipeline:
        """The priority model as one scikit-learn pipeline (ticket documents in)."""
        return Pipeline(
            [("features", self.features), ("classifier", self.classifiers["priority"].classifier)]
        )

    @property
    def labels(self) -> list[str]:
        """Priority labels in probability-column order."""
        return self.classifiers["priority"].labels

    @property
    def bands(self) -> dict[str, float]:
        """Priority confidence-band thresholds."""
        return self.classifiers["priority"].bands

    @property
    def temperature(self) -> float:
        """Priority temperature."""
        return self.classifiers["priority"].temperature

    def predict_proba(self, docs: Sequence[dict[str, Any]], target: str = "priority") -> np.ndarray:
        """Calibrated probabilities of one target, columns in its label order."""
        x = self.features.transform(list(docs))
        return np.asarray(self.classifiers[target].classifier.predict_proba(x))

    def text_block(self, docs: Sequence[dict[str, Any]]) -> Any:
        """The text block's TF-IDF rows (the similarity space)."""
        return self.features.transformer_list[0][1].transform(list(docs))

    def export(self) -> tuple[dict[str, Any], bytes]:
        """The model as `core.model.LinearTextModel` reads it (see `pack_model`)."""
        heads = {}
        for name, chosen in self.classifiers.items():
            lr: LogisticRegression = chosen.classifier.estimator_
            heads[name] = LinearHead(
                chosen.labels,
                lr.coef_,
                lr.intercept_,
                chosen.temperature,
                chosen.bands,
                chosen.class_bands,
                chosen.decision,
                name == "priority" or chosen.shipped,
            )
        resolution = None
        if self.resolution is not None:
            ridge = self.resolution.regressor
            resolution = ResolutionRegression(
                ridge.coef_, float(ridge.intercept_), self.resolution.residual_quantiles
            )
        blocks = [
            (vectorizer.analyzer, vectorizer.get_feature_names_out(), vectorizer.idf_)
            for _, vectorizer in self.features.transformer_list
        ]
        return pack_model(blocks, heads, resolution)

    def export_index(self) -> tuple[dict[str, Any], bytes] | None:
        """The similar-ticket index as `core.similar` reads it: a JSON header with the indexed
        tickets, and the postings (term → tickets and weights) as one binary block."""
        if self.index is None:
            return None
        return index_files(
            self.index, self.features.transformer_list[0][0], self.params["similar_count"]
        )


@dataclass(frozen=True)
class LinearHead:
    """One categorical target as the artifact stores it: a row of weights per label over the
    whole feature vector. A single row is a binary decision value x (scikit-learn's and MLlib's
    binary logistic regression), stored as the two logits (-x, x)."""

    labels: list[str]
    coef: Any
    intercept: Any
    temperature: float
    bands: dict[str, float]
    # Optional: a head without them serves the most probable label with one pair of bands.
    class_bands: dict[str, dict[str, float]] | None = None
    decision: dict[str, Any] | None = None
    # False: the target is in the artifact, but serving leaves it out of the default fields.
    default: bool = True


@dataclass(frozen=True)
class ResolutionRegression:
    """The resolution-time regression of log(1 + hours) as the artifact stores it."""

    coef: Any
    intercept: float
    residual_quantiles: dict[str, float]


def pack_model(
    blocks: Sequence[tuple[BlockAnalyzer, Sequence[Any], Any]],
    heads: dict[str, LinearHead],
    resolution: ResolutionRegression | None = None,
) -> tuple[dict[str, Any], bytes]:
    """The model as `core.model.LinearTextModel` reads it: the structure as JSON and every
    float in one little-endian float64 array; nothing executable, no pickle. ``blocks`` are
    the feature blocks in vector order, each its analyzer, terms and IDF; the single-machine
    and the Spark trainer both write their models through here."""
    chunks: list[np.ndarray] = []
    offset = 0

    def put(values: Any) -> dict[str, int]:
        nonlocal offset
        flat = np.ascontiguousarray(values, dtype="<f8").ravel()
        chunks.append(flat)
        ref = {"offset": offset, "count": int(flat.size)}
        offset += int(flat.size)
        return ref

    spec_blocks, slices, start = [], [], 0
    for analyzer, terms, idf in blocks:
        spec_blocks.append(
            {
                "name": analyzer.name,
                "analyzer": analyzer.to_dict(),
                "sublinear_tf": True,
                "terms": [str(t) for t in terms],
                "idf": put(idf),
            }
        )
        slices.append((start, start + len(terms)))
        start += len(terms)

    targets = {}
    for name, head in heads.items():
        coef = np.atleast_2d(np.asarray(head.coef, dtype=np.float64))
        intercept = np.atleast_1d(np.asarray(head.intercept, dtype=np.float64))
        if coef.shape[0] == 1:
            coef = np.vstack([-coef[0], coef[0]])
            intercept = np.array([-intercept[0], intercept[0]])
        targets[name] = {
            "labels": head.labels,
            "coef": [[put(row[a:b]) for row in coef] for a, b in slices],
            "intercept": [float(v) for v in intercept],
            "temperature": head.temperature,
            "bands": head.bands,
        }
        if head.class_bands is not None:
            targets[name]["class_bands"] = head.class_bands
        if head.decision is not None:
            targets[name]["decision"] = head.decision
        if not head.default:
            targets[name]["default"] = False
    spec: dict[str, Any] = {"format": MODEL_FORMAT, "blocks": spec_blocks, "targets": targets}
    if resolution is not None:
        weights = np.asarray(resolution.coef, dtype=np.float64)
        spec["regressors"] = {
            "resolution_hours": {
                "transform": "log1p",
                "coef": [put(weights[a:b]) for a, b in slices],
                "intercept": float(resolution.intercept),
                "residual_quantiles": resolution.residual_quantiles,
            }
        }
    return spec, np.concatenate(chunks).astype("<f8").tobytes()


def index_files(index: SimilarityIndex, block: str, count: int) -> tuple[dict[str, Any], bytes]:
    """`index.json` and `index.bin` as `core.similar` reads them, for an index over the feature
    block named ``block`` that returns ``count`` tickets."""
    m = index.matrix.tocsc()
    m.sort_indices()
    postings = (
        m.indptr.astype("<u4").tobytes()
        + m.indices.astype("<u4").tobytes()
        + m.data.astype("<f8").tobytes()
    )
    header = {
        "format": INDEX_FORMAT,
        "block": block,
        "threshold": index.threshold,
        "count": count,
        "query_terms": index.terms,
        "terms": int(m.shape[1]),
        "postings": int(m.nnz),
        "docs": index.docs,
    }
    return header, postings


def _choose_classifier(
    name: str,
    x_fit: Any,
    y_fit: np.ndarray,
    x_val: Any,
    y_val: np.ndarray,
    config: ModelConfig,
    say: Progress,
) -> tuple[dict[str, Any], float, float, dict[str, float], np.ndarray]:
    best: tuple[float, float, str | None, LogisticRegression] | None = None
    grid = [(c, w) for w in config.class_weights for c in config.c_grid]
    for step, (c, weight) in enumerate(grid, start=1):
        lr = LogisticRegression(C=c, class_weight=weight, max_iter=config.max_iter)
        lr.fit(x_fit, y_fit)
        score = float(f1_score(y_val, lr.predict(x_val), average="macro", zero_division=0))
        say(
            f"{name}: grid {step}/{len(grid)}: C={c:g} class_weight={weight}: "
            f"validation macro-F1 {score:.3f}"
        )
        if best is None or score > best[0]:
            best = (score, c, weight, lr)
    assert best is not None
    score, c, weight, lr = best
    z = np.asarray(lr.decision_function(x_val), dtype=np.float64)
    logits = np.column_stack([-z, z]) if z.ndim == 1 else z
    # A validation ticket whose class the fit window never saw cannot inform the temperature;
    # it still counts as a wrong answer for the bands.
    known = np.isin(y_val, lr.classes_)
    temperature = fit_temperature(logits[known], np.searchsorted(lr.classes_, y_val[known]))
    proba = softmax(logits / temperature)
    correct = lr.classes_[proba.argmax(axis=1)] == y_val
    bands = band_thresholds(proba.max(axis=1), correct, config)
    say(
        f"{name}: chosen C={c:g} class_weight={weight} (validation macro-F1 {score:.3f}), "
        f"temperature {temperature:.3f}, bands {bands}"
    )
    return {"C": c, "class_weight": weight}, temperature, score, bands, proba


def merge_rare(labels: Sequence[str], min_count: int) -> list[str]:
    """Labels seen fewer than ``min_count`` times become "Other", so that every class the
    model predicts has enough examples to learn and to calibrate on."""
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    return [label if counts[label] >= min_count else OTHER for label in labels]


@dataclass(frozen=True)
class Trust:
    """What `choose_decisions` chose for one target on the validation window."""

    weights: dict[str, float] | None
    decision: dict[str, Any] | None
    class_bands: dict[str, dict[str, float]]
    majority_f1: float

    def weight_list(self, labels: Sequence[str]) -> list[float] | None:
        """The decision weights in ``labels`` order (1 for a label the fit window lacked)."""
        if self.weights is None:
            return None
        return [self.weights.get(str(label), 1.0) for label in labels]


def check_window(
    x_fit: Any, y_fit: np.ndarray, params: dict[str, Any], temperature: float, config: ModelConfig
) -> tuple[np.ndarray, np.ndarray] | None:
    """An earlier window to check decisions on: the last third of the fit window, predicted
    (with the chosen hyper-parameters and temperature) by a model fitted on the first two
    thirds; columns in the fit window's sorted label order. None when too small to say."""
    labels = np.unique(y_fit)
    cut = (2 * len(y_fit)) // 3
    if cut < 2 or len(y_fit) - cut < config.min_band_support or len(set(y_fit[:cut])) < 2:
        return None
    lr = LogisticRegression(
        C=params["C"], class_weight=params["class_weight"], max_iter=config.max_iter
    ).fit(x_fit[:cut], y_fit[:cut])
    z = np.asarray(lr.decision_function(x_fit[cut:]), dtype=np.float64)
    logits = np.column_stack([-z, z]) if z.ndim == 1 else z
    proba = np.zeros((len(y_fit) - cut, len(labels)))
    proba[:, np.searchsorted(labels, lr.classes_)] = softmax(logits / temperature)
    return proba, y_fit[cut:]


def out_of_fold(
    examples: Sequence[Example],
    y: np.ndarray,
    field_names: Sequence[str],
    params: dict[str, Any],
    temperature: float,
    config: ModelConfig,
    labels: np.ndarray,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Forward-chaining out-of-fold probabilities over the training window (``examples`` in
    time order, ``y`` their labels): each fold of `ModelConfig.band_folds` is predicted by
    features and a classifier (the chosen hyper-parameters and temperature) fitted on every
    ticket before it. Columns are ``labels`` (sorted; a class outside them gets no column);
    None when no fold can be fitted."""
    starts = [int(len(y) * f) for f in config.band_folds] + [len(y)]
    probas, truths = [], []
    for a, b in pairwise(starts):
        if a < 2 or b <= a or len(set(y[:a])) < 2:
            continue
        features = build_features(field_names, config).fit([e.doc for e in examples[:a]])
        lr = LogisticRegression(
            C=params["C"], class_weight=params["class_weight"], max_iter=config.max_iter
        ).fit(features.transform([e.doc for e in examples[:a]]), y[:a])
        z = np.asarray(
            lr.decision_function(features.transform([e.doc for e in examples[a:b]])),
            dtype=np.float64,
        )
        logits = np.column_stack([-z, z]) if z.ndim == 1 else z
        known = np.isin(lr.classes_, labels)
        proba = np.zeros((b - a, len(labels)))
        proba[:, np.searchsorted(labels, lr.classes_[known])] = softmax(logits / temperature)[
            :, known
        ]
        probas.append(proba)
        truths.append(y[a:b])
    if not probas:
        return None
    return np.vstack(probas), np.concatenate(truths)


def choose_decisions(
    name: str,
    val_proba: np.ndarray,
    y_fit: np.ndarray,
    y_val: np.ndarray,
    urgent: Sequence[str],
    config: ModelConfig,
    say: Progress,
    check: tuple[np.ndarray, np.ndarray] | None = None,
    macro_f1_floor: float | None = None,
    band_window: tuple[np.ndarray, np.ndarray] | None = None,
) -> Trust:
    """Decision weights (priority, when it has urgent labels and an objective) and per-class
    bands from the fit-window model's validation probabilities (columns in sorted label order,
    as scikit-learn orders them), and the validation macro-F1 of always answering the fit
    window's majority class. ``check`` is an earlier window's probabilities and truth, on
    which the weights must not cost macro-F1 either (see `training.decisions`); ``band_window``
    (probabilities and truth, e.g. `out_of_fold`) is where the bands are set instead of the
    validation window."""
    labels = [str(label) for label in np.unique(y_fit)]
    weights: dict[str, float] | None = None
    decision: dict[str, Any] | None = None
    if urgent and config.urgent_recall is not None and any(u in labels for u in urgent):
        chosen, decision_report = decision_weights(
            val_proba,
            y_val,
            labels,
            urgent,
            DecisionObjective(config.urgent_recall, macro_f1_floor=macro_f1_floor),
            check,
        )
        weights = chosen
        decision = {"weights": chosen, **decision_report}
        say(f"{name}: decision weights {chosen} ({decision_report['validation']})")
    band_proba, band_truth = band_window if band_window is not None else (val_proba, y_val)
    bands = class_bands(
        band_proba,
        band_truth,
        labels,
        None if weights is None else np.asarray([weights[label] for label in labels]),
        config.high_precision,
        config.medium_precision,
        config.min_band_support,
    )
    say(f"{name}: per-class bands {bands}")
    values, counts = np.unique(y_fit, return_counts=True)
    majority = values[counts.argmax()]
    majority_f1 = float(
        f1_score(y_val, np.full(len(y_val), majority), average="macro", zero_division=0)
    )
    return Trust(weights, decision, bands, majority_f1)


def fit_model(
    fit: list[Example],
    validation: list[Example],
    field_names: Sequence[str],
    targets: Sequence[str] = (),
    config: ModelConfig | None = None,
    progress: Progress | None = None,
    urgent: Sequence[str] = (),
    macro_f1_floor: float | None = None,
) -> FittedModel:
    """Choose every hyper-parameter on the validation window (fitting on the window before it),
    fit temperatures, bands, interval widths and the duplicate threshold there, then refit on
    fit + validation so the model knows the most recent tickets."""
    config = config or ModelConfig()
    say = progress or (lambda _msg: None)
    train = fit + validation
    n_fit = len(fit)
    fit_docs, val_docs = [e.doc for e in fit], [e.doc for e in validation]
    features = build_features(field_names, config).fit(fit_docs)
    x_fit, x_val = features.transform(fit_docs), features.transform(val_docs)
    final = build_features(field_names, config).fit([e.doc for e in train])
    x_all = final.transform([e.doc for e in train])

    classifiers: dict[str, ChosenClassifier] = {}
    for name in ("priority", *targets):
        # Tickets labelled by agents before they closed carry a priority but no other target:
        # each secondary target learns from the tickets that have it.
        rows = np.array([name == "priority" or name in e.targets for e in train])
        fit_rows, val_rows = np.flatnonzero(rows[:n_fit]), np.flatnonzero(rows[n_fit:])
        raw = [
            e.label if name == "priority" else e.targets[name]
            for e, keep in zip(train, rows, strict=True)
            if keep
        ]
        y = np.array(raw if name == "priority" else merge_rare(raw, config.min_label_count))
        n_own = len(fit_rows)
        if len(set(y[:n_own])) < 2 or len(set(y)) < 2:
            say(f"{name}: fewer than two labels in the training window; not trained")
            continue
        params, temperature, score, bands, val_proba = _choose_classifier(
            name, x_fit[fit_rows], y[:n_own], x_val[val_rows], y[n_own:], config, say
        )
        own_urgent = urgent if name == "priority" else ()
        check = (
            check_window(x_fit[fit_rows], y[:n_own], params, temperature, config)
            if own_urgent
            else None
        )
        band_window = (
            out_of_fold(train, y, field_names, params, temperature, config, np.unique(y[:n_own]))
            if name == "priority" and config.band_folds
            else None
        )
        if band_window is not None:
            say(f"{name}: per-class bands from {len(band_window[1])} out-of-fold tickets")
        trust = choose_decisions(
            name,
            val_proba,
            y[:n_own],
            y[n_own:],
            own_urgent,
            config,
            say,
            check,
            macro_f1_floor if name == "priority" else None,
            band_window,
        )
        lr = LogisticRegression(
            C=params["C"], class_weight=params["class_weight"], max_iter=config.max_iter
        )
        weights = trust.weight_list([str(label) for label in np.unique(y)])
        classifier = TemperatureScaledClassifier(
            lr, temperature=temperature, decision_weights=weights
        ).fit(x_all[np.flatnonzero(rows)], y)
        decision = trust.decision
        if decision is not None and weights is not None:
            labels = [str(label) for label in classifier.classes_]
            decision = decision | {"weights": dict(zip(labels, weights, strict=True))}
        classifiers[name] = ChosenClassifier(
            classifier, params, bands, score, trust.class_bands, decision, trust.majority_f1
        )

    resolution = _fit_resolution(fit, validation, x_fit, x_val, x_all, config, say)
    index = _fit_index(fit, validation, features, final, x_all, train, config, say)
    params = {
        "ngram_max": config.ngram_max,
        "description_max_chars": config.description_max_chars,
        "min_df": config.min_df,
        "similar_count": config.similar_count,
        "index_terms": config.index_terms,
        "query_terms": config.query_terms,
        **{f"{name}_{k}": v for name, c in classifiers.items() for k, v in c.params.items()},
        **{f"{name}_temperature": c.temperature for name, c in classifiers.items()},
    }
    return FittedModel(final, classifiers, resolution, index, params)


def _fit_resolution(
    fit: list[Example],
    validation: list[Example],
    x_fit: Any,
    x_val: Any,
    x_all: Any,
    config: ModelConfig,
    say: Progress,
) -> ResolutionTimeModel | None:
    hours = [e.resolution_hours for e in fit + validation]
    if any(h is None or h < 0 for h in hours):
        say("resolution time: some tickets lack a resolved time; not trained")
        return None
    y = np.log1p(np.array(hours, dtype=np.float64))
    y_fit, y_val = y[: len(fit)], y[len(fit) :]
    best: tuple[float, float] | None = None
    for alpha in config.ridge_alphas:
        error = float(
            np.median(np.abs(Ridge(alpha=alpha).fit(x_fit, y_fit).predict(x_val) - y_val))
        )
        if best is None or error < best[0]:
            best = (error, alpha)
    assert best is not None
    error, alpha = best
    residuals = y_val - Ridge(alpha=alpha).fit(x_fit, y_fit).predict(x_val)
    quantiles = {f"{q:g}": float(np.quantile(residuals, q)) for q in QUANTILES}
    say(f"resolution time: ridge alpha={alpha:g} (validation median |log error| {error:.3f})")
    regressor = Ridge(alpha=alpha).fit(x_all, y)
    return ResolutionTimeModel(regressor, alpha, quantiles, {"median_abs_log_error": error})


def _index_docs(examples: list[Example]) -> list[dict[str, Any]]:
    return [
        {
            "id": e.source_id or str(e.row),
            "subject": e.doc["subject"][:200],
            "priority": e.label,
            "resolution": e.targets.get("resolution"),
            "created": e.created.date().isoformat() if e.created is not None else None,
        }
        for e in examples
    ]


def _fit_index(
    fit: list[Example],
    validation: list[Example],
    features: FeatureUnion,
    final: FeatureUnion,
    x_all: Any,
    train: list[Example],
    config: ModelConfig,
    say: Progress,
) -> SimilarityIndex:
    text = features.transformer_list[0][1]
    fit_index = truncate_rows(text.transform([e.doc for e in fit]), config.index_terms, 5)
    queries = truncate_rows(text.transform([e.doc for e in validation]), config.query_terms)
    val_scores = np.asarray((queries @ fit_index.T).toarray())
    best = val_scores.max(axis=1) if val_scores.size else np.zeros(len(validation))
    threshold, stats = duplicate_threshold(best, np.array([e.is_duplicate for e in validation]))
    say(f"similar tickets: duplicate threshold {threshold:.3f} on validation {stats}")
    matrix = truncate_rows(
        final.transformer_list[0][1].transform([e.doc for e in train]), config.index_terms, 5
    )
    return SimilarityIndex(_index_docs(train), matrix, threshold, stats, config.query_terms)

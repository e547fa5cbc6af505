"""Inference of the trained linear text model with the standard library only.

Training fits TF-IDF blocks, one multinomial logistic regression per target with temperature
scaling, and a ridge regression of resolution time, in scikit-learn. The artifact carries the
vocabularies as JSON and every float (IDF, coefficients) as one little-endian float64 array
(`weights.bin`, read with `array`), and this module recomputes the same numbers. Serving
therefore never imports scikit-learn, SciPy or NumPy, and loads in milliseconds.

Per ticket, the weights of the ticket's terms are gathered with `operator.itemgetter` and summed
with `map`, so the inner loops run in C rather than in the interpreter.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter, mul, truediv
from typing import Any

from core.errors import ArtifactError
from core.text import NOISE_WORDS, STOPWORDS, BlockAnalyzer

MODEL_FORMAT = "ticket-enrich/linear-tfidf@2"
# 1 + log(count), the sublinear term frequency, for the counts almost every term has.
_SUBLINEAR_SIZE = 64
_SUBLINEAR = [0.0] + [1.0 + math.log(c) for c in range(1, _SUBLINEAR_SIZE)]
BANDS = ("high", "medium", "low")


@dataclass(frozen=True)
class Prediction:
    """One target's prediction: the label, every label's probability and how far to trust it."""

    label: str
    probabilities: dict[str, float]
    confidence: float
    band: str

    @property
    def needs_review(self) -> bool:
        """Anything below the "high" band goes to a person before it is applied."""
        return self.band != "high"

    def as_dict(self) -> dict[str, Any]:
        """The prediction as the JSON an enriched ticket carries."""
        return {
            "label": self.label,
            "confidence": self.confidence,
            "band": self.band,
            "needs_review": self.needs_review,
            "probabilities": self.probabilities,
        }


@dataclass(frozen=True)
class BlockFeatures:
    """One block's non-zero TF-IDF features of a ticket: term indices, values, and a gatherer
    that picks those terms' entries out of any per-term array."""

    indices: tuple[int, ...]
    values: tuple[float, ...]
    gather: Callable[[Sequence[float]], tuple[float, ...]]

    def dot(self, weights: Sequence[float]) -> float:
        """The dot product of these features with a per-term weight array."""
        return sum(map(mul, self.gather(weights), self.values)) if self.indices else 0.0


Features = list[BlockFeatures]


def _largest(values: Sequence[float], count: int, *keys: Iterable[Any]) -> list[tuple[Any, ...]]:
    """``sorted(zip(values, *keys), reverse=True)[:count]``, for long ``values``: the floats
    alone are sorted first (timsort compares floats without a tuple per item) to find the
    smallest value that can make the cut, and only the tuples at or above it are sorted."""
    rows: Iterable[tuple[Any, ...]] = zip(values, *keys, strict=False)  # keys may repeat()
    if len(values) > count > 0:
        cut = sorted(values, reverse=True)[count - 1]
        rows = [row for row in rows if row[0] >= cut]
    return sorted(rows, reverse=True)[:count]


def _gatherer(indices: tuple[int, ...]) -> Callable[[Sequence[float]], tuple[float, ...]]:
    if len(indices) == 1:
        only = indices[0]
        return lambda seq: (seq[only],)
    if not indices:
        return lambda seq: ()
    return itemgetter(*indices)


def load_floats(raw: bytes) -> array[float]:
    """The artifact's float64 array, in the machine's byte order."""
    if len(raw) % 8:
        raise ArtifactError("weights.bin is not a whole number of float64 values")
    values = array("d")
    values.frombytes(raw)
    if sys.byteorder == "big":
        values.byteswap()
    return values


def _slice(floats: array[float], ref: Mapping[str, Any], size: int, what: str) -> array[float]:
    start, count = int(ref["offset"]), int(ref["count"])
    if count != size or start < 0 or start + count > len(floats):
        raise ArtifactError(f"{what}: its weights do not fit weights.bin or the vocabulary")
    return floats[start : start + count]


class _Block:
    __slots__ = ("analyzer", "idf", "index", "name", "sublinear_tf", "terms")

    def __init__(self, spec: Mapping[str, Any], floats: array[float]) -> None:
        self.analyzer = BlockAnalyzer.from_dict(spec["analyzer"])
        self.name = str(spec["name"])
        self.terms: list[str] = spec["terms"]
        self.index = {term: i for i, term in enumerate(self.terms)}
        self.idf = _slice(floats, spec["idf"], len(self.terms), f"block {self.name!r}")
        self.sublinear_tf = bool(spec.get("sublinear_tf", True))

    def features(self, doc: Mapping[str, Any]) -> BlockFeatures:
        # Term indices in the order the ticket first uses them, with their counts; the counting
        # runs in C (`Counter` over `map`), the terms outside the vocabulary count under None.
        counts = Counter(map(self.index.get, self.analyzer(doc)))
        counts.pop(None, None)
        indices: tuple[int, ...] = tuple(counts)  # type: ignore[arg-type]
        if not indices:
            return BlockFeatures((), (), _gatherer(()))
        gather = _gatherer(indices)
        idf = gather(self.idf)
        if self.sublinear_tf:
            tf = [
                _SUBLINEAR[c] if c < _SUBLINEAR_SIZE else 1.0 + math.log(c) for c in counts.values()
            ]
        else:
            tf = [float(c) for c in counts.values()]
        raw = list(map(mul, tf, idf))
        norm = math.sqrt(sum(map(mul, raw, raw)))
        return BlockFeatures(indices, tuple(map(truediv, raw, repeat(norm))), gather)


class _Target:
    __slots__ = (
        "bands",
        "class_bands",
        "decision",
        "default",
        "intercept",
        "labels",
        "temperature",
        "weights",
    )

    def __init__(
        self, name: str, spec: Mapping[str, Any], blocks: Sequence[_Block], floats: array[float]
    ) -> None:
        self.labels: list[str] = list(spec["labels"])
        k = len(self.labels)
        self.intercept: list[float] = [float(v) for v in spec["intercept"]]
        self.temperature = float(spec["temperature"])
        self.bands = {band: float(spec["bands"][band]) for band in ("high", "medium")}
        # Per-class bands and decision weights came later: an artifact without them keeps one
        # pair of thresholds for every class and the most probable label.
        self.class_bands: dict[str, dict[str, float]] = {
            str(label): {band: float(b[band]) for band in ("high", "medium")}
            for label, b in (spec.get("class_bands") or {}).items()
        }
        # A target below the majority class on validation is kept out of the default fields.
        self.default = bool(spec.get("default", True))
        weights = (spec.get("decision") or {}).get("weights")
        self.decision: list[float] | None = (
            [float(weights[label]) for label in self.labels] if weights else None
        )
        if self.decision is not None and min(self.decision) <= 0:
            raise ArtifactError(f"target {name!r}: decision weights must be positive")
        coef = spec["coef"]
        if len(self.intercept) != k or len(coef) != len(blocks) or self.temperature <= 0:
            raise ArtifactError(f"target {name!r}: coefficients do not fit its labels or blocks")
        # weights[block][class] is one per-term array.
        self.weights: list[list[array[float]]] = []
        for refs, block in zip(coef, blocks, strict=True):
            if len(refs) != k:
                raise ArtifactError(f"target {name!r}: one coefficient row per label is needed")
            self.weights.append(
                [_slice(floats, ref, len(block.terms), f"target {name!r}") for ref in refs]
            )

    def explain(self, features: Features, label: str, top: int) -> list[tuple[float, int, int]]:
        """(contribution, block, term) of the ``top`` features that add the most to
        ``label``'s logit. An L2-penalised multinomial model's coefficients sum to zero over
        the classes for every term, so a term's weight for one class is already its push
        towards that class relative to the others."""
        c = self.labels.index(label)
        candidates: list[tuple[float, int, int]] = []
        # sorted(...)[:top] is what `heapq.nlargest` returns, sorted in C.
        for b, (rows, f) in enumerate(zip(self.weights, features, strict=True)):
            if f.indices:
                pushes = list(map(mul, f.gather(rows[c]), f.values))
                candidates += _largest(pushes, top, repeat(b), f.indices)
        return sorted(candidates, reverse=True)[:top]

    def predict(self, features: Features) -> Prediction:
        z = list(self.intercept)
        k = len(z)
        for rows, f in zip(self.weights, features, strict=True):
            if f.indices:
                for c in range(k):
                    z[c] += f.dot(rows[c])
        t = self.temperature
        top = max(z)
        exps = [math.exp((v - top) / t) for v in z]
        total = sum(exps)
        probs = [e / total for e in exps]
        decision = self.decision
        if decision is None:
            best = max(range(k), key=probs.__getitem__)
        else:
            best = max(range(k), key=lambda c: probs[c] * decision[c])
        label = self.labels[best]
        confidence = probs[best]
        return Prediction(
            label=label,
            probabilities=dict(zip(self.labels, probs, strict=True)),
            confidence=confidence,
            band=self.band(label, confidence),
        )

    def band(self, label: str, confidence: float) -> str:
        """The confidence band of ``label`` predicted at ``confidence``: the label's own
        thresholds where training chose them per class, else the target's."""
        bands = self.class_bands.get(label, self.bands)
        if confidence >= bands["high"]:
            return "high"
        if confidence >= bands["medium"]:
            return "medium"
        return "low"


class _Regressor:
    __slots__ = ("intercept", "quantiles", "weights")

    def __init__(
        self, name: str, spec: Mapping[str, Any], blocks: Sequence[_Block], floats: array[float]
    ) -> None:
        if spec.get("transform") != "log1p":
            raise ArtifactError(f"regressor {name!r}: unknown transform {spec.get('transform')!r}")
        self.intercept = float(spec["intercept"])
        self.quantiles = {str(q): float(r) for q, r in spec["residual_quantiles"].items()}
        if len(spec["coef"]) != len(blocks):
            raise ArtifactError(f"regressor {name!r}: one coefficient array per block is needed")
        self.weights = [
            _slice(floats, ref, len(block.terms), f"regressor {name!r}")
            for ref, block in zip(spec["coef"], blocks, strict=True)
        ]

    def predict(self, features: Features) -> dict[str, float]:
        z = self.intercept + sum(f.dot(w) for w, f in zip(self.weights, features, strict=True))
        return {q: max(math.expm1(z + r), 0.0) for q, r in self.quantiles.items()}


class LinearTextModel:
    """TF-IDF feature blocks shared by calibrated linear classifiers (targets) and regressors."""

    def __init__(self, spec: Mapping[str, Any], weights: bytes) -> None:
        if spec.get("format") != MODEL_FORMAT:
            raise ArtifactError(
                f"model format {spec.get('format')!r} is not {MODEL_FORMAT!r}; "
                "retrain with this version of ticket-enrich"
            )
        floats = load_floats(weights)
        try:
            self._blocks = [_Block(block, floats) for block in spec["blocks"]]
            self._targets = {
                name: _Target(name, target, self._blocks, floats)
                for name, target in spec["targets"].items()
            }
            self._regressors = {
                name: _Regressor(name, r, self._blocks, floats)
                for name, r in spec.get("regressors", {}).items()
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"model.json is malformed: {exc!r}") from None
        if "priority" not in self._targets:
            raise ArtifactError("model.json has no priority target")
        # Whether a term of the first block can never be a tag, remembered as tickets ask.
        self._untaggable: dict[int, bool] = {}

    @property
    def targets(self) -> list[str]:
        """Names of the predicted fields, priority first."""
        return list(self._targets)

    @property
    def default_targets(self) -> list[str]:
        """The targets predicted by default: priority and every target training shipped."""
        return [name for name, t in self._targets.items() if name == "priority" or t.default]

    @property
    def regressors(self) -> list[str]:
        """Names of the numeric predictions (e.g. `resolution_hours`)."""
        return list(self._regressors)

    def block_position(self, name: str) -> int:
        """Where the block of this name sits in a ticket's `Features`."""
        for position, block in enumerate(self._blocks):
            if block.name == name:
                return position
        raise ArtifactError(f"the model has no feature block {name!r}")

    def labels(self, target: str) -> list[str]:
        """The labels one target can predict, in the order of its probabilities."""
        return list(self._targets[target].labels)

    def features(self, doc: Mapping[str, Any]) -> Features:
        """The ticket document's TF-IDF features, block by block, computed once per ticket."""
        return [block.features(doc) for block in self._blocks]

    def predict(
        self, features: Features, targets: Sequence[str] | None = None
    ) -> dict[str, Prediction]:
        """The prediction of each target (all by default) from a ticket's features."""
        names = self._targets if targets is None else targets
        return {name: self._targets[name].predict(features) for name in names}

    def band(self, target: str, label: str, confidence: float) -> str:
        """The band a prediction of ``label`` at ``confidence`` falls in (for a label that a
        priority rule, not the model, chose)."""
        return self._targets[target].band(label, confidence)

    def regress(self, features: Features, name: str) -> dict[str, float]:
        """A numeric prediction at each of its quantiles."""
        return self._regressors[name].predict(features)

    def explain(
        self, features: Features, target: str, label: str, top: int = 5
    ) -> list[dict[str, Any]]:
        """The terms that pushed ``target`` towards ``label`` the most, with their weights."""
        # Function-word n-grams ("the last", "during") push on every ticket and explain none:
        # more candidates than needed, so that dropping them rarely leaves the list short.
        chosen: list[dict[str, Any]] = []
        for weight, b, i in self._targets[target].explain(features, label, 4 * top):
            term = self._blocks[b].terms[i]
            if weight <= 0 or len(chosen) == top:
                break
            if not NOISE_WORDS.issuperset(term.split()):
                chosen.append({"term": term, "weight": weight})
        return chosen

    def keywords(self, features: Features, top: int = 5) -> list[str]:
        """The ticket's most distinctive terms of the first (text) block, for routing and
        search: highest TF-IDF first, numbers and function words skipped, a word dropped when a
        chosen phrase already contains it."""
        block = self._blocks[0]
        f = features[0]
        chosen: list[str] = []
        # Far more candidates than tags, so that skipped terms rarely leave the list short.
        untaggable = self._untaggable
        for _, i in _largest(f.values, 8 * top, f.indices):
            term = block.terms[i]
            skip = untaggable.get(i)
            if skip is None:
                skip = untaggable[i] = (
                    any(ch.isdigit() for ch in term)
                    or "_" in term
                    or not STOPWORDS.isdisjoint(term.split())
                )
            if skip:
                continue
            words = term.split()
            if len(words) == 1 and any(term in c.split() for c in chosen):
                continue
            chosen = [c for c in chosen if c not in words]
            chosen.append(term)
            if len(chosen) == top:
                break
        return chosen

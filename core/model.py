"""Inference of the trained linear text model with the standard library only.

Training fits TF-IDF blocks and a multinomial logistic regression with temperature scaling in
scikit-learn; the artifact carries vocabularies, IDF weights, coefficients and the temperature as
plain JSON numbers, and this module recomputes exactly the same probabilities. Serving therefore
never imports scikit-learn, SciPy or NumPy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.errors import ArtifactError
from core.text import STOPWORDS, BlockAnalyzer

MODEL_FORMAT = "ticket-enrich/linear-tfidf@1"
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


class _Block:
    __slots__ = ("analyzer", "idf", "index", "name", "sublinear_tf", "terms")

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.analyzer = BlockAnalyzer.from_dict(spec["analyzer"])
        terms: list[str] = spec["terms"]
        idf: list[float] = spec["idf"]
        if len(terms) != len(idf):
            raise ArtifactError(f"block {self.analyzer.name!r}: {len(terms)} terms, {len(idf)} IDF")
        self.name = str(spec["name"])
        self.terms = terms
        self.index = {term: i for i, term in enumerate(terms)}
        self.idf = idf
        self.sublinear_tf = bool(spec.get("sublinear_tf", True))

    def features(self, doc: Mapping[str, Any]) -> list[tuple[int, float]]:
        counts: dict[int, int] = {}
        index = self.index
        for token in self.analyzer(doc):
            i = index.get(token)
            if i is not None:
                counts[i] = counts.get(i, 0) + 1
        if not counts:
            return []
        idf = self.idf
        if self.sublinear_tf:
            values = [(i, (1.0 + math.log(c)) * idf[i]) for i, c in counts.items()]
        else:
            values = [(i, c * idf[i]) for i, c in counts.items()]
        norm = math.sqrt(sum(v * v for _, v in values))
        return [(i, v / norm) for i, v in values]


class _Target:
    __slots__ = ("bands", "intercept", "labels", "temperature", "weights")

    def __init__(self, name: str, spec: Mapping[str, Any], block_sizes: Sequence[int]) -> None:
        self.labels: list[str] = list(spec["labels"])
        k = len(self.labels)
        self.intercept: list[float] = list(spec["intercept"])
        self.temperature = float(spec["temperature"])
        self.bands = {band: float(spec["bands"][band]) for band in ("high", "medium")}
        coef = spec["coef"]
        if len(self.intercept) != k or len(coef) != len(block_sizes) or self.temperature <= 0:
            raise ArtifactError(f"target {name!r}: coefficients do not fit its labels or blocks")
        self.weights: list[list[tuple[float, ...]]] = []
        for rows, size in zip(coef, block_sizes, strict=True):
            if len(rows) != k or any(len(row) != size for row in rows):
                raise ArtifactError(f"target {name!r}: coefficient rows do not fit the vocabulary")
            self.weights.append(list(zip(*rows, strict=True)) if size else [])

    def explain(
        self, features: Sequence[list[tuple[int, float]]], label: str
    ) -> list[tuple[int, int, float]]:
        """(block, term, contribution) of every feature to ``label``'s logit beyond the
        average class, largest first: what pushed the prediction towards this label."""
        c = self.labels.index(label)
        k = len(self.labels)
        out = []
        for b, (block_weights, block_features) in enumerate(
            zip(self.weights, features, strict=True)
        ):
            for i, value in block_features:
                w = block_weights[i]
                out.append((b, i, value * (w[c] - sum(w) / k)))
        out.sort(key=lambda item: -item[2])
        return out

    def predict(self, features: Sequence[list[tuple[int, float]]]) -> Prediction:
        z = list(self.intercept)
        k = len(z)
        for block_weights, block_features in zip(self.weights, features, strict=True):
            for i, value in block_features:
                w = block_weights[i]
                for c in range(k):
                    z[c] += w[c] * value
        t = self.temperature
        top = max(z)
        exps = [math.exp((v - top) / t) for v in z]
        total = sum(exps)
        probs = [e / total for e in exps]
        best = max(range(k), key=probs.__getitem__)
        confidence = probs[best]
        if confidence >= self.bands["high"]:
            band = "high"
        elif confidence >= self.bands["medium"]:
            band = "medium"
        else:
            band = "low"
        return Prediction(
            label=self.labels[best],
            probabilities=dict(zip(self.labels, probs, strict=True)),
            confidence=confidence,
            band=band,
        )


class _Regressor:
    __slots__ = ("intercept", "quantiles", "weights")

    def __init__(self, name: str, spec: Mapping[str, Any], block_sizes: Sequence[int]) -> None:
        if spec.get("transform") != "log1p":
            raise ArtifactError(f"regressor {name!r}: unknown transform {spec.get('transform')!r}")
        self.intercept = float(spec["intercept"])
        self.quantiles = {str(q): float(r) for q, r in spec["residual_quantiles"].items()}
        self.weights: list[list[float]] = []
        for rows, size in zip(spec["coef"], block_sizes, strict=True):
            if len(rows) != 1 or len(rows[0]) != size:
                raise ArtifactError(f"regressor {name!r}: coefficients do not fit the vocabulary")
            self.weights.append(rows[0])

    def predict(self, features: Sequence[list[tuple[int, float]]]) -> dict[str, float]:
        z = self.intercept
        for block_weights, block_features in zip(self.weights, features, strict=True):
            for i, value in block_features:
                z += block_weights[i] * value
        return {q: max(math.expm1(z + r), 0.0) for q, r in self.quantiles.items()}


Features = list[list[tuple[int, float]]]


class LinearTextModel:
    """TF-IDF feature blocks shared by one or more calibrated linear classifiers (targets)."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        if spec.get("format") != MODEL_FORMAT:
            raise ArtifactError(
                f"model format {spec.get('format')!r} is not {MODEL_FORMAT!r}; "
                "retrain with this version of ticket-enrich"
            )
        try:
            self._blocks = [_Block(block) for block in spec["blocks"]]
            sizes = [len(block.idf) for block in self._blocks]
            self._targets = {
                name: _Target(name, target, sizes) for name, target in spec["targets"].items()
            }
            self._regressors = {
                name: _Regressor(name, r, sizes) for name, r in spec.get("regressors", {}).items()
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"model.json is malformed: {exc!r}") from None
        if "priority" not in self._targets:
            raise ArtifactError("model.json has no priority target")

    @property
    def targets(self) -> list[str]:
        """Names of the predicted fields, priority first."""
        return list(self._targets)

    def labels(self, target: str) -> list[str]:
        """The labels one target can predict, in the order of its probabilities."""
        return list(self._targets[target].labels)

    @property
    def regressors(self) -> list[str]:
        """Names of the numeric predictions (e.g. `resolution_hours`)."""
        return list(self._regressors)

    def features(self, doc: Mapping[str, Any]) -> Features:
        """The ticket document's TF-IDF features, block by block, computed once per ticket."""
        return [block.features(doc) for block in self._blocks]

    def predict(
        self, features: Features, targets: Sequence[str] | None = None
    ) -> dict[str, Prediction]:
        """The prediction of each target (all by default) from a ticket's features."""
        names = self._targets if targets is None else targets
        return {name: self._targets[name].predict(features) for name in names}

    def regress(self, features: Features, name: str) -> dict[str, float]:
        """A numeric prediction at each of its quantiles."""
        return self._regressors[name].predict(features)

    def explain(
        self, features: Features, target: str, label: str, top: int = 5
    ) -> list[dict[str, Any]]:
        """The terms that pushed ``target`` towards ``label`` the most, with their weights."""
        out = []
        for b, i, weight in self._targets[target].explain(features, label)[:top]:
            if weight <= 0:
                break
            out.append({"term": self._blocks[b].terms[i], "weight": weight})
        return out

    def keywords(self, features: Features, top: int = 5) -> list[str]:
        """The ticket's most distinctive terms of the first (text) block, for routing and
        search: highest TF-IDF first, numbers and function words skipped, a word dropped when a
        chosen phrase already contains it."""
        block = self._blocks[0]
        chosen: list[str] = []
        for i, _ in sorted(features[0], key=lambda item: -item[1]):
            term = block.terms[i]
            words = term.split()
            if any(ch.isdigit() for ch in term) or "_" in term or STOPWORDS.intersection(words):
                continue
            if len(words) == 1 and any(term in c.split() for c in chosen):
                continue
            chosen = [c for c in chosen if c not in words]
            chosen.append(term)
            if len(chosen) == top:
                break
        return chosen

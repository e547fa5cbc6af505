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
from core.text import BlockAnalyzer

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
    __slots__ = ("analyzer", "idf", "index", "sublinear_tf")

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.analyzer = BlockAnalyzer.from_dict(spec["analyzer"])
        terms: list[str] = spec["terms"]
        idf: list[float] = spec["idf"]
        if len(terms) != len(idf):
            raise ArtifactError(f"block {self.analyzer.name!r}: {len(terms)} terms, {len(idf)} IDF")
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

    def predict(self, doc: Mapping[str, Any]) -> dict[str, Prediction]:
        """Every target's prediction for one ticket document (see `core.text.ticket_document`)."""
        features = [block.features(doc) for block in self._blocks]
        return {name: target.predict(features) for name, target in self._targets.items()}

"""Drift: how recent tickets and predictions differ from those a model was made on.

Each ticket is described by a few categorical features — its text length (in buckets), its
language, its words (each of the reference's most frequent words, or "(other)"), each form
field's value, and the model's priority and confidence band. A `Profile` counts those values
over many tickets; training stores one for its own data in the artifact (`reference.json`), and
`drift` compares a profile of recent traffic with it, feature by feature, with the population
stability index (PSI): Σ (current − reference) · ln(current / reference) over the values' shares.
Rules of thumb: below 0.1 stable, 0.1–0.25 moderate, above 0.25 a shift worth retraining for.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.errors import ArtifactError
from core.text import word_ngrams

REFERENCE_FILE = "reference.json"
PROFILE_FORMAT = "drift-profile@1"

# Bucket edges in characters of subject + description: short notes to pasted logs.
LENGTH_EDGES = (100, 300, 1000, 3000, 10000)
OTHER = "(other)"
NONE = "(none)"
# A value absent from one side still gets this share, so that PSI stays finite.
_FLOOR = 1e-4

INPUT_FEATURES = ("text_length", "language", "vocabulary")
PREDICTION_FEATURES = ("priority", "band")


def _length_bucket(n: int) -> str:
    low = 0
    for edge in LENGTH_EDGES:
        if n < edge:
            return f"{low}-{edge - 1}"
        low = edge
    return f"{low}+"


def words(ticket: Mapping[str, Any]) -> set[str]:
    """The distinct words of a ticket's subject and description (the model's tokenizer)."""
    text = f"{ticket.get('subject') or ''}\n{ticket.get('description') or ''}"
    return set(word_ngrams(text, 1))


def _language(enrichment: Mapping[str, Any]) -> str:
    language = enrichment.get("language")
    if isinstance(language, Mapping):
        return str(language.get("code") or NONE)
    return NONE


def ticket_features(
    ticket: Mapping[str, Any],
    enrichment: Mapping[str, Any],
    *,
    vocabulary: frozenset[str],
    fields: Sequence[str] = (),
    field_values: Mapping[str, frozenset[str]] | None = None,
) -> dict[str, list[str]]:
    """The drift features of one enriched ticket: each feature's values (one, or one per word).

    Words outside ``vocabulary`` count as "(other)"; form-field values outside
    ``field_values[name]`` likewise, and a missing value as "(none)".
    """
    text_length = len(ticket.get("subject") or "") + len(ticket.get("description") or "")
    features: dict[str, list[str]] = {
        "text_length": [_length_bucket(text_length)],
        "language": [_language(enrichment)],
        "vocabulary": [w if w in vocabulary else OTHER for w in words(ticket)] or [NONE],
    }
    custom = ticket.get("custom_fields") or {}
    known = field_values or {}
    for name in fields:
        value = custom.get(name)
        if value is None or value == "":
            features[f"field:{name}"] = [NONE]
        else:
            text = str(value).strip().lower()
            allowed = known.get(name)
            features[f"field:{name}"] = [text if allowed is None or text in allowed else OTHER]
    priority = enrichment.get("priority")
    if isinstance(priority, Mapping):
        features["priority"] = [str(priority.get("label"))]
        features["band"] = [str(priority.get("band"))]
    return features


@dataclass
class Profile:
    """Counts of each feature's values over a set of tickets."""

    tickets: int = 0
    counts: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, features: Mapping[str, Iterable[str]]) -> None:
        """Count one ticket's features."""
        self.tickets += 1
        for name, values in features.items():
            self.counts.setdefault(name, Counter()).update(values)

    def shares(self, feature: str) -> dict[str, float]:
        """Each value's share of the feature's counts."""
        counts = self.counts.get(feature, Counter())
        total = sum(counts.values())
        return {value: n / total for value, n in counts.items()} if total else {}

    def to_dict(self) -> dict[str, Any]:
        """The profile as JSON."""
        return {
            "tickets": self.tickets,
            "counts": {name: dict(c.most_common()) for name, c in sorted(self.counts.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        """A profile from `to_dict`'s JSON."""
        return cls(
            int(data["tickets"]),
            {
                name: Counter({str(k): int(v) for k, v in c.items()})
                for name, c in data["counts"].items()
            },
        )


def psi(reference: Mapping[str, float], current: Mapping[str, float]) -> float:
    """Population stability index of two distributions given as shares per value."""
    total = 0.0
    for value in set(reference) | set(current):
        r = max(reference.get(value, 0.0), _FLOOR)
        c = max(current.get(value, 0.0), _FLOOR)
        total += (c - r) * math.log(c / r)
    return total


@dataclass(frozen=True)
class Reference:
    """What training saw: its input profile (all training tickets), its prediction profile
    (the model's answers on tickets it was not fitted on) and the vocabularies used to build
    both, so recent traffic is described the same way."""

    inputs: Profile
    predictions: Profile
    vocabulary: frozenset[str]
    fields: tuple[str, ...]
    field_values: dict[str, frozenset[str]]

    def features(
        self, ticket: Mapping[str, Any], enrichment: Mapping[str, Any]
    ) -> dict[str, list[str]]:
        """The drift features of one enriched ticket, described like the reference's."""
        return ticket_features(
            ticket,
            enrichment,
            vocabulary=self.vocabulary,
            fields=self.fields,
            field_values=self.field_values,
        )

    def to_dict(self) -> dict[str, Any]:
        """The reference as the artifact stores it."""
        return {
            "format": PROFILE_FORMAT,
            "vocabulary": sorted(self.vocabulary),
            "fields": list(self.fields),
            "field_values": {k: sorted(v) for k, v in sorted(self.field_values.items())},
            "inputs": self.inputs.to_dict(),
            "predictions": self.predictions.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reference:
        """The reference from the artifact's `reference.json`."""
        if data.get("format") != PROFILE_FORMAT:
            raise ArtifactError(
                f"reference profile format {data.get('format')!r} is not {PROFILE_FORMAT!r}"
            )
        return cls(
            inputs=Profile.from_dict(data["inputs"]),
            predictions=Profile.from_dict(data["predictions"]),
            vocabulary=frozenset(data["vocabulary"]),
            fields=tuple(data["fields"]),
            field_values={k: frozenset(v) for k, v in data["field_values"].items()},
        )


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift: its PSI and the values whose share moved the most."""

    feature: str
    psi: float
    alert: bool
    movers: list[tuple[str, float, float]]

    def as_dict(self) -> dict[str, Any]:
        """The drift of one feature as JSON."""
        return {
            "feature": self.feature,
            "psi": round(self.psi, 4),
            "alert": self.alert,
            "movers": [
                {"value": v, "reference": round(r, 4), "current": round(c, 4)}
                for v, r, c in self.movers
            ],
        }


def drift(reference: Reference, current: Profile, threshold: float) -> list[FeatureDrift]:
    """Each feature's PSI between the reference and recent traffic, flagged at ``threshold``."""
    result = []
    for name in sorted(set(reference.inputs.counts) | set(reference.predictions.counts)):
        source = reference.predictions if name in reference.predictions.counts else reference.inputs
        ref, cur = source.shares(name), current.shares(name)
        if not cur:
            continue
        value = psi(ref, cur)
        movers = sorted(
            ((v, ref.get(v, 0.0), cur.get(v, 0.0)) for v in set(ref) | set(cur)),
            key=lambda m: -abs(m[2] - m[1]),
        )[:3]
        result.append(FeatureDrift(name, value, value >= threshold, movers))
    return result

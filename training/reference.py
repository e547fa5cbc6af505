"""The drift reference a model ships: its training data and its answers, profiled as serving
profiles recent traffic (`core.drift`), so that the two can be compared feature by feature."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from core.artifact import Artifact
from core.drift import Profile, Reference, words
from core.enricher import Enricher, EnrichOptions
from core.schema import Ticket
from training.data import Example

VOCABULARY_SIZE = 300
FIELD_VALUES = 50

# The reference needs the model's priority and the ticket's language, nothing else.
_OPTIONS = EnrichOptions(
    categories=False,
    resolution_time=False,
    similar=False,
    sentiment=False,
    language=True,
    tags=False,
    explanation=False,
    redact=False,
)


def _ticket(e: Example) -> Ticket:
    return Ticket.model_construct(
        subject=e.doc["subject"],
        description=e.doc["description"],
        custom_fields={k: v for k, v in e.doc["custom_fields"].items() if v is not None},
    )


def build_reference(
    model_spec: Mapping[str, Any],
    weights: bytes,
    metadata: Mapping[str, Any],
    trained_on: Sequence[Example],
    held_out: Sequence[Example],
    fields: Sequence[str],
) -> Reference:
    """Profile the tickets a model was trained on (inputs) and its served answers on tickets it
    was not fitted on (predictions); the vocabulary is the training data's most common words."""
    enricher = reference_enricher(model_spec, weights, metadata)
    df: Counter[str] = Counter()
    values: dict[str, Counter[str]] = {name: Counter() for name in fields}
    for e in trained_on:
        df.update(words(e.doc))
        for name in fields:
            value = e.doc["custom_fields"].get(name)
            if value is not None and value != "":
                values[name][str(value).strip().lower()] += 1
    reference = Reference(
        inputs=Profile(),
        predictions=Profile(),
        vocabulary=frozenset(w for w, _ in df.most_common(VOCABULARY_SIZE)),
        fields=tuple(fields),
        field_values={
            n: frozenset(v for v, _ in c.most_common(FIELD_VALUES)) for n, c in values.items()
        },
    )
    add_profiles(reference, enricher, trained_on, held_out)
    return reference


def reference_enricher(
    model_spec: Mapping[str, Any], weights: bytes, metadata: Mapping[str, Any]
) -> Enricher:
    """An enricher of the model being written, with only what the reference needs on."""
    return Enricher(
        Artifact(Path("."), dict(model_spec), weights, dict(metadata), [], {}), options=_OPTIONS
    )


def add_profiles(
    reference: Reference,
    enricher: Enricher,
    trained_on: Sequence[Example],
    held_out: Sequence[Example],
) -> None:
    """Count ``trained_on`` into the reference's input profile and the model's answers on
    ``held_out`` into its prediction profile (a part of the data at a time, if need be)."""
    for examples, profile in ((trained_on, reference.inputs), (held_out, reference.predictions)):
        for e in examples:
            ticket = _ticket(e)
            enrichment = enricher.predict(ticket)
            features = reference.features(e.doc, enrichment)
            if profile is reference.predictions:
                features = {k: v for k, v in features.items() if k in ("priority", "band")}
            else:
                features.pop("priority", None)
                features.pop("band", None)
            profile.add(features)

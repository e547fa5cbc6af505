"""The enrichment use case: a validated ticket in, the enriched ticket out."""

from __future__ import annotations

import math
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeGuard

from core.artifact import Artifact, read_artifact
from core.errors import ArtifactError
from core.language import LANGUAGE_MAX_CHARS, detect_language, language_of_prose
from core.model import LinearTextModel, Prediction
from core.prose import prose_pair
from core.rules import RULES_FILE, RuleSet, load_rules
from core.schema import Limits, normalize_ticket, parse_ticket
from core.sentiment import SENTIMENT_MAX_CHARS, sentiment, sentiment_of_prose
from core.similar import SimilarTickets
from core.text import ticket_document

if TYPE_CHECKING:
    from core.redaction import Redaction
    from core.rules_source import RulesSource
    from core.schema import Ticket

INDEX_FILE = "index.json"
INDEX_POSTINGS_FILE = "index.bin"

_SELF_CHECK_TOLERANCE = 1e-9


@dataclass(frozen=True)
class EnrichOptions:
    """Which enrichment fields are on. Priority always is; a field that is off costs nothing,
    at cold start or per ticket."""

    categories: bool = True
    resolution_time: bool = True
    similar: bool = True
    sentiment: bool = True
    language: bool = True
    tags: bool = True
    explanation: bool = True
    redact: bool = True
    rules: bool = True


class Enricher:
    """Enriches tickets with one loaded model artifact; cheap to call, safe to share."""

    def __init__(
        self,
        artifact: Artifact,
        limits: Limits | None = None,
        options: EnrichOptions | None = None,
        rules: RuleSet | None = None,
    ) -> None:
        self.artifact = artifact
        self.limits = limits or Limits()
        self.options = options or EnrichOptions()
        self.metadata = artifact.metadata
        self.model_name = str(artifact.metadata.get("name", "unknown"))
        self.model_version = str(artifact.metadata.get("version", "unknown"))
        self._custom_field_names = tuple(artifact.metadata.get("custom_fields", ()))
        self._model = LinearTextModel(artifact.model, artifact.weights)
        targets = self._model.default_targets
        self._targets = targets if self.options.categories else ["priority"]
        self._resolution = (
            self.options.resolution_time and "resolution_hours" in self._model.regressors
        )
        self._redact: Callable[[str], tuple[str, list[Redaction]]] | None = None
        self._listeners: list[Callable[[Mapping[str, Any], float], None]] = []
        if self.options.redact:
            # Compiling the redaction patterns takes ~12 ms: paid only when redaction is on.
            from core.redaction import redact

            self._redact = redact
        self._similar = (
            SimilarTickets(artifact.read_json(INDEX_FILE), artifact.read_bytes(INDEX_POSTINGS_FILE))
            if self.options.similar and INDEX_FILE in artifact.checksums
            else None
        )
        self._similar_block = (
            self._model.block_position(self._similar.block) if self._similar is not None else 0
        )
        # The priority rules: given, else the artifact's own (an artifact from before rules has
        # none, and its predictions are the model's alone).
        if rules is None and self.options.rules and RULES_FILE in artifact.checksums:
            rules = load_rules(artifact.read_json(RULES_FILE), self._model.labels("priority"))
        self.rules: RuleSet | None = rules if self.options.rules else None
        # Rules that change while serving (an admin's edits, see core/rules_source.py): when
        # set, each ticket takes the rules in force from it instead of `rules`.
        self.rules_source: RulesSource | None = None

    @property
    def custom_fields(self) -> tuple[str, ...]:
        """The form fields the model was trained with, for forms and documentation."""
        return self._custom_field_names

    def parse(self, ticket: Mapping[str, Any] | Ticket) -> Ticket:
        """Validate a ticket against the schema and this enricher's size limits."""
        if _is_ticket_model(ticket):
            return ticket
        return parse_ticket(ticket, self.limits)

    def predict(self, ticket: Ticket) -> dict[str, Any]:
        """The enrichment of a valid ticket, without the ticket itself."""
        return self._predict(ticket.subject, ticket.description, ticket.custom_fields)

    def _predict(
        self, subject: str, description: str, custom_fields: Mapping[str, Any]
    ) -> dict[str, Any]:
        options = self.options
        model = self._model
        doc = ticket_document(subject, description, custom_fields)
        features = model.features(doc)
        predictions = model.predict(features, self._targets)
        priority = predictions.pop("priority")
        label = priority.label
        fired: list[dict[str, Any]] = []
        enrichment: dict[str, Any] = {"priority": priority.as_dict()}
        # One read: a ticket is matched and decided by one rule set, even during a swap.
        rules = self.rules if self.rules_source is None else self.rules_source.current()
        if rules is not None:
            matches = rules.match(subject, description, custom_fields)
            if matches:
                label, _deciding = rules.apply(priority.label, matches)
                fired = [m.as_dict() for m in matches]
                enrichment["priority"] = self._ruled(priority, label, fired)
        if options.categories:
            enrichment["categories"] = {name: p.as_dict() for name, p in predictions.items()}
        if self._resolution:
            q = model.regress(features, "resolution_hours")
            enrichment["resolution_time"] = {
                "hours": round(q["0.5"], 2),
                "interval_50": [round(q["0.25"], 2), round(q["0.75"], 2)],
                "interval_90": [round(q["0.05"], 2), round(q["0.95"], 2)],
            }
        if self._similar is not None:
            similar, duplicate = self._similar.query(features[self._similar_block])
            enrichment["similar"] = similar
            enrichment["possible_duplicate"] = duplicate
        if options.sentiment and options.language:
            narrow, wide = prose_pair(
                f"{subject}\n{description}", LANGUAGE_MAX_CHARS, SENTIMENT_MAX_CHARS
            )
            enrichment["sentiment"] = sentiment_of_prose(wide)
            enrichment["language"] = language_of_prose(narrow)
        elif options.sentiment:
            enrichment["sentiment"] = sentiment(f"{subject}\n{description}")
        elif options.language:
            enrichment["language"] = detect_language(f"{subject}\n{description}")
        if options.explanation:
            enrichment["explanation"] = [
                {"rule": m["rule"], "term": m["match"]} for m in fired
            ] + model.explain(features, "priority", label)
        if options.tags:
            enrichment["tags"] = model.keywords(features)
        enrichment["needs_review"] = enrichment["priority"]["needs_review"]
        enrichment["model"] = {"name": self.model_name, "version": self.model_version}
        enrichment["enriched_at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
        return enrichment

    def _ruled(
        self, priority: Prediction, label: str, fired: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """The priority a rule decided: the rule's label with the model's probability of it
        and that label's band, the rules that fired, and the model's own prediction beside."""
        out = priority.as_dict()
        if label != priority.label:
            confidence = priority.probabilities[label]
            band = self._model.band("priority", label, confidence)
            out |= {
                "label": label,
                "confidence": confidence,
                "band": band,
                "needs_review": band != "high",
            }
        out["rules"] = [m["rule"] for m in fired]
        out["model_prediction"] = {
            "label": priority.label,
            "confidence": priority.confidence,
            "band": priority.band,
        }
        return out

    def enrich(self, ticket: Mapping[str, Any] | Ticket) -> dict[str, Any]:
        """Validate and enrich one ticket: ``{"ticket": {...}, "enrichment": {...}}``.

        Raises `core.errors.InvalidTicket` (or its subclass `TicketTooLarge`) naming each bad
        field; the ticket comes back normalised, as the schema reads it. With redaction on (the
        default), its subject and description come back with personal data and secrets
        replaced, and ``enrichment.redactions`` lists each kind and position, never the value;
        the predictions themselves are made on the text as written.
        """
        started = time.perf_counter()
        if _is_ticket_model(ticket):
            out = ticket.model_dump(mode="json", exclude_none=True)
        else:
            out = normalize_ticket(ticket, self.limits)
        enrichment = self._predict(out["subject"], out["description"], out["custom_fields"])
        if self._redact is not None:
            redactions: list[dict[str, Any]] = []
            # The words of every redacted value: no derived field may carry them out again.
            hidden: set[str] = set()
            texts = [(field, out, field) for field in ("subject", "description")]
            # Form fields are free text too (an IBAN, a phone number): redacted alike.
            fields = out.get("custom_fields", {})
            texts += [
                (f"custom_fields.{n}", fields, n) for n, v in fields.items() if isinstance(v, str)
            ]
            for where, holder, key in texts:
                original = holder[key]
                holder[key], found = self._redact(original)
                redactions += [{"field": where, **r.as_dict()} for r in found]
                for r in found:
                    hidden.update(_WORD.findall(original[r.start : r.end].lower()))
            enrichment["redactions"] = redactions
            if hidden:
                _drop_hidden_terms(enrichment, hidden)
        if self._listeners:
            seconds = time.perf_counter() - started
            for listener in self._listeners:
                listener(enrichment, seconds)
        return {"ticket": out, "enrichment": enrichment}

    def add_listener(self, listener: Callable[[Mapping[str, Any], float], None]) -> None:
        """Call ``listener(enrichment, seconds)`` after every enrichment (for an adapter's
        metrics: latency, counts per priority and band). Listeners must be quick and not
        raise."""
        self._listeners.append(listener)

    def self_check(self) -> None:
        """Predict the artifact's sample tickets and compare with what training recorded."""
        model = self._model
        for number, sample in enumerate(self.artifact.samples, start=1):
            ticket = normalize_ticket(sample["ticket"], self.limits)
            features = model.features(
                ticket_document(ticket["subject"], ticket["description"], ticket["custom_fields"])
            )
            for target, expected in sample["expected"].items():
                if target in model.regressors:
                    got = model.regress(features, target)
                    pairs = [(got.get(q), v, f"{target} at {q}") for q, v in expected.items()]
                else:
                    if target not in model.targets:
                        raise ArtifactError(f"self-check failed: no target {target!r}")
                    actual = model.predict(features, [target])[target]
                    if actual.label != expected["label"]:
                        raise ArtifactError(
                            f"self-check failed on sample {number}: {target} is "
                            f"{actual.label!r}, training recorded {expected['label']!r}"
                        )
                    pairs = [
                        (actual.probabilities.get(label), p, f"P({target}={label})")
                        for label, p in expected["probabilities"].items()
                    ]
                for value, want, what in pairs:
                    if value is None or not math.isclose(
                        value, want, rel_tol=_SELF_CHECK_TOLERANCE, abs_tol=_SELF_CHECK_TOLERANCE
                    ):
                        raise ArtifactError(f"self-check failed on sample {number}: {what} differs")


def load_enricher(
    model_dir: str | os.PathLike[str],
    *,
    limits: Limits | None = None,
    options: EnrichOptions | None = None,
    self_check: bool = True,
    rules: str | os.PathLike[str] | None = None,
) -> Enricher:
    """Load and verify a model artifact directory and return an `Enricher` for it.

    The artifact's checksums are verified and, unless ``self_check`` is false, its sample tickets
    are enriched and compared with the outputs training recorded; either failure raises
    `core.errors.ArtifactError`. ``rules`` names a rules file to use instead of the
    artifact's own `rules.json`; an invalid one raises `core.errors.InvalidRules` naming the
    rule.
    """
    artifact = read_artifact(model_dir)
    rule_set = None
    if rules is not None:
        rule_set = load_rules(
            rules, [str(label) for label in artifact.model["targets"]["priority"]["labels"]]
        )
    enricher = Enricher(artifact, limits, options, rule_set)
    if self_check:
        enricher.self_check()
    return enricher


_WORD = re.compile(r"\w+")


def _is_ticket_model(ticket: object) -> TypeGuard[Ticket]:
    """Whether ``ticket`` is an already validated `Ticket` (without importing pydantic: no
    `Ticket` can exist before its module is loaded)."""
    models = sys.modules.get("core.ticket")
    return models is not None and isinstance(ticket, models.Ticket)


def _drop_hidden_terms(enrichment: dict[str, Any], hidden: set[str]) -> None:
    """Drop the tags and explanation terms that hold a word of a redacted value: the predictions
    are made on the text as written, so their terms could otherwise repeat what was redacted."""

    def shown(term: str) -> bool:
        return not hidden.intersection(_WORD.findall(term.lower()))

    if "tags" in enrichment:
        enrichment["tags"] = [t for t in enrichment["tags"] if shown(t)]
    if "explanation" in enrichment:
        enrichment["explanation"] = [
            e for e in enrichment["explanation"] if shown(str(e.get("term", "")))
        ]

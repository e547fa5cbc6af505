"""The enrichment use case: a validated ticket in, the enriched ticket out."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from core.artifact import Artifact, read_artifact
from core.errors import ArtifactError
from core.model import LinearTextModel
from core.schema import Limits, Ticket, parse_ticket
from core.text import ticket_document

_SELF_CHECK_TOLERANCE = 1e-9


class Enricher:
    """Enriches tickets with one loaded model artifact; cheap to call, safe to share."""

    def __init__(self, artifact: Artifact, limits: Limits | None = None) -> None:
        self.artifact = artifact
        self.limits = limits or Limits()
        self.metadata = artifact.metadata
        self.model_name = str(artifact.metadata.get("name", "unknown"))
        self.model_version = str(artifact.metadata.get("version", "unknown"))
        self._custom_field_names = tuple(artifact.metadata.get("custom_fields", ()))
        self._model = LinearTextModel(artifact.model)

    @property
    def custom_fields(self) -> tuple[str, ...]:
        """The form fields the model was trained with, for forms and documentation."""
        return self._custom_field_names

    def parse(self, ticket: Mapping[str, Any] | Ticket) -> Ticket:
        """Validate a ticket against the schema and this enricher's size limits."""
        return ticket if isinstance(ticket, Ticket) else parse_ticket(ticket, self.limits)

    def predict(self, ticket: Ticket) -> dict[str, Any]:
        """The enrichment of a valid ticket, without the ticket itself."""
        doc = ticket_document(ticket.subject, ticket.description, ticket.custom_fields)
        predictions = self._model.predict(doc)
        enrichment: dict[str, Any] = {name: p.as_dict() for name, p in predictions.items()}
        enrichment["needs_review"] = predictions["priority"].needs_review
        enrichment["model"] = {"name": self.model_name, "version": self.model_version}
        enrichment["enriched_at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
        return enrichment

    def enrich(self, ticket: Mapping[str, Any] | Ticket) -> dict[str, Any]:
        """Validate and enrich one ticket: ``{"ticket": {...}, "enrichment": {...}}``.

        Raises `core.errors.InvalidTicket` (or its subclass `TicketTooLarge`) naming each bad
        field; the ticket comes back normalised, as the schema reads it.
        """
        valid = self.parse(ticket)
        return {
            "ticket": valid.model_dump(mode="json", exclude_none=True),
            "enrichment": self.predict(valid),
        }

    def self_check(self) -> None:
        """Enrich the artifact's sample tickets and compare with what training recorded."""
        for number, sample in enumerate(self.artifact.samples, start=1):
            got = self.predict(parse_ticket(sample["ticket"], self.limits))
            for target, expected in sample["expected"].items():
                actual = got.get(target)
                if actual is None or actual["label"] != expected["label"]:
                    raise ArtifactError(
                        f"self-check failed on sample {number}: {target} is "
                        f"{actual and actual['label']!r}, training recorded {expected['label']!r}"
                    )
                for label, p in expected["probabilities"].items():
                    if not math.isclose(
                        actual["probabilities"][label], p, abs_tol=_SELF_CHECK_TOLERANCE
                    ):
                        raise ArtifactError(
                            f"self-check failed on sample {number}: P({target}={label}) differs"
                        )


def load_enricher(
    model_dir: str | os.PathLike[str], *, limits: Limits | None = None, self_check: bool = True
) -> Enricher:
    """Load and verify a model artifact directory and return an `Enricher` for it.

    The artifact's checksums are verified and, unless ``self_check`` is false, its sample tickets
    are enriched and compared with the outputs training recorded; either failure raises
    `core.errors.ArtifactError`.
    """
    enricher = Enricher(read_artifact(model_dir), limits)
    if self_check:
        enricher.self_check()
    return enricher

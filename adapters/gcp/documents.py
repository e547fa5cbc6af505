"""A ticket document as the customer's client writes it and as the service writes it back.

The customer's client creates ``tickets/{ticketId}`` (Firestore) or ``/tickets/{ticketId}``
(Realtime Database) with the ticket's fields and ``owner`` (their user id). The service adds
``enrichment``, ``received_at`` and the marker ``enrichment_state`` (or, for a ticket that
failed validation, ``enrichment_error`` and the marker), and replaces ``subject`` and
``description`` with their redacted text. Agents may set ``corrected_priority``. The marker is
what stops a write-back, a later agent edit or a second delivery of the same event from
enriching the ticket again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from core.errors import InvalidTicket, error_body, refusal
from core.ports import StoredTicket

MARKER = "enrichment_state"
# Written by the service only (the security rules refuse them from clients).
SERVICE_FIELDS = frozenset({"enrichment", MARKER, "enrichment_error", "received_at"})
# Part of the document but not of the ticket the core validates.
DOCUMENT_FIELDS = frozenset({"owner", "corrected_priority"})


def is_processed(document: Mapping[str, Any] | None) -> bool:
    """Whether the service has already enriched (or refused) this document."""
    return document is not None and MARKER in document


def ticket_fields(document: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a document that make up the ticket the core validates."""
    return {k: v for k, v in document.items() if k not in SERVICE_FIELDS | DOCUMENT_FIELDS}


def enriched_fields(stored: StoredTicket) -> dict[str, Any]:
    """What the service writes back into the document of an enriched ticket."""
    return {
        "subject": stored.ticket.get("subject", ""),
        "description": stored.ticket.get("description", ""),
        "enrichment": stored.enrichment,
        "received_at": stored.received_at,
        MARKER: {"status": "enriched", "at": stored.received_at},
    }


def invalid_fields(error: InvalidTicket, at: datetime) -> dict[str, Any]:
    """What the service writes back into the document of a ticket that failed validation, so
    the customer's client can show what is wrong."""
    when = at.isoformat(timespec="milliseconds")
    return {
        # The error the HTTP entry points answer with; its code says the same.
        "enrichment_error": error_body(refusal(error)[1], str(error), error.problems)["error"],
        MARKER: {"status": "invalid", "at": when},
    }


def json_ready(value: Any) -> Any:
    """A document value as JSON carries it: timestamps become ISO 8601 strings."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value


def stored_from_document(ticket_id: str, document: Mapping[str, Any]) -> StoredTicket:
    """The `StoredTicket` an enriched document holds."""
    ticket = json_ready(ticket_fields(document))
    return StoredTicket(
        id=ticket_id,
        external_id=ticket.get("external_id"),
        received_at=str(document.get("received_at", "")),
        ticket=ticket,
        enrichment=json_ready(document.get("enrichment", {})),
    )


def apply_delta(data: Any, delta: Any) -> Any:
    """The value of a Realtime Database reference after a write: ``delta`` applied to the
    previous ``data`` as the platform describes it (objects merge, ``null`` deletes a key,
    anything else replaces)."""
    if not isinstance(data, dict) or not isinstance(delta, dict):
        return delta
    merged = dict(data)
    for key, change in delta.items():
        if change is None:
            merged.pop(key, None)
        else:
            merged[key] = apply_delta(merged.get(key), change)
    return merged

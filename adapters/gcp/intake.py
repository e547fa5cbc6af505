"""One code path for both triggers: a ticket document in, enriched (or refused) once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Literal, Protocol

from adapters.gcp.documents import is_processed, ticket_fields
from adapters.gcp.events import DocumentEvent
from core.delivery import utc_now
from core.enricher import Enricher
from core.errors import InvalidTicket
from core.ports import StoredTicket

Outcome = Literal["enriched", "duplicate", "already-processed", "invalid", "deleted"]
# Called with a ticket that can never be enriched, before its error is written back (the
# dead-letter topic, `adapters.gcp.dead_letters`); raising leaves the event to be retried.
Reject = Callable[[DocumentEvent, InvalidTicket, datetime], object]


class DocumentTicketStore(Protocol):
    """Where a trigger's tickets live: enrichment and errors are written back into them."""

    def add(self, ticket: StoredTicket) -> tuple[StoredTicket, bool]:
        """Write the enrichment back unless the document has been processed."""
        ...

    def add_with_delivery(self, ticket: StoredTicket, now: datetime) -> tuple[StoredTicket, bool]:
        """Like `add`, and enqueue the ticket's helpdesk delivery when this call wrote it."""
        ...

    def mark_invalid(self, ticket_id: str, error: InvalidTicket, at: datetime) -> bool:
        """Write the validation error back unless the document has been processed."""
        ...


def take_in(
    event: DocumentEvent,
    enricher: Enricher,
    store: DocumentTicketStore,
    *,
    deliver: bool,
    reject: Reject | None = None,
    now: Callable[[], datetime] = utc_now,
) -> Outcome:
    """Enrich the ticket document of one event and write the result back, once.

    The document's marker makes this idempotent: the service's own write-back and an agent's
    later edit arrive (as Realtime Database writes) with the marker set and are skipped, and a
    second delivery of the same event finds it in the store's transaction. A ticket that fails
    validation is handed to ``reject`` (the dead-letter topic) with the reason, gets the error
    written into it, and the event is acknowledged: retrying cannot fix it, and the customer's
    client shows the error.
    """
    if event.document is None:
        return "deleted"
    if is_processed(event.document):
        return "already-processed"
    at = now()
    problem = event.problem
    if problem is None:
        try:
            enriched = enricher.enrich(ticket_fields(event.document))
        except InvalidTicket as exc:
            problem = exc
    if problem is not None:
        if reject is not None:
            reject(event, problem, at)
        store.mark_invalid(event.ticket_id, problem, at)
        return "invalid"
    record = StoredTicket(
        id=event.ticket_id,
        external_id=enriched["ticket"].get("external_id"),
        received_at=at.isoformat(timespec="milliseconds"),
        ticket=enriched["ticket"],
        enrichment=enriched["enrichment"],
    )
    _, created = store.add_with_delivery(record, at) if deliver else store.add(record)
    return "enriched" if created else "duplicate"

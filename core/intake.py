"""Taking a new ticket in: validate, enrich once, store once."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from core.enricher import Enricher
from core.errors import TicketNotFound
from core.ports import Outbox, StoredTicket, TicketStore
from core.schema import Ticket

# Ticket ids derived from the caller's external id make every retry of the same ticket land on
# the same record, whichever adapter or store receives it.
_ID_NAMESPACE = uuid.UUID("3f0c7a52-8a9f-4d3e-9a61-4b1e2f5d7c10")


def ticket_id_for(ticket: Ticket) -> str:
    """The stored id of a ticket: stable for an external id, random otherwise."""
    if ticket.external_id is not None:
        return str(uuid.uuid5(_ID_NAMESPACE, ticket.external_id))
    return str(uuid.uuid4())


def submit_ticket(
    raw: Mapping[str, Any] | Ticket,
    enricher: Enricher,
    store: TicketStore,
    *,
    outbox: Outbox | None = None,
) -> tuple[StoredTicket, bool]:
    """Validate, enrich and store a ticket; return the stored ticket and whether it is new.

    A ticket whose external id was seen before is neither enriched nor stored again: the first
    stored version is returned, so an at-least-once trigger has one effect. With an ``outbox``
    (the same database as ``store``, when delivery to a helpdesk is on) a new ticket and its
    pending delivery are written in one transaction, and a duplicate enqueues nothing.
    """
    ticket = enricher.parse(raw)
    ticket_id = ticket_id_for(ticket)
    if ticket.external_id is not None:
        try:
            return store.get(ticket_id), False
        except TicketNotFound:
            pass
    enriched = enricher.enrich(ticket)
    now = datetime.now(UTC)
    record = StoredTicket(
        id=ticket_id,
        external_id=ticket.external_id,
        received_at=now.isoformat(timespec="milliseconds"),
        ticket=enriched["ticket"],
        enrichment=enriched["enrichment"],
    )
    if outbox is not None:
        return outbox.add_with_delivery(record, now)
    return store.add(record)

"""Taking a new ticket in: validate, enrich once, store once."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from core.enricher import Enricher
from core.errors import FieldProblem, IdempotencyKeyReused, InvalidTicket, TicketNotFound
from core.ports import Outbox, StoredTicket, TicketStore
from core.schema import Ticket

# Ticket ids derived from the caller's external id make every retry of the same ticket land on
# the same record, whichever adapter or store receives it.
_ID_NAMESPACE = uuid.UUID("3f0c7a52-8a9f-4d3e-9a61-4b1e2f5d7c10")
# Idempotency keys (as Stripe and Zendesk define them) have their own namespace: a key and an
# external id that happen to be equal name different tickets.
_KEY_NAMESPACE = uuid.UUID("8d2b6f0e-54c1-4f5a-b7a3-1c9e0d4a6b21")
IDEMPOTENCY_KEY_MAX_CHARS = 255


def check_idempotency_key(key: str) -> str:
    """An ``Idempotency-Key`` as a client sent it, refused unless it is 1 to 255 printable
    ASCII characters (a V4 UUID is the usual choice)."""
    if not 0 < len(key) <= IDEMPOTENCY_KEY_MAX_CHARS or not (key.isascii() and key.isprintable()):
        raise InvalidTicket(
            [
                FieldProblem(
                    "Idempotency-Key",
                    f"must be 1 to {IDEMPOTENCY_KEY_MAX_CHARS} printable ASCII characters",
                )
            ]
        )
    return key


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
    idempotency_key: str | None = None,
) -> tuple[StoredTicket, bool]:
    """Validate, enrich and store a ticket; return the stored ticket and whether it is new.

    A ticket whose external id was seen before is neither enriched nor stored again: the first
    stored version is returned, so an at-least-once trigger has one effect. With an ``outbox``
    (the same database as ``store``, when delivery to a helpdesk is on) a new ticket and its
    pending delivery are written in one transaction, and a duplicate enqueues nothing.

    An ``idempotency_key`` (checked with `check_idempotency_key` and scoped to its client by
    the caller) does the same for a
    ticket without an external id: the key names the stored ticket, so a retry with the same
    ticket returns the first one (and is not new), while the same key with a different ticket
    raises `IdempotencyKeyReused`. A key is remembered as long as its ticket is stored. With an
    external id, the external id decides.
    """
    ticket = enricher.parse(raw)
    ticket_id = ticket_id_for(ticket)
    keyed = ticket.external_id is None and idempotency_key is not None
    if keyed:
        ticket_id = str(uuid.uuid5(_KEY_NAMESPACE, idempotency_key or ""))
    enriched: dict[str, Any] | None = None
    if ticket.external_id is not None or keyed:
        try:
            existing = store.get(ticket_id)
        except TicketNotFound:
            pass
        else:
            if keyed:
                # What is stored is the ticket as enrichment returns it (redacted): the retry
                # must come to exactly that.
                enriched = enricher.enrich(ticket)
                if enriched["ticket"] != existing.ticket:
                    raise IdempotencyKeyReused(
                        [
                            FieldProblem(
                                "Idempotency-Key",
                                "was used before with a different ticket; send a new key",
                            )
                        ]
                    )
            return existing, False
    enriched = enricher.enrich(ticket) if enriched is None else enriched
    now = datetime.now(UTC)
    record = StoredTicket(
        id=ticket_id,
        external_id=ticket.external_id,
        received_at=now.isoformat(timespec="milliseconds"),
        ticket=enriched["ticket"],
        enrichment=enriched["enrichment"],
    )
    stored, created = (
        outbox.add_with_delivery(record, now) if outbox is not None else store.add(record)
    )
    if keyed and not created and stored.ticket != enriched["ticket"]:
        # Two requests with one key raced, and the other ticket was stored first.
        raise IdempotencyKeyReused(
            [
                FieldProblem(
                    "Idempotency-Key", "was used before with a different ticket; send a new key"
                )
            ]
        )
    return stored, created

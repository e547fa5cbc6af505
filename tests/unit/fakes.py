"""Test doubles that implement the core's ports in memory."""

from __future__ import annotations

from datetime import datetime

from core.errors import TicketNotFound
from core.ports import (
    DELIVERY_STATUSES,
    Delivery,
    HelpdeskRef,
    StoredTicket,
    TicketPage,
    TicketQuery,
)


class FakeTicketStore:
    """An in-memory `TicketStore`."""

    def __init__(self) -> None:
        self.tickets: dict[str, StoredTicket] = {}

    def add(self, ticket: StoredTicket) -> tuple[StoredTicket, bool]:
        if ticket.id in self.tickets:
            return self.tickets[ticket.id], False
        self.tickets[ticket.id] = ticket
        return ticket, True

    def get(self, ticket_id: str) -> StoredTicket:
        try:
            return self.tickets[ticket_id]
        except KeyError:
            raise TicketNotFound(ticket_id) from None

    def list(self, query: TicketQuery) -> TicketPage:
        items = [
            t
            for t in reversed(self.tickets.values())
            if (query.priority is None or t.enrichment["priority"]["label"] == query.priority)
            and (query.needs_review is None or t.enrichment["needs_review"] == query.needs_review)
        ]
        return TicketPage(items[query.offset : query.offset + query.limit], len(items))


class FakeOutbox:
    """An in-memory `Outbox` over a `FakeTicketStore`; claims honour leases like a real one."""

    def __init__(self, store: FakeTicketStore | None = None) -> None:
        self.store = store or FakeTicketStore()
        self.rows: dict[str, Delivery] = {}
        self.leases: dict[str, datetime] = {}

    def add_with_delivery(self, ticket: StoredTicket, now: datetime) -> tuple[StoredTicket, bool]:
        stored, created = self.store.add(ticket)
        if created:
            self.rows[ticket.id] = Delivery(ticket.id, "pending", 0, now)
        return stored, created

    def claim_due(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[tuple[Delivery, StoredTicket]]:
        due = [
            d
            for d in sorted(self.rows.values(), key=lambda d: d.next_attempt_at)
            if d.status in ("pending", "retrying")
            and d.next_attempt_at <= now
            and self.leases.get(d.ticket_id, now) <= now
        ][:limit]
        for d in due:
            self.leases[d.ticket_id] = lease_until
        return [(d, self.store.get(d.ticket_id)) for d in due]

    def save(self, delivery: Delivery) -> None:
        self.rows[delivery.ticket_id] = delivery
        self.leases.pop(delivery.ticket_id, None)

    def delivery(self, ticket_id: str) -> Delivery | None:
        return self.rows.get(ticket_id)

    def deliveries(self, status: str | None = None, limit: int = 100) -> list[Delivery]:
        return [d for d in self.rows.values() if status is None or d.status == status][:limit]

    def purge(self, status: str) -> int:
        gone = [k for k, d in self.rows.items() if d.status == status]
        for k in gone:
            del self.rows[k]
        return len(gone)

    def count_by_status(self) -> dict[str, int]:
        counts = dict.fromkeys(DELIVERY_STATUSES, 0)
        for d in self.rows.values():
            counts[d.status] += 1
        return counts


class FakeHelpdeskClient:
    """A `HelpdeskClient` that dedupes on the idempotency key and fails as scripted.

    ``script`` holds one entry per call, consumed in order: an exception to raise, or None to
    succeed; once it is empty every call succeeds.
    """

    name = "fake"

    def __init__(self, script: list[Exception | None] | None = None) -> None:
        self.script = list(script or [])
        self.calls: list[str] = []
        self.created: dict[str, HelpdeskRef] = {}

    def close(self) -> None:
        self.closed = True

    def create_ticket(self, ticket: StoredTicket, idempotency_key: str) -> HelpdeskRef:
        self.calls.append(idempotency_key)
        if self.script:
            failure = self.script.pop(0)
            if failure is not None:
                raise failure
        if idempotency_key not in self.created:
            number = len(self.created) + 1
            self.created[idempotency_key] = HelpdeskRef("fake", str(number), f"fake://{number}")
        return self.created[idempotency_key]

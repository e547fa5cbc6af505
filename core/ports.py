"""The ports the core needs from the outside world, named by role."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class StoredTicket:
    """An enriched ticket as a store keeps it."""

    id: str
    external_id: str | None
    received_at: str
    ticket: dict[str, Any]
    enrichment: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """The stored ticket as the JSON the APIs return."""
        return {
            "id": self.id,
            "external_id": self.external_id,
            "received_at": self.received_at,
            "ticket": self.ticket,
            "enrichment": self.enrichment,
        }


@dataclass(frozen=True)
class TicketQuery:
    """Filters and paging for listing stored tickets, newest first."""

    priority: str | None = None
    needs_review: bool | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class TicketPage:
    """One page of a listing, with the total count that matched the filters."""

    items: list[StoredTicket] = field(default_factory=list)
    total: int = 0


class TicketStore(Protocol):
    """Keeps enriched tickets; `add` is idempotent on the ticket id."""

    def add(self, ticket: StoredTicket) -> tuple[StoredTicket, bool]:
        """Store the ticket unless one with its id exists; return the stored one and whether it
        was created by this call."""
        ...

    def get(self, ticket_id: str) -> StoredTicket:
        """The ticket with this id, or `core.errors.TicketNotFound`."""
        ...

    def list(self, query: TicketQuery) -> TicketPage:
        """Tickets matching the query, newest first."""
        ...


@dataclass(frozen=True)
class HelpdeskRef:
    """Where a delivered ticket lives in the helpdesk."""

    system: str
    id: str
    url: str | None = None


class HelpdeskClient(Protocol):
    """Creates enriched tickets in one helpdesk.

    ``create_ticket`` must be safe to call again with the same ``idempotency_key`` (a retry after
    a timeout whose request did reach the helpdesk): it returns the ticket created the first time
    rather than a second one. It raises `core.errors.HelpdeskUnavailable` for what a retry can
    fix (timeouts, connection errors, 5xx, 408, 429) and `core.errors.HelpdeskRejected` for
    what it cannot (other 4xx).
    """

    name: str

    def create_ticket(self, ticket: StoredTicket, idempotency_key: str) -> HelpdeskRef:
        """Create the helpdesk ticket for this enriched ticket, once."""
        ...

    def close(self) -> None:
        """Release the client's connections."""
        ...


DELIVERY_STATUSES = ("pending", "retrying", "delivered", "dead")


@dataclass(frozen=True)
class Delivery:
    """The state of delivering one stored ticket to the helpdesk (one per ticket).

    ``status`` is one of `DELIVERY_STATUSES`; ``next_attempt_at`` is when a pending or retrying
    delivery is next due; ``ref`` is where the helpdesk keeps the ticket, once known.
    """

    ticket_id: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None = None
    ref: HelpdeskRef | None = None

    def as_dict(self) -> dict[str, Any]:
        """The delivery as the JSON the APIs return."""
        return {
            "ticket_id": self.ticket_id,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at.isoformat(timespec="milliseconds"),
            "last_error": self.last_error,
            "helpdesk": None
            if self.ref is None
            else {"system": self.ref.system, "id": self.ref.id, "url": self.ref.url},
        }


class Outbox(Protocol):
    """Deliveries waiting for, or done with, the helpdesk; kept next to the tickets.

    ``add_with_delivery`` stores a ticket and its pending delivery in one transaction, so a
    ticket is never stored without a way to reach the helpdesk. ``claim_due`` leases the due
    deliveries to one worker: until ``lease_until`` passes no other claim returns them, and a
    worker that dies mid-delivery simply lets the lease expire.
    """

    def add_with_delivery(self, ticket: StoredTicket, now: datetime) -> tuple[StoredTicket, bool]:
        """Like `TicketStore.add`, and enqueue a pending delivery only when the ticket is new."""
        ...

    def claim_due(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[tuple[Delivery, StoredTicket]]:
        """Lease up to ``limit`` pending or retrying deliveries due at ``now``, oldest first."""
        ...

    def save(self, delivery: Delivery) -> None:
        """Record the outcome of an attempt and release the delivery's lease."""
        ...

    def delivery(self, ticket_id: str) -> Delivery | None:
        """The delivery of this ticket, if one was enqueued."""
        ...

    def deliveries(self, status: str | None = None, limit: int = 100) -> list[Delivery]:
        """Deliveries, optionally of one status, oldest first."""
        ...

    def purge(self, status: str) -> int:
        """Forget every delivery of this status; return how many."""
        ...

"""The ports the core needs from the outside world, named by role."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


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
    # Added for the agent dashboard; a store that does not know a filter ignores it.
    band: str | None = None
    language: str | None = None
    delivery_status: str | None = None
    # When given, list by predicted priority in this order (most pressing first), then oldest
    # first, as a work queue reads; otherwise newest first.
    priority_order: tuple[str, ...] = ()


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


@dataclass(frozen=True)
class HelpdeskOutcome:
    """How a helpdesk holds a ticket it was sent: its status, whether it is closed, and the
    priority it has, both as the helpdesk's own value and mapped back onto the product's labels.

    ``labels`` holds every product label whose helpdesk priority is ``helpdesk_priority`` (the
    inverse of the connector's field mapping): empty when none maps to it, more than one when
    several do. Only a single label is a label; the rest is reported, never guessed.
    """

    ref: HelpdeskRef
    status: str
    closed: bool
    helpdesk_priority: str | None
    labels: tuple[str, ...] = ()


@runtime_checkable
class OutcomeSource(Protocol):
    """A helpdesk connector that can read back a ticket it created, to learn how it closed.

    ``ticket_outcome`` raises `core.errors.HelpdeskUnavailable` for what a later attempt can fix
    (timeouts, connection errors, 5xx, 408, 429) and another `core.errors.HelpdeskError` for what
    it cannot (the ticket is gone, no permission, an answer without a status).
    """

    name: str

    def ticket_outcome(self, ref: HelpdeskRef) -> HelpdeskOutcome:
        """The helpdesk's current status and priority of the ticket at ``ref``."""
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

    def count_by_status(self) -> dict[str, int]:
        """How many deliveries have each of `DELIVERY_STATUSES` (0 for none), counted by the
        store without reading the deliveries themselves: the outbox depth a scrape reports."""
        ...


@dataclass(frozen=True)
class Correction:
    """An agent's label for one target of one ticket: a label for the next training run.

    ``predicted`` is what the model said when the agent looked; an agent who keeps the model's
    label confirms it, which counts as agreement.
    """

    ticket_id: str
    target: str
    label: str
    predicted: str | None
    agent: str
    model_version: str | None
    corrected_at: str

    @property
    def agrees(self) -> bool:
        """Whether the agent kept the model's label."""
        return self.label == self.predicted

    def as_dict(self) -> dict[str, Any]:
        """The correction as the JSON the APIs return."""
        return {
            "ticket_id": self.ticket_id,
            "target": self.target,
            "label": self.label,
            "predicted": self.predicted,
            "agrees": self.agrees,
            "agent": self.agent,
            "model_version": self.model_version,
            "corrected_at": self.corrected_at,
        }


@dataclass(frozen=True)
class Agreement:
    """How often agents kept the model's label, over the last ``window`` corrected tickets."""

    target: str
    window: int
    tickets: int
    agreed: int

    @property
    def rate(self) -> float | None:
        """The share of those tickets where the agent kept the model's label."""
        return None if self.tickets == 0 else self.agreed / self.tickets

    def as_dict(self) -> dict[str, Any]:
        """The agreement as the JSON the APIs return."""
        return {
            "target": self.target,
            "window": self.window,
            "tickets": self.tickets,
            "agreed": self.agreed,
            "rate": self.rate,
        }


@runtime_checkable
class FeedbackStore(Protocol):
    """Keeps agents' corrections; the latest one per ticket and target is its label."""

    def add_correction(self, correction: Correction) -> Correction:
        """Record a correction (a later one for the same ticket and target supersedes it)."""
        ...

    def corrections(self, ticket_id: str | None = None, limit: int = 100) -> list[Correction]:
        """The latest correction per ticket and target, newest first; of one ticket if given."""
        ...

    def agreement(self, target: str, window: int) -> Agreement:
        """Agreement between agents and the model over the last ``window`` corrected tickets."""
        ...


@runtime_checkable
class OutcomeStore(FeedbackStore, Protocol):
    """A `FeedbackStore` that can record a label only where none exists yet, in one step, so
    that a label read from the helpdesk never replaces one an agent gave meanwhile."""

    def add_correction_once(self, correction: Correction) -> bool:
        """Record the correction unless its ticket already has one for its target; return
        whether it was recorded."""
        ...


@dataclass(frozen=True)
class TicketChange:
    """One change to a stored ticket, in the order the store saw it.

    ``kind`` is ``created``, ``enriched`` (its enrichment was replaced), ``delivery`` (its
    delivery changed state) or ``feedback`` (an agent corrected it).
    """

    seq: int
    ticket_id: str
    kind: str


@runtime_checkable
class TicketChanges(Protocol):
    """A feed of changes to stored tickets, for live views; ``seq`` only grows."""

    def changes_since(self, seq: int, limit: int = 100) -> list[TicketChange]:
        """Changes after ``seq``, oldest first."""
        ...

    def last_change(self) -> int:
        """The ``seq`` of the latest change, 0 when there is none."""
        ...


@runtime_checkable
class StatusLinks(Protocol):
    """Keeps the digest of each ticket's customer status token (never the token itself)."""

    def save_status_digest(self, ticket_id: str, digest: str) -> None:
        """Remember the digest of the token that lets the ticket's customer follow it."""
        ...

    def status_digest(self, ticket_id: str) -> str | None:
        """The digest saved for this ticket, if any."""
        ...

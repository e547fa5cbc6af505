"""Tickets and their helpdesk deliveries in Cloud Firestore (google-cloud-firestore).

Tickets are the documents customers create in ``tickets/{ticketId}``; the enrichment is written
back into them. Deliveries are documents of their own collection, one per ticket, each holding
the ticket as it was enriched (JSON), so that the drain needs nothing else and an agent's later
edit does not change what the helpdesk receives. Writing the enrichment and enqueueing its
delivery happen in one Firestore transaction that first checks the document's marker: a second
delivery of the same event, or a write-back seen again, changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from adapters.gcp.documents import (
    MARKER,
    enriched_fields,
    invalid_fields,
    is_processed,
    stored_from_document,
)
from core.errors import InvalidTicket, StoreError, TicketNotFound
from core.ports import (
    DELIVERY_STATUSES,
    Delivery,
    HelpdeskRef,
    StoredTicket,
    TicketPage,
    TicketQuery,
)

if TYPE_CHECKING:
    from google.cloud.firestore import Client, Transaction

T = TypeVar("T")
# Aliases: inside the class, `list` is the method of that name.
Claimed = list[tuple[Delivery, StoredTicket]]
Deliveries = list[Delivery]


@contextmanager
def _store_errors(what: str) -> Iterator[None]:
    from google.api_core.exceptions import GoogleAPIError

    try:
        yield
    except GoogleAPIError as exc:
        raise StoreError(f"cannot {what}: {exc}") from exc


def _delivery_from(ticket_id: str, data: dict[str, Any]) -> Delivery:
    helpdesk = data.get("helpdesk")
    ref = None
    if isinstance(helpdesk, dict) and helpdesk.get("id") is not None:
        ref = HelpdeskRef(system=helpdesk["system"], id=helpdesk["id"], url=helpdesk.get("url"))
    return Delivery(
        ticket_id=ticket_id,
        status=data["status"],
        attempts=int(data["attempts"]),
        next_attempt_at=data["next_attempt_at"],
        last_error=data.get("last_error"),
        ref=ref,
    )


def _ticket_from(data: dict[str, Any]) -> StoredTicket:
    raw = json.loads(data["ticket_json"])
    return StoredTicket(**raw)


class FirestoreTicketStore:
    """A `core.ports.TicketStore` and `core.ports.Outbox` in one Firestore database.

    The claim of a delivery sets ``due_at`` to the end of its lease, so "due and not leased"
    is one range query (``due_at <= now``) and a worker that dies lets the lease run out.
    """

    def __init__(
        self,
        client: Client,
        *,
        tickets_collection: str = "tickets",
        outbox_collection: str = "ticket_outbox",
    ) -> None:
        self._client = client
        self._tickets = client.collection(tickets_collection)
        self._outbox = client.collection(outbox_collection)

    def _in_transaction(self, body: Callable[[Transaction], T]) -> T:
        from google.cloud import firestore

        result: T = firestore.transactional(body)(self._client.transaction())
        return result

    # Tickets -------------------------------------------------------------------------------

    def add(self, ticket: StoredTicket) -> tuple[StoredTicket, bool]:
        """Write the enrichment into the ticket's document unless it has been processed."""
        return self._write(ticket, None)

    def add_with_delivery(self, ticket: StoredTicket, now: datetime) -> tuple[StoredTicket, bool]:
        """Like `add`, and in the same transaction enqueue a delivery due at ``now``."""
        return self._write(ticket, now)

    def _write(
        self, ticket: StoredTicket, deliver_at: datetime | None
    ) -> tuple[StoredTicket, bool]:
        document = self._tickets.document(ticket.id)
        ticket_json = json.dumps(asdict(ticket), allow_nan=False, ensure_ascii=False)

        def body(transaction: Transaction) -> tuple[StoredTicket, bool]:
            snapshot = document.get(transaction=transaction)
            current = snapshot.to_dict() if snapshot.exists else None
            if is_processed(current):
                assert current is not None
                return stored_from_document(ticket.id, current), False
            transaction.set(document, enriched_fields(ticket), merge=True)
            if deliver_at is not None:
                transaction.set(
                    self._outbox.document(ticket.id), _new_delivery(ticket_json, deliver_at)
                )
            return ticket, True

        with _store_errors(f"store ticket {ticket.id}"):
            return self._in_transaction(body)

    def mark_invalid(self, ticket_id: str, error: InvalidTicket, at: datetime) -> bool:
        """Write the validation error into the document unless it has been processed; return
        whether this call wrote it."""
        document = self._tickets.document(ticket_id)

        def body(transaction: Transaction) -> bool:
            snapshot = document.get(transaction=transaction)
            if snapshot.exists and is_processed(snapshot.to_dict()):
                return False
            transaction.set(document, invalid_fields(error, at), merge=True)
            return True

        with _store_errors(f"mark ticket {ticket_id} invalid"):
            return self._in_transaction(body)

    def get(self, ticket_id: str) -> StoredTicket:
        """The enriched ticket with this id, or `core.errors.TicketNotFound`."""
        with _store_errors(f"read ticket {ticket_id}"):
            snapshot = self._tickets.document(ticket_id).get()
        data = snapshot.to_dict() if snapshot.exists else None
        if data is None or data.get(MARKER, {}).get("status") != "enriched":
            raise TicketNotFound(ticket_id)
        return stored_from_document(ticket_id, data)

    def list(self, query: TicketQuery) -> TicketPage:
        """Enriched tickets matching the query, newest first, with the total that matched."""
        from google.cloud.firestore import Query
        from google.cloud.firestore_v1.base_query import FieldFilter

        if query.limit < 0 or query.offset < 0:
            raise ValueError(f"limit and offset must be >= 0, got {query.limit}, {query.offset}")
        selected = self._tickets.where(filter=FieldFilter(f"{MARKER}.status", "==", "enriched"))
        if query.priority is not None:
            selected = selected.where(
                filter=FieldFilter("enrichment.priority.label", "==", query.priority)
            )
        if query.needs_review is not None:
            selected = selected.where(
                filter=FieldFilter("enrichment.needs_review", "==", query.needs_review)
            )
        with _store_errors("list tickets"):
            aggregation: Any = selected.count()
            total = int(aggregation.get()[0][0].value)
            page = (
                selected.order_by("received_at", direction=Query.DESCENDING)
                .offset(query.offset)
                .limit(query.limit)
                .stream()
            )
            items = [stored_from_document(s.id, s.to_dict() or {}) for s in page]
        return TicketPage(items=items, total=total)

    # Outbox --------------------------------------------------------------------------------

    def enqueue(self, ticket: StoredTicket, now: datetime) -> tuple[StoredTicket, bool]:
        """Enqueue a delivery of a ticket stored elsewhere (the Realtime Database) unless one
        exists; return the ticket as first enqueued and whether this call enqueued it."""
        document = self._outbox.document(ticket.id)
        ticket_json = json.dumps(asdict(ticket), allow_nan=False, ensure_ascii=False)

        def body(transaction: Transaction) -> tuple[StoredTicket, bool]:
            snapshot = document.get(transaction=transaction)
            if snapshot.exists:
                return _ticket_from(snapshot.to_dict() or {}), False
            transaction.create(document, _new_delivery(ticket_json, now))
            return ticket, True

        with _store_errors(f"enqueue ticket {ticket.id}"):
            return self._in_transaction(body)

    def claim_due(self, now: datetime, lease_until: datetime, limit: int) -> Claimed:
        """Lease up to ``limit`` pending or retrying deliveries due at ``now``, oldest first."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        due = (
            self._outbox.where(filter=FieldFilter("status", "in", ["pending", "retrying"]))
            .where(filter=FieldFilter("due_at", "<=", now))
            .order_by("due_at")
            .limit(limit)
        )

        def body(transaction: Transaction) -> Claimed:
            claimed = []
            for snapshot in transaction.get(due):
                data = snapshot.to_dict() or {}
                transaction.update(snapshot.reference, {"due_at": lease_until})
                claimed.append((_delivery_from(snapshot.id, data), _ticket_from(data)))
            return claimed

        with _store_errors("claim deliveries"):
            return self._in_transaction(body)

    def save(self, delivery: Delivery) -> None:
        """Record the outcome of an attempt and release the delivery's lease."""
        if delivery.status not in DELIVERY_STATUSES:
            raise ValueError(f"unknown delivery status {delivery.status!r}")
        ref = delivery.ref
        with _store_errors(f"save delivery of {delivery.ticket_id}"):
            self._outbox.document(delivery.ticket_id).update(
                {
                    "status": delivery.status,
                    "attempts": delivery.attempts,
                    "next_attempt_at": delivery.next_attempt_at,
                    "due_at": delivery.next_attempt_at,
                    "last_error": delivery.last_error,
                    "helpdesk": None
                    if ref is None
                    else {"system": ref.system, "id": ref.id, "url": ref.url},
                }
            )

    def delivery(self, ticket_id: str) -> Delivery | None:
        """The delivery of this ticket, if one was enqueued."""
        with _store_errors(f"read delivery of {ticket_id}"):
            snapshot = self._outbox.document(ticket_id).get()
        data = snapshot.to_dict() if snapshot.exists else None
        return None if data is None else _delivery_from(ticket_id, data)

    def deliveries(self, status: str | None = None, limit: int = 100) -> Deliveries:
        """Deliveries, optionally of one status, in the order they were enqueued."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        selected = self._outbox
        query = (
            selected.where(filter=FieldFilter("status", "==", status))
            if status is not None
            else selected
        )
        with _store_errors("list deliveries"):
            return [
                _delivery_from(s.id, s.to_dict() or {})
                for s in query.order_by("enqueued_at").limit(limit).stream()
            ]

    def count_by_status(self) -> dict[str, int]:
        """How many deliveries have each status (0 for none): a ``count()`` aggregation per
        status, which Firestore answers from the index without returning documents (billed as
        one read per 1,000 counted). The four run in one read-only transaction, so a delivery
        that changes status meanwhile is counted once."""
        from google.cloud import firestore
        from google.cloud.firestore_v1.base_query import FieldFilter

        def body(transaction: Transaction) -> dict[str, int]:
            counts = {}
            for status in DELIVERY_STATUSES:
                aggregation: Any = self._outbox.where(
                    filter=FieldFilter("status", "==", status)
                ).count()
                counts[status] = int(aggregation.get(transaction=transaction)[0][0].value)
            return counts

        with _store_errors("count deliveries"):
            result: dict[str, int] = firestore.transactional(body)(
                self._client.transaction(read_only=True)
            )
            return result

    def purge(self, status: str) -> int:
        """Forget every delivery of this status (the tickets stay); return how many."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        if status not in ("delivered", "dead"):
            raise ValueError(f"only delivered or dead deliveries can be purged, not {status!r}")
        count = 0
        with _store_errors("purge deliveries"):
            while True:
                batch = self._client.batch()
                page = list(
                    self._outbox.where(filter=FieldFilter("status", "==", status))
                    .limit(400)
                    .stream()
                )
                if not page:
                    return count
                for snapshot in page:
                    batch.delete(snapshot.reference)
                batch.commit()
                count += len(page)


def _new_delivery(ticket_json: str, due: datetime) -> dict[str, Any]:
    return {
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": due,
        "due_at": due,
        "last_error": None,
        "helpdesk": None,
        "enqueued_at": due,
        "ticket_json": ticket_json,
    }

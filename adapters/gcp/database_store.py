"""Tickets in the Firebase Realtime Database (firebase-admin), deliveries in Firestore.

The Realtime Database's REST protocol has no multi-document transactions, so the delivery
document in Firestore is the ticket's claim: the first enrichment to create it is the one
written back and pushed; a later or concurrent one for the same ticket writes that first
enrichment again and enqueues nothing. The document's marker, read before enriching, spares
the work when the write-back itself (or an agent's edit) triggers the function again.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from adapters.gcp.documents import (
    MARKER,
    enriched_fields,
    invalid_fields,
    is_processed,
    stored_from_document,
)
from core.errors import InvalidTicket, StoreError, TicketNotFound
from core.ports import StoredTicket

if TYPE_CHECKING:
    from adapters.gcp.firestore_store import FirestoreTicketStore


class RealtimeDatabaseTicketStore:
    """Enriched tickets under one Realtime Database path, enqueued in a Firestore outbox."""

    def __init__(self, root: Any, outbox: FirestoreTicketStore) -> None:
        """``root`` is the firebase-admin ``db.Reference`` of the tickets' parent path."""
        self._root = root
        self._outbox = outbox

    def _read(self, ticket_id: str) -> dict[str, Any] | None:
        from firebase_admin.exceptions import FirebaseError

        try:
            value = self._root.child(ticket_id).get()
        except FirebaseError as exc:
            raise StoreError(f"cannot read ticket {ticket_id}: {exc}") from exc
        return value if isinstance(value, dict) else None

    def _update(self, ticket_id: str, fields: dict[str, Any]) -> None:
        from firebase_admin.exceptions import FirebaseError

        try:
            self._root.child(ticket_id).update(fields)
        except FirebaseError as exc:
            raise StoreError(f"cannot write ticket {ticket_id}: {exc}") from exc

    def add(self, ticket: StoredTicket) -> tuple[StoredTicket, bool]:
        """Write the enrichment into the ticket's node unless it has been processed."""
        current = self._read(ticket.id)
        if is_processed(current):
            assert current is not None
            return stored_from_document(ticket.id, current), False
        self._update(ticket.id, enriched_fields(ticket))
        return ticket, True

    def add_with_delivery(self, ticket: StoredTicket, now: datetime) -> tuple[StoredTicket, bool]:
        """Like `add`, with the Firestore delivery created first: it decides which enrichment
        is the ticket's, so a retry after a crash between the two writes repeats the first."""
        current = self._read(ticket.id)
        if is_processed(current):
            assert current is not None
            return stored_from_document(ticket.id, current), False
        first, created = self._outbox.enqueue(ticket, now)
        self._update(ticket.id, enriched_fields(first))
        return first, created

    def mark_invalid(self, ticket_id: str, error: InvalidTicket, at: datetime) -> bool:
        """Write the validation error into the node unless it has been processed."""
        if is_processed(self._read(ticket_id)):
            return False
        self._update(ticket_id, invalid_fields(error, at))
        return True

    def get(self, ticket_id: str) -> StoredTicket:
        """The enriched ticket with this id, or `core.errors.TicketNotFound`."""
        current = self._read(ticket_id)
        if current is None or current.get(MARKER, {}).get("status") != "enriched":
            raise TicketNotFound(ticket_id)
        return stored_from_document(ticket_id, current)

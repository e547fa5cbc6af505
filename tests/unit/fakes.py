"""Test doubles that implement the core's ports in memory."""

from __future__ import annotations

from core.errors import TicketNotFound
from core.ports import StoredTicket, TicketPage, TicketQuery


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

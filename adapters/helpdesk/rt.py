"""Request Tracker 5: creates tickets through RT's REST 2 API (``POST /REST/2.0/ticket``).

Plain httpx rather than the ``rt`` package: two endpoints are used, and the connector must
control the timeout and map every status (with ``Retry-After``) onto the product's errors,
which the package's own exception classes would only stand between.

Outcomes: ``ticket_outcome`` reads ``GET /REST/2.0/ticket/{id}``; a ticket is closed once its
``Status`` is ``resolved``, and its ``Priority`` (the number the connector set, or the one an
agent changed it to) maps back onto the product's labels. ``rejected`` and ``deleted`` tickets
say nothing about the priority they deserved, so they count as not closed.

Idempotency: RT has no idempotency header, so the ticket carries a token derived from the key
(``te-<hash>``), in the custom field ``key_field`` when one is configured (it must exist and
apply to the queue) or else at the end of the subject, and ``create_ticket`` first searches
with TicketSQL for a ticket carrying it. RT searches its database directly, so a retry sees a
ticket created by an earlier attempt at once.
"""

from __future__ import annotations

from typing import Any

import httpx

from adapters.helpdesk.mapping import FieldMapping, requester_of, subject_of
from adapters.helpdesk.searched import SearchedHelpdesk
from adapters.helpdesk.transport import DEFAULT_TIMEOUT_SECONDS, build_client, path_segment
from core.errors import HelpdeskError
from core.ports import HelpdeskOutcome, HelpdeskRef, StoredTicket

SYSTEM = "rt"
CLOSED_STATUSES = frozenset({"resolved"})


class RTClient(SearchedHelpdesk):
    """A `HelpdeskClient` that creates tickets in one RT queue."""

    name = SYSTEM
    create_path = "/REST/2.0/ticket"

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        queue: str = "General",
        key_field: str | None = None,
        mapping: FieldMapping | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.queue = queue
        self.key_field = key_field
        self.mapping = mapping or FieldMapping.for_system(SYSTEM)
        self.error_message = _error_message
        self._http = build_client(
            self.base_url,
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    def payload(self, ticket: StoredTicket, idempotency_key: str) -> dict[str, Any]:
        """The JSON body that creates this ticket."""
        token = self.mapping.idempotency_tag(idempotency_key)
        subject = subject_of(ticket, max_chars=200)
        custom_fields = self.mapping.custom_fields(ticket.enrichment)
        if self.key_field is None:
            subject = f"{subject} [{token}]"
        else:
            custom_fields[self.key_field] = token
        body: dict[str, Any] = {
            "Queue": self.queue,
            "Subject": subject,
            "Content": self.mapping.description(ticket),
            "ContentType": "text/plain",
        }
        priority = self.mapping.priority_for(ticket.enrichment)
        if priority is not None:
            body["Priority"] = priority
        _, email = requester_of(ticket)
        if email is not None:
            body["Requestor"] = email
        if custom_fields:
            body["CustomFields"] = custom_fields
        return body

    def search(self, token: str) -> tuple[str, dict[str, Any], str]:
        """A TicketSQL search of the queue for the token, in its custom field or the subject."""
        where = (
            f"Subject LIKE '{token}'"
            if self.key_field is None
            else f"CF.{{{self.key_field}}} = '{token}'"
        )
        query = f"Queue = '{_quoted(self.queue)}' AND {where}"
        return "/REST/2.0/tickets", {"query": query, "per_page": 1}, "items"

    def ticket_url(self, ticket_id: str) -> str:
        """The ticket's page in RT's web interface."""
        return f"{self.base_url}/Ticket/Display.html?id={ticket_id}"

    def ticket_outcome(self, ref: HelpdeskRef) -> HelpdeskOutcome:
        """The ticket's status and priority: closed once resolved."""
        body = self.read(f"/REST/2.0/ticket/{path_segment(ref.id)}")
        status = body.get("Status") if isinstance(body, dict) else None
        if not isinstance(status, str):
            raise HelpdeskError(f"{SYSTEM}: ticket {ref.id} was read without a Status")
        return self.mapping.outcome(
            ref, status, closed=status in CLOSED_STATUSES, priority=body.get("Priority")
        )


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _error_message(body: Any) -> str | None:
    """RT's errors: ``{"message": "..."}``."""
    message = body.get("message") if isinstance(body, dict) else None
    return str(message) if message else None

"""Freshdesk: creates tickets through the REST API v2 (``POST /api/v2/tickets``).

Plain httpx rather than a client library (python-freshdesk): two endpoints are used, and the
connector must control the timeout and map every status onto the product's errors itself.

Outcomes: ``ticket_outcome`` reads ``GET /api/v2/tickets/{id}``; a ticket is closed once its
status is 4 (resolved) or 5 (closed), and its ``priority`` (4 urgent … 1 low) maps back onto the
product's labels.

Idempotency: Freshdesk has no idempotency header, so the ticket carries a tag derived from the
key (``te-<hash>``) and ``create_ticket`` first searches for a ticket with that tag. Freshdesk's
search is eventually consistent: a retry within moments of a creation whose response was lost
may not see it yet, so the outbox should not retry immediately (its backoff does not).
"""

from __future__ import annotations

import html
from typing import Any

import httpx

from adapters.helpdesk.mapping import FieldMapping, requester_of, subject_of
from adapters.helpdesk.searched import SearchedHelpdesk
from adapters.helpdesk.transport import DEFAULT_TIMEOUT_SECONDS, build_client, path_segment
from core.errors import HelpdeskError
from core.ports import HelpdeskOutcome, HelpdeskRef, StoredTicket

SYSTEM = "freshdesk"
_STATUS_OPEN = 2
# Freshdesk's built-in statuses; an account may add its own, which are reported by number.
STATUS_NAMES = {2: "open", 3: "pending", 4: "resolved", 5: "closed"}
CLOSED_STATUSES = frozenset({4, 5})


class FreshdeskClient(SearchedHelpdesk):
    """A `HelpdeskClient` for one Freshdesk account (``https://<domain>.freshdesk.com``)."""

    name = SYSTEM
    create_path = "/api/v2/tickets"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        mapping: FieldMapping | None = None,
        default_requester_email: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.mapping = mapping or FieldMapping.for_system(SYSTEM)
        self.default_requester_email = default_requester_email
        self.error_message = _error_message
        # Freshdesk's basic auth: the API key as user name, any password ("X" by convention).
        self._http = build_client(
            self.base_url,
            auth=(api_key, "X"),
            timeout=timeout,
            transport=transport,
        )

    def payload(self, ticket: StoredTicket, idempotency_key: str) -> dict[str, Any]:
        """The JSON body that creates this ticket."""
        name, email = requester_of(ticket)
        body: dict[str, Any] = {
            "subject": subject_of(ticket),
            # Freshdesk renders the description as HTML.
            "description": html.escape(self.mapping.description(ticket)).replace("\n", "<br>"),
            "status": _STATUS_OPEN,
            "tags": self.mapping.tags(ticket.enrichment, idempotency_key),
        }
        email = email or self.default_requester_email
        if email is not None:
            body["email"] = email
        if name is not None:
            body["name"] = name
        priority = self.mapping.priority_for(ticket.enrichment)
        if priority is not None:
            body["priority"] = priority
        fields = self.mapping.custom_fields(ticket.enrichment)
        if fields:
            body["custom_fields"] = fields
        return body

    def search(self, token: str) -> tuple[str, dict[str, Any], str]:
        """Freshdesk's ticket search by tag."""
        return "/api/v2/search/tickets", {"query": f"\"tag:'{token}'\""}, "results"

    def ticket_url(self, ticket_id: str) -> str:
        """The agent's view of the ticket."""
        return f"{self.base_url}/a/tickets/{ticket_id}"

    def ticket_outcome(self, ref: HelpdeskRef) -> HelpdeskOutcome:
        """The ticket's status and priority: closed once resolved (4) or closed (5)."""
        body = self.read(f"/api/v2/tickets/{path_segment(ref.id)}")
        status = body.get("status") if isinstance(body, dict) else None
        if not isinstance(status, int) or isinstance(status, bool):
            raise HelpdeskError(f"{SYSTEM}: ticket {ref.id} was read without a status")
        return self.mapping.outcome(
            ref,
            STATUS_NAMES.get(status, str(status)),
            closed=status in CLOSED_STATUSES,
            priority=body.get("priority"),
        )


def _error_message(body: Any) -> str | None:
    """Freshdesk's errors: ``{"description", "errors": [{"field", "message", "code"}]}``."""
    if not isinstance(body, dict):
        return None
    parts = [str(body.get("description") or body.get("message") or "")]
    for problem in body.get("errors") or []:
        if isinstance(problem, dict):
            parts.append(f"{problem.get('field', '?')}: {problem.get('message', '')}")
    text = "; ".join(p for p in parts if p)
    return text or None

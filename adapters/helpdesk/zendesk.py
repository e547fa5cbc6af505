"""Zendesk Support: creates tickets through the Tickets API (``POST /api/v2/tickets.json``).

Plain httpx rather than a client library (zenpy): one endpoint is used, and the connector must
control the timeout, send the ``Idempotency-Key`` header and map every status onto the
product's errors itself, which a wrapper would only hide behind its own exceptions.

Outcomes: ``ticket_outcome`` reads ``GET /api/v2/tickets/{id}``; a ticket is closed once its
status is ``solved`` or ``closed``, and its ``priority`` (urgent, high, normal, low or none) maps
back onto the product's labels.

Idempotency: Zendesk keeps the response of a ticket creation under its ``Idempotency-Key``
header for two hours and returns it again for a repeated key, so a retry gets the first ticket.
"""

from __future__ import annotations

from typing import Any

import httpx

from adapters.helpdesk.mapping import FieldMapping, requester_of, subject_of
from adapters.helpdesk.transport import (
    DEFAULT_TIMEOUT_SECONDS,
    build_client,
    get_json,
    json_body,
    path_segment,
    send,
)
from core.errors import HelpdeskError, HelpdeskUnavailable
from core.ports import HelpdeskOutcome, HelpdeskRef, StoredTicket

SYSTEM = "zendesk"
CLOSED_STATUSES = frozenset({"solved", "closed"})


class ZendeskClient:
    """A `HelpdeskClient` for one Zendesk account (``https://<subdomain>.zendesk.com``)."""

    name = SYSTEM

    def __init__(
        self,
        base_url: str,
        email: str,
        api_token: str,
        *,
        mapping: FieldMapping | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.mapping = mapping or FieldMapping.for_system(SYSTEM)
        self._http = build_client(
            self.base_url,
            auth=(f"{email}/token", api_token),
            headers={"Content-Type": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    def payload(self, ticket: StoredTicket) -> dict[str, Any]:
        """The JSON body that creates this ticket."""
        body: dict[str, Any] = {
            "subject": subject_of(ticket),
            "comment": {"body": self.mapping.description(ticket)},
            "tags": self.mapping.tags(ticket.enrichment),
            "external_id": ticket.external_id or ticket.id,
        }
        priority = self.mapping.priority_for(ticket.enrichment)
        if priority is not None:
            body["priority"] = priority
        name, email = requester_of(ticket)
        if email is not None:
            # Zendesk makes a user of an unknown requester; it needs a name for that.
            body["requester"] = {"name": name or email, "email": email}
        fields = self.mapping.custom_fields(ticket.enrichment)
        if fields:
            body["custom_fields"] = [{"id": _field_id(k), "value": v} for k, v in fields.items()]
        return {"ticket": body}

    def create_ticket(self, ticket: StoredTicket, idempotency_key: str) -> HelpdeskRef:
        """Create the Zendesk ticket; a repeated key returns the ticket the key created."""
        response = send(
            self._http,
            SYSTEM,
            "POST",
            "/api/v2/tickets.json",
            json=self.payload(ticket),
            headers={"Idempotency-Key": idempotency_key},
            error_message=_error_message,
        )
        body = json_body(response, SYSTEM)
        try:
            ticket_id = str(body["ticket"]["id"])
        except (KeyError, TypeError) as exc:
            raise HelpdeskUnavailable(f"{SYSTEM}: response without ticket.id") from exc
        return HelpdeskRef(SYSTEM, ticket_id, f"{self.base_url}/agent/tickets/{ticket_id}")

    def ticket_outcome(self, ref: HelpdeskRef) -> HelpdeskOutcome:
        """The ticket's status and priority: closed once solved or closed."""
        body = get_json(
            self._http,
            SYSTEM,
            f"/api/v2/tickets/{path_segment(ref.id)}",
            error_message=_error_message,
        )
        ticket = body.get("ticket") if isinstance(body, dict) else None
        status = ticket.get("status") if isinstance(ticket, dict) else None
        if not isinstance(ticket, dict) or not isinstance(status, str):
            raise HelpdeskError(f"{SYSTEM}: ticket {ref.id} was read without a status")
        return self.mapping.outcome(
            ref, status, closed=status in CLOSED_STATUSES, priority=ticket.get("priority")
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()


def _field_id(key: str) -> int | str:
    return int(key) if key.isdigit() else key


def _error_message(body: Any) -> str | None:
    """Zendesk's errors: ``{"error", "description", "details": {field: [{"description"}]}}``."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    description = body.get("description")
    parts = [
        description if isinstance(description, str) else error if isinstance(error, str) else ""
    ]
    details = body.get("details")
    if isinstance(details, dict):
        for field_name, problems in details.items():
            for problem in problems if isinstance(problems, list) else []:
                if isinstance(problem, dict) and problem.get("description"):
                    parts.append(f"{field_name}: {problem['description']}")
    if isinstance(error, dict):  # 401/403 use {"error": {"title", "message"}}
        parts.append(str(error.get("message") or error.get("title") or ""))
    text = "; ".join(p for p in parts if p)
    return text or None

"""A signed webhook: POSTs each enriched ticket as JSON to one URL the receiver controls.

Each request carries ``X-Ticket-Enrich-Timestamp`` (Unix seconds), ``X-Ticket-Enrich-Signature:
sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`` keyed with the shared secret, and
``Idempotency-Key``, the same on every retry of one ticket. A receiver checks the signature with
`verify_signature` and answers a repeated key with the ticket it created the first time.

The webhook only pushes: there is no API to read a ticket back, so it is not an
`core.ports.OutcomeSource` and ``ticket-enrich outcomes`` refuses it. A receiver that wants its
closed tickets to become labels could later call back with the final priority, as agents'
corrections do (``POST /tickets/{id}/feedback``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from typing import Any

import httpx

from adapters.helpdesk.transport import DEFAULT_TIMEOUT_SECONDS, build_client, send
from core.ports import HelpdeskRef, StoredTicket

SYSTEM = "webhook"
TIMESTAMP_HEADER = "X-Ticket-Enrich-Timestamp"
SIGNATURE_HEADER = "X-Ticket-Enrich-Signature"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value for a body sent at ``timestamp``."""
    message = timestamp.encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    header: str,
    tolerance_s: float = 300.0,
    *,
    now: float | None = None,
) -> bool:
    """Whether ``header`` signs ``body`` at ``timestamp`` with ``secret``, and ``timestamp`` is
    within ``tolerance_s`` seconds of now (which stops a captured request being replayed later).

    ``body`` must be the raw bytes received, before any JSON parsing.
    """
    try:
        sent_at = float(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if not math.isfinite(sent_at) or abs(current - sent_at) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


class WebhookClient:
    """A `core.ports.HelpdeskClient` that POSTs signed JSON to one URL.

    2xx → the receiver's ticket (``id`` and optional ``url`` from a JSON reply, else the
    idempotency key); the rest is mapped by `adapters.helpdesk.transport.send`: 408, 409, 425,
    429, 5xx, timeouts and connection errors → HelpdeskUnavailable (with Retry-After), any
    other status → HelpdeskRejected.
    """

    name = SYSTEM

    def __init__(
        self,
        url: str,
        secret: str,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not secret:
            raise ValueError("the webhook secret must not be empty")
        self.url = url
        self._secret = secret
        self._client = build_client(url, timeout=timeout, transport=transport)

    def create_ticket(self, ticket: StoredTicket, idempotency_key: str) -> HelpdeskRef:
        """POST the ticket once under ``idempotency_key``; map the reply onto the product."""
        body = json.dumps(ticket.as_dict(), ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
        }
        response = send(
            self._client,
            SYSTEM,
            "POST",
            self.url,
            error_message=_error_message,
            content=body,
            headers=headers,
        )
        return _ref(response, idempotency_key)

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


def _error_message(reply: Any) -> str | None:
    found = reply.get("error") if isinstance(reply, dict) else None
    return found if isinstance(found, str) else None


def _ref(response: httpx.Response, idempotency_key: str) -> HelpdeskRef:
    try:
        reply = response.json()
    except ValueError:
        reply = None
    found = reply if isinstance(reply, dict) else {}
    ticket_id = found.get("id")
    url = found.get("url") or response.headers.get("Location")
    return HelpdeskRef(
        system=SYSTEM,
        id=str(ticket_id) if ticket_id not in (None, "") else idempotency_key,
        url=str(url) if url else None,
    )

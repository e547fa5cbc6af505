"""A signed webhook: POSTs each enriched ticket as JSON to one URL the receiver controls.

Each request carries ``X-Ticket-Enrich-Timestamp`` (Unix seconds), ``X-Ticket-Enrich-Signature:
sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`` keyed with the shared secret, and
``Idempotency-Key``, the same on every retry of one ticket. A receiver checks the signature with
`verify_signature` and answers a repeated key with the ticket it created the first time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from core.errors import HelpdeskRejected, HelpdeskUnavailable
from core.ports import HelpdeskRef, StoredTicket

SYSTEM = "webhook"
TIMESTAMP_HEADER = "X-Ticket-Enrich-Timestamp"
SIGNATURE_HEADER = "X-Ticket-Enrich-Signature"
# 409 is what an idempotent receiver answers while the first request with a key is in flight.
_RETRYABLE = frozenset({408, 409, 425, 429})
_MESSAGE_LIMIT = 300


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


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), never < 0."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class WebhookClient:
    """A `core.ports.HelpdeskClient` that POSTs signed JSON to one URL.

    2xx → the receiver's ticket (``id`` and optional ``url`` from a JSON reply, else the
    idempotency key); 408, 409, 429, 5xx, timeouts and connection errors → HelpdeskUnavailable;
    any other status → HelpdeskRejected.
    """

    name = SYSTEM

    def __init__(
        self,
        url: str,
        secret: str,
        timeout: float = 10.0,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not secret:
            raise ValueError("the webhook secret must not be empty")
        self.url = url
        self._secret = secret
        # No keep-alive pool: a worker sends seldom, and a pooled connection the receiver has
        # closed meanwhile would turn the next delivery into a spurious failure.
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            transport=transport,
            follow_redirects=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

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
        try:
            response = self._client.post(self.url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise HelpdeskUnavailable(f"{SYSTEM}: timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise HelpdeskUnavailable(f"{SYSTEM}: {type(exc).__name__}: {exc}") from exc
        if response.is_success:
            return _ref(response, idempotency_key)
        message = f"{SYSTEM}: HTTP {response.status_code}: {response.text.strip()[:_MESSAGE_LIMIT]}"
        if response.status_code in _RETRYABLE or response.status_code >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise HelpdeskUnavailable(message, retry_after=retry_after)
        raise HelpdeskRejected(message)

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


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

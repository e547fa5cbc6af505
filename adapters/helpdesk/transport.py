"""HTTP calls to a helpdesk, with its failures mapped onto the product's errors.

2xx is returned; 408, 409, 429, 5xx, timeouts and connection errors raise
`HelpdeskUnavailable` (with ``retry_after`` from the Retry-After header, in seconds or as an
HTTP date); any other status raises `HelpdeskRejected` with the helpdesk's own message.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from core.errors import HelpdeskRejected, HelpdeskUnavailable

DEFAULT_TIMEOUT_SECONDS = 10.0
_RETRYABLE = frozenset({408, 409, 425, 429})
_MESSAGE_LIMIT = 500

ErrorMessage = Callable[[Any], str | None]


def build_client(
    base_url: str,
    *,
    auth: httpx.Auth | tuple[str, str] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """An httpx client for one helpdesk; nothing is sent until the first request."""
    return httpx.Client(
        base_url=base_url.rstrip("/"),
        auth=auth,
        headers={"Accept": "application/json", **(headers or {})},
        timeout=httpx.Timeout(timeout),
        transport=transport,
        follow_redirects=False,
    )


def send(
    client: httpx.Client,
    system: str,
    method: str,
    url: str,
    *,
    error_message: ErrorMessage,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request; return the 2xx response or raise the product's error for the rest."""
    try:
        response = client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise HelpdeskUnavailable(f"{system}: timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise HelpdeskUnavailable(f"{system}: {type(exc).__name__}: {exc}") from exc
    if response.is_success:
        return response
    message = f"{system}: HTTP {response.status_code}: {_message(response, error_message)}"
    if response.status_code in _RETRYABLE or response.status_code >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise HelpdeskUnavailable(message, retry_after=retry_after)
    raise HelpdeskRejected(message)


def json_body(response: httpx.Response, system: str) -> Any:
    """The response's JSON; a 2xx that is not JSON means the helpdesk is misbehaving."""
    try:
        return response.json()
    except ValueError as exc:
        raise HelpdeskUnavailable(f"{system}: HTTP {response.status_code} without JSON") from exc


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), never negative."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _message(response: httpx.Response, error_message: ErrorMessage) -> str:
    try:
        found = error_message(response.json())
    except ValueError:
        found = None
    except (AttributeError, KeyError, TypeError, IndexError):
        found = None
    text = found or response.text.strip() or response.reason_phrase
    return text[:_MESSAGE_LIMIT]


def first_hit(
    client: httpx.Client,
    system: str,
    path: str,
    *,
    params: dict[str, Any],
    items: str,
    error_message: ErrorMessage,
) -> Any | None:
    """The first result of a search endpoint (its list under ``items``), or None: how the
    connectors without an idempotency header find what an earlier attempt created."""
    response = send(client, system, "GET", path, params=params, error_message=error_message)
    body = json_body(response, system)
    hits = body.get(items) if isinstance(body, dict) else None
    return hits[0] if hits else None


def post_json(
    client: httpx.Client, system: str, path: str, payload: Any, *, error_message: ErrorMessage
) -> Any:
    """POST a JSON payload and return the JSON the helpdesk answered with."""
    response = send(client, system, "POST", path, json=payload, error_message=error_message)
    return json_body(response, system)


def get_json(
    client: httpx.Client,
    system: str,
    path: str,
    *,
    error_message: ErrorMessage,
    params: dict[str, Any] | None = None,
) -> Any:
    """GET a path and return the JSON the helpdesk answered with."""
    response = send(client, system, "GET", path, params=params, error_message=error_message)
    return json_body(response, system)


def path_segment(value: str) -> str:
    """A ticket id made safe to put in a URL path as one segment."""
    return quote(value, safe="")

"""The signed webhook client against httpx's MockTransport: headers, signature, status mapping."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from adapters.helpdesk.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookClient,
    sign,
    verify_signature,
)
from core.errors import HelpdeskRejected, HelpdeskUnavailable
from core.ports import HelpdeskRef, StoredTicket

TICKET = StoredTicket("t-1", "ZD-1", "2026-01-01T00:00:00.000+00:00", {"subject": "é"}, {})


def _client(handler: httpx.MockTransport | None = None, **reply: object) -> WebhookClient:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(**reply)  # type: ignore[arg-type]

    return WebhookClient(
        "http://hook.test/in", "s3cret", transport=handler or httpx.MockTransport(respond)
    )


def test_the_request_is_signed_json_with_the_idempotency_key() -> None:
    seen: list[httpx.Request] = []

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"id": 42, "url": "http://desk/42"})

    ref = _client(httpx.MockTransport(respond)).create_ticket(TICKET, "ticket-enrich:t-1")

    assert ref == HelpdeskRef("webhook", "42", "http://desk/42")
    (request,) = seen
    assert request.method == "POST" and str(request.url) == "http://hook.test/in"
    assert request.headers["Idempotency-Key"] == "ticket-enrich:t-1"
    assert json.loads(request.content) == TICKET.as_dict()
    timestamp = request.headers[TIMESTAMP_HEADER]
    assert abs(int(timestamp) - time.time()) < 300
    assert verify_signature("s3cret", timestamp, request.content, request.headers[SIGNATURE_HEADER])


def test_a_2xx_without_json_is_known_by_its_key() -> None:
    ref = _client(status_code=204).create_ticket(TICKET, "k")
    assert ref == HelpdeskRef("webhook", "k", None)


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503])
def test_retryable_statuses_are_unavailable_with_retry_after(status: int) -> None:
    client = _client(status_code=status, headers={"Retry-After": "7"}, text="busy")
    with pytest.raises(HelpdeskUnavailable, match=f"HTTP {status}: busy") as caught:
        client.create_ticket(TICKET, "k")
    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_4xx_are_rejected(status: int) -> None:
    with pytest.raises(HelpdeskRejected, match=f"HTTP {status}"):
        _client(status_code=status).create_ticket(TICKET, "k")


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("x")],
)
def test_transport_failures_are_unavailable(error: Exception) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(HelpdeskUnavailable):
        _client(httpx.MockTransport(respond)).create_ticket(TICKET, "k")


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        WebhookClient("http://hook.test", "")


def test_verify_signature_refuses_tampering_wrong_keys_and_stale_timestamps() -> None:
    body, now = b'{"id":"t-1"}', 1_800_000_000.0
    timestamp = str(int(now))
    header = sign("key", timestamp, body)
    assert verify_signature("key", timestamp, body, header, 300, now=now)
    assert not verify_signature("key", timestamp, body + b" ", header, 300, now=now)
    assert not verify_signature("other", timestamp, body, header, 300, now=now)
    assert not verify_signature("key", str(int(now) + 1), body, header, 300, now=now)
    assert not verify_signature("key", timestamp, body, header, 300, now=now + 301)
    assert not verify_signature("key", "not-a-time", body, header, 300, now=now)

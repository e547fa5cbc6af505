"""The Zendesk, Freshdesk and Jira connectors against local servers that answer as those APIs do."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from adapters.helpdesk.freshdesk import FreshdeskClient
from adapters.helpdesk.jira import JiraClient
from adapters.helpdesk.mapping import FieldMapping
from adapters.helpdesk.zendesk import ZendeskClient
from core.errors import HelpdeskRejected, HelpdeskUnavailable
from core.ports import HelpdeskClient, HelpdeskRef, StoredTicket
from tests.integration.helpdesk_fakes import (
    FakeFreshdesk,
    FakeHelpdesk,
    FakeJira,
    FakeZendesk,
    serving,
)

CLIENT_TIMEOUT = 1.0


def _connect(
    system: str, base_url: str, *, good_auth: bool = True, mapping: FieldMapping | None = None
) -> ZendeskClient | FreshdeskClient | JiraClient:
    if system == "zendesk":
        token = FakeZendesk.TOKEN if good_auth else "wrong"
        return ZendeskClient(
            base_url, FakeZendesk.EMAIL, token, mapping=mapping, timeout=CLIENT_TIMEOUT
        )
    if system == "freshdesk":
        key = FakeFreshdesk.API_KEY if good_auth else "wrong"
        return FreshdeskClient(base_url, key, mapping=mapping, timeout=CLIENT_TIMEOUT)
    token = FakeJira.TOKEN if good_auth else "wrong"
    return JiraClient(
        base_url, FakeJira.EMAIL, token, FakeJira.PROJECT, mapping=mapping, timeout=CLIENT_TIMEOUT
    )


FAKES: dict[str, Callable[[], FakeHelpdesk]] = {
    "zendesk": FakeZendesk,
    "freshdesk": FakeFreshdesk,
    "jira": FakeJira,
}
SYSTEMS = list(FAKES)


@dataclass
class Desk:
    system: str
    fake: FakeHelpdesk
    client: HelpdeskClient


def _as_port(client: HelpdeskClient) -> HelpdeskClient:
    """The connectors are used through the port only, as the outbox does."""
    return client


@pytest.fixture(params=SYSTEMS)
def desk(request: pytest.FixtureRequest) -> Iterator[Desk]:
    with serving(FAKES[request.param]()) as fake:
        client = _connect(request.param, fake.base_url)
        yield Desk(request.param, fake, _as_port(client))
        client.close()


def _ticket(ticket_id: str = "t-1", label: str = "urgent") -> StoredTicket:
    return StoredTicket(
        ticket_id,
        "ZD-1042",
        "2026-11-23T11:00:00Z",
        {
            "subject": "NameNode fails to start after upgrade",
            "description": "All DataNodes are down, the cluster is unusable.",
            "requester": {"email": "ann@example.com", "name": "Ann"},
        },
        {
            "priority": {"label": label, "confidence": 0.61, "band": "low", "needs_review": True},
            "tags": ["namenode", "upgrade"],
            "needs_review": True,
        },
    )


def _received(desk: Desk) -> dict[str, Any]:
    """The created ticket's fields as the helpdesk received them, in one shape for all three."""
    [create] = desk.fake.creates()
    body = create.body
    if desk.system == "zendesk":
        t = body["ticket"]
        return {
            "priority": t["priority"],
            "tags": t["tags"],
            "text": t["comment"]["body"],
            "subject": t["subject"],
            "requester": t["requester"]["email"],
        }
    if desk.system == "freshdesk":
        return {
            "priority": body["priority"],
            "tags": body["tags"],
            "text": body["description"],
            "subject": body["subject"],
            "requester": body["email"],
        }
    f = body["fields"]
    return {
        "priority": f["priority"]["name"],
        "tags": f["labels"],
        "text": f["description"],
        "subject": f["summary"],
        "requester": None,
    }


URGENT = {"zendesk": "urgent", "freshdesk": 4, "jira": "Highest"}
LOW = {"zendesk": "low", "freshdesk": 1, "jira": "Low"}


def test_creates_the_ticket_with_priority_tags_and_summary_mapped(desk: Desk) -> None:
    ref = desk.client.create_ticket(_ticket(), "key-1")

    [stored] = desk.fake.tickets
    expected_id = str(stored["key"] if desk.system == "jira" else stored["id"])
    assert ref.system == desk.system and ref.id == expected_id
    assert ref.url is not None and ref.url.startswith(desk.fake.base_url) and expected_id in ref.url
    received = _received(desk)
    assert received["priority"] == URGENT[desk.system]
    assert {"priority__urgent", "band__low", "needs_review", "namenode", "upgrade"} <= set(
        received["tags"]
    )
    assert "All DataNodes are down" in received["text"]
    assert "Priority: urgent (confidence 0.61, band low)" in received["text"]
    assert received["subject"] == "NameNode fails to start after upgrade"
    assert received["requester"] in ("ann@example.com", None)


def test_a_low_priority_ticket_gets_the_helpdesks_low_priority(desk: Desk) -> None:
    desk.client.create_ticket(_ticket(label="low"), "key-low")
    assert _received(desk)["priority"] == LOW[desk.system]


def test_the_same_key_twice_creates_one_ticket(desk: Desk) -> None:
    first = desk.client.create_ticket(_ticket(), "key-1")
    second = desk.client.create_ticket(_ticket(), "key-1")
    assert first == second
    assert len(desk.fake.tickets) == 1


def test_different_keys_create_different_tickets(desk: Desk) -> None:
    first = desk.client.create_ticket(_ticket("t-1"), "key-1")
    second = desk.client.create_ticket(_ticket("t-2"), "key-2")
    assert first.id != second.id
    assert len(desk.fake.tickets) == 2


@pytest.mark.parametrize("failure", ["slow", "drop"])
def test_a_lost_response_is_retryable_and_the_retry_returns_the_ticket_it_created(
    desk: Desk, failure: str
) -> None:
    desk.fake.fail_next_create(failure)
    with pytest.raises(HelpdeskUnavailable) as raised:
        desk.client.create_ticket(_ticket(), "key-1")
    assert raised.value.retry_after is None
    assert len(desk.fake.tickets) == 1  # the helpdesk did create it; only the answer was lost

    again = desk.client.create_ticket(_ticket(), "key-1")

    assert len(desk.fake.tickets) == 1
    stored = desk.fake.tickets[0]
    assert again.id == str(stored["key"] if desk.system == "jira" else stored["id"])


def test_rate_limiting_is_retryable_after_the_seconds_it_asks_for(desk: Desk) -> None:
    desk.fake.fail_next_create("429")
    with pytest.raises(HelpdeskUnavailable) as raised:
        desk.client.create_ticket(_ticket(), "key-1")
    assert raised.value.retry_after == 7.0
    assert "429" in str(raised.value)
    assert desk.fake.tickets == []
    assert desk.client.create_ticket(_ticket(), "key-1").system == desk.system
    assert len(desk.fake.tickets) == 1


def test_server_errors_are_retryable_and_an_http_date_retry_after_becomes_seconds(
    desk: Desk,
) -> None:
    desk.fake.fail_next_create("500", "503-date")
    with pytest.raises(HelpdeskUnavailable) as first:
        desk.client.create_ticket(_ticket(), "key-1")
    assert first.value.retry_after is None and "HTTP 500" in str(first.value)
    with pytest.raises(HelpdeskUnavailable) as second:
        desk.client.create_ticket(_ticket(), "key-1")
    assert second.value.retry_after is not None and 0 < second.value.retry_after <= 60
    assert desk.fake.tickets == []


def test_wrong_credentials_are_rejected_for_good(desk: Desk) -> None:
    client = _connect(desk.system, desk.fake.base_url, good_auth=False)
    with pytest.raises(HelpdeskRejected, match="HTTP 401"):
        client.create_ticket(_ticket(), "key-1")
    assert desk.fake.tickets == []


BAD_PRIORITY = {"zendesk": "critical", "freshdesk": 5, "jira": "Critical"}
VALIDATION_MESSAGE = {
    "zendesk": r"HTTP 422: Record validation errors; priority: Priority: critical is not valid",
    "freshdesk": r"HTTP 400: Validation failed; priority: It should be one of these values: '1,2,3,4'",
    "jira": r"HTTP 400: priority: Specify a valid 'id' or 'name' for Priority",
}


def test_a_validation_error_is_rejected_with_the_helpdesks_message(desk: Desk) -> None:
    mapping = FieldMapping.from_dict(
        desk.system, {"priorities": {"urgent": BAD_PRIORITY[desk.system]}}
    )
    client = _connect(desk.system, desk.fake.base_url, mapping=mapping)
    with pytest.raises(HelpdeskRejected) as raised:
        client.create_ticket(_ticket(), "key-1")
    assert VALIDATION_MESSAGE[desk.system] in str(raised.value)
    assert desk.fake.tickets == []


@pytest.mark.parametrize("system", SYSTEMS)
def test_a_helpdesk_that_is_not_listening_is_retryable(system: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = _connect(system, f"http://127.0.0.1:{port}")
    with pytest.raises(HelpdeskUnavailable, match="ConnectError"):
        client.create_ticket(_ticket(), "key-1")


def test_zendesk_sends_the_idempotency_key_and_custom_fields_by_id() -> None:
    mapping = FieldMapping.for_system("zendesk", confidence_field="360001", band_field="360002")
    with serving(FakeZendesk()) as fake:
        client = ZendeskClient(fake.base_url, FakeZendesk.EMAIL, FakeZendesk.TOKEN, mapping=mapping)
        ref = client.create_ticket(_ticket(), "key-1")
        [create] = fake.creates()
    assert create.headers["idempotency-key"] == "key-1"
    assert create.body["ticket"]["custom_fields"] == [
        {"id": 360001, "value": 0.61},
        {"id": 360002, "value": "low"},
    ]
    assert create.body["ticket"]["requester"] == {"name": "Ann", "email": "ann@example.com"}
    assert ref == HelpdeskRef("zendesk", "35436", f"{fake.base_url}/agent/tickets/35436")


def test_freshdesk_opens_the_ticket_with_an_html_description() -> None:
    ticket = _ticket()
    ticket.ticket["description"] = "a < b\nsecond line"
    with serving(FakeFreshdesk()) as fake:
        client = FreshdeskClient(fake.base_url, FakeFreshdesk.API_KEY)
        ref = client.create_ticket(ticket, "key-1")
        [create] = fake.creates()
    assert create.body["status"] == 2
    assert create.body["description"].startswith("a &lt; b<br>second line<br><br>")
    assert ref == HelpdeskRef("freshdesk", "1", f"{fake.base_url}/a/tickets/1")


def test_jira_searches_the_project_for_the_keys_label_before_creating() -> None:
    with serving(FakeJira()) as fake:
        client = JiraClient(fake.base_url, FakeJira.EMAIL, FakeJira.TOKEN, FakeJira.PROJECT)
        ref = client.create_ticket(_ticket(), "key-1")
        search, create = fake.requests
    label = FieldMapping.for_system("jira").idempotency_tag("key-1")
    assert search.method == "GET"
    assert search.query["jql"] == f'project = "SUP" AND labels = "{label}"'
    assert label in create.body["fields"]["labels"]
    assert create.body["fields"]["issuetype"] == {"name": "Task"}
    assert ref == HelpdeskRef("jira", "SUP-1", f"{fake.base_url}/browse/SUP-1")

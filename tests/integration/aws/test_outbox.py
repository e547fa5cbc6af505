"""The outbox function delivering through a helpdesk connector (Zendesk's, to a loopback fake
that dedupes on Idempotency-Key as Zendesk does) from moto's DynamoDB: the same ticket posted
twice and the worker run again make one helpdesk ticket; a failing helpdesk is retried."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.aws import api, handlers
from adapters.aws.dynamodb_store import DynamoDBTicketStore
from core.ports import StoredTicket
from tests.integration.aws.conftest import FakeLambdaContext, dynamodb, load_event
from tests.integration.helpdesk_fakes import FakeZendesk, serving

TICKET = {"subject": "Cluster down after upgrade", "external_id": "ZD-77"}


@pytest.fixture
def zendesk() -> Iterator[FakeZendesk]:
    with serving(FakeZendesk()) as fake:
        yield fake  # type: ignore[misc]


def _deliver_env(zendesk: FakeZendesk) -> dict[str, str]:
    return {
        "TICKET_ENRICH_DELIVER": "true",
        "TICKET_ENRICH_HELPDESK": "zendesk",
        "TICKET_ENRICH_HELPDESK_URL": zendesk.base_url,
        "TICKET_ENRICH_HELPDESK_USER": FakeZendesk.EMAIL,
        "TICKET_ENRICH_HELPDESK_TOKEN": FakeZendesk.TOKEN,
        "TICKET_ENRICH_HELPDESK_TIMEOUT_S": "5",
        "TICKET_ENRICH_DELIVERY_RETRY_BASE_S": "0",
        "TICKET_ENRICH_DELIVERY_RETRY_CAP_S": "0",
    }


def _post(body: dict[str, Any]) -> dict[str, Any]:
    event = load_event("rest_post_ticket.json")
    event["body"] = json.dumps(body)
    event["isBase64Encoded"] = False
    response: dict[str, Any] = api.rest_api(event, FakeLambdaContext())
    return response


def test_a_ticket_posted_twice_reaches_the_helpdesk_once(
    configure: Any, zendesk: FakeZendesk, aws_env: str, table: str
) -> None:
    configure(**_deliver_env(zendesk))
    first, second = _post(TICKET), _post(TICKET)
    assert (first["statusCode"], second["statusCode"]) == (201, 200)
    ticket_id = json.loads(first["body"])["id"]

    # The table's stream announces the new delivery; then the schedule's tick finds nothing.
    report = handlers.outbox_deliver(load_event("dynamodb_stream_update.json"), FakeLambdaContext())
    again = handlers.outbox_deliver(load_event("scheduled_retrain.json"), FakeLambdaContext())

    assert report == {"delivered": 1, "retrying": 0, "dead": 0}
    assert again == {"delivered": 0, "retrying": 0, "dead": 0}
    (created,) = zendesk.tickets
    assert created["subject"] == TICKET["subject"]
    assert [r.headers["idempotency-key"] for r in zendesk.creates()] == [
        f"ticket-enrich:{ticket_id}"
    ]
    delivery = DynamoDBTicketStore(dynamodb(aws_env), table).delivery(ticket_id)
    assert delivery is not None and delivery.status == "delivered"
    assert delivery.ref is not None and delivery.ref.id == str(created["id"])


def test_a_failing_helpdesk_is_retried_and_a_dropped_reply_is_not_a_second_ticket(
    configure: Any, zendesk: FakeZendesk
) -> None:
    configure(**_deliver_env(zendesk))
    zendesk.fail_next_create("500", "drop")
    ticket_id = json.loads(_post(TICKET)["body"])["id"]

    # Retries are due at once (base 0): one invocation makes passes until the outbox is empty.
    report = handlers.outbox_deliver(load_event("scheduled_retrain.json"), FakeLambdaContext())

    assert report == {"delivered": 1, "retrying": 2, "dead": 0}
    assert len(zendesk.tickets) == 1
    assert len(zendesk.creates()) == 3
    assert {r.headers["idempotency-key"] for r in zendesk.creates()} == {
        f"ticket-enrich:{ticket_id}"
    }


def test_claims_are_leased_so_two_workers_never_send_the_same_delivery(
    aws_env: str, table: str
) -> None:
    store = DynamoDBTicketStore(dynamodb(aws_env), table)
    now = datetime.now(UTC)
    for n in range(5):
        ticket = StoredTicket(f"t-{n}", None, now.isoformat(), {"subject": f"s{n}"}, {})
        store.add_with_delivery(ticket, now - timedelta(seconds=5 - n))

    lease = now + timedelta(seconds=60)
    first = store.claim_due(now, lease, limit=3)
    second = store.claim_due(now, lease, limit=10)

    assert [d.ticket_id for d, _ in first] == ["t-0", "t-1", "t-2"]
    assert [d.ticket_id for d, _ in second] == ["t-3", "t-4"]
    assert store.claim_due(now, lease, limit=10) == []
    # After the lease runs out (a worker died), the deliveries are due again.
    later = lease + timedelta(seconds=1)
    again = store.claim_due(later, later + timedelta(seconds=60), limit=10)
    assert sorted(d.ticket_id for d, _ in again) == [f"t-{n}" for n in range(5)]

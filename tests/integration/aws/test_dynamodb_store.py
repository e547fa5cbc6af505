"""`DynamoDBTicketStore` as a `TicketStore` and an `Outbox`, against moto's DynamoDB, through
the same calls the core makes: conditional adds, listing, the outbox's life cycle."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from adapters.aws.dynamodb_store import DynamoDBTicketStore
from core.errors import StoreError, TicketNotFound
from core.ports import HelpdeskRef, StoredTicket, TicketQuery
from tests.integration.aws.conftest import dynamodb

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _ticket(n: int, priority: str = "normal", review: bool = True) -> StoredTicket:
    enrichment = {"priority": {"label": priority, "confidence": 0.5}, "needs_review": review}
    received = (NOW + timedelta(minutes=n)).isoformat(timespec="milliseconds")
    return StoredTicket(f"t{n}", f"E-{n}", received, {"subject": f"s{n}", "x": 0.1}, enrichment)


@pytest.fixture
def store(aws_env: str, table: str) -> DynamoDBTicketStore:
    return DynamoDBTicketStore(dynamodb(aws_env), table)


def test_add_is_idempotent_and_the_first_version_wins(store: DynamoDBTicketStore) -> None:
    first, created = store.add(_ticket(1, "urgent"))
    again, created_again = store.add(_ticket(1, "low"))

    assert (created, created_again) == (True, False)
    assert again == first == store.get("t1")
    assert again.enrichment["priority"]["label"] == "urgent"
    assert again.ticket["x"] == 0.1  # a float, not a Decimal
    with pytest.raises(TicketNotFound):
        store.get("nope")


def test_non_json_content_is_refused_before_anything_is_written(
    store: DynamoDBTicketStore,
) -> None:
    with pytest.raises(ValueError):
        store.add(replace(_ticket(1), ticket={"subject": float("nan")}))
    with pytest.raises(TicketNotFound):
        store.get("t1")


def test_listing_filters_and_pages_newest_first(store: DynamoDBTicketStore) -> None:
    for n, (priority, review) in enumerate(
        [("urgent", True), ("normal", False), ("urgent", False), ("urgent", True)]
    ):
        store.add(_ticket(n, priority, review))

    page = store.list(TicketQuery(priority="urgent", limit=2))
    assert ([t.id for t in page.items], page.total) == (["t3", "t2"], 3)
    page = store.list(TicketQuery(priority="urgent", needs_review=True, offset=1))
    assert ([t.id for t in page.items], page.total) == (["t0"], 2)
    with pytest.raises(ValueError):
        store.list(TicketQuery(limit=-1))


def test_a_delivery_is_enqueued_once_and_leaves_the_queue_when_finished(
    store: DynamoDBTicketStore,
) -> None:
    _, created = store.add_with_delivery(_ticket(1), NOW)
    _, again = store.add_with_delivery(_ticket(1), NOW)
    store.add_with_delivery(_ticket(2), NOW + timedelta(seconds=1))
    assert (created, again) == (True, False)

    later = NOW + timedelta(seconds=10)
    claimed = store.claim_due(later, later + timedelta(seconds=30), limit=10)
    assert [(d.ticket_id, d.status, d.attempts) for d, _ in claimed] == [
        ("t1", "pending", 0),
        ("t2", "pending", 0),
    ]
    (d1, t1), (d2, _) = claimed
    assert t1 == store.get("t1")
    ref = HelpdeskRef("zendesk", "35436", "https://helpdesk.test/35436")
    store.save(replace(d1, status="delivered", attempts=1, ref=ref))
    store.save(replace(d2, status="dead", attempts=1, last_error="rejected: HTTP 422"))

    much_later = later + timedelta(hours=1)
    assert store.claim_due(much_later, much_later + timedelta(seconds=30), limit=10) == []
    delivered = store.delivery("t1")
    assert delivered is not None and delivered.ref == ref and delivered.last_error is None
    assert [d.ticket_id for d in store.deliveries()] == ["t1", "t2"]
    assert [d.ticket_id for d in store.deliveries("dead")] == ["t2"]
    assert store.delivery("t9") is None

    # Requeued (as core.delivery.requeue_dead does), the dead one is due again.
    dead = store.delivery("t2")
    assert dead is not None
    store.save(replace(dead, status="pending", attempts=0, next_attempt_at=much_later))
    ((requeued, _),) = store.claim_due(much_later, much_later + timedelta(seconds=30), limit=10)
    assert requeued.ticket_id == "t2"

    assert store.purge("delivered") == 1
    assert store.delivery("t1") is None
    assert store.get("t1").id == "t1"  # the ticket stays
    with pytest.raises(ValueError):
        store.purge("pending")


def test_counts_by_status_read_every_page_of_the_scan(aws_env: str, table: str) -> None:
    client = dynamodb(aws_env)
    store = DynamoDBTicketStore(client, table, page_size=3)
    assert store.count_by_status() == {"pending": 0, "retrying": 0, "delivered": 0, "dead": 0}
    store.add(_ticket(0))  # a ticket without a delivery is not counted
    statuses = ["pending"] * 4 + ["retrying"] * 2 + ["dead"]
    for n, status in enumerate(statuses, start=1):
        store.add_with_delivery(_ticket(n), NOW)
        delivery = store.delivery(f"t{n}")
        assert delivery is not None
        store.save(replace(delivery, status=status))

    # 15 items, 3 to a page: the counts below add up over five Scan requests.
    first = client.scan(TableName=table, Limit=3)
    assert len(first["Items"]) == 3 and "LastEvaluatedKey" in first
    expected = {"pending": 4, "retrying": 2, "delivered": 0, "dead": 1}
    assert store.count_by_status() == expected
    assert DynamoDBTicketStore(client, table).count_by_status() == expected
    with pytest.raises(ValueError):
        DynamoDBTicketStore(client, table, page_size=0)


def test_a_missing_table_is_a_store_error(aws_env: str) -> None:
    store = DynamoDBTicketStore(dynamodb(aws_env), "no-such-table")
    with pytest.raises(StoreError):
        store.get("t1")
    with pytest.raises(StoreError):
        store.add_with_delivery(_ticket(1), NOW)
    with pytest.raises(StoreError):
        store.claim_due(NOW, NOW, limit=1)
    with pytest.raises(StoreError):
        store.count_by_status()


def test_a_new_ticket_is_one_write_and_only_a_duplicate_is_read_back(
    aws_env: str, table: str
) -> None:
    client = dynamodb(aws_env)
    calls: list[str] = []
    client.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.append(model.name)
    )
    store = DynamoDBTicketStore(client, table)

    first, created = store.add(_ticket(1, "urgent"))
    assert (created, calls) == (True, ["PutItem"])
    assert first == store.get("t1")

    calls.clear()
    again, created_again = store.add(_ticket(1, "low"))
    assert (created_again, calls) == (False, ["PutItem", "GetItem"])
    assert again == first

    calls.clear()
    queued, created_queued = store.add_with_delivery(_ticket(2), NOW)
    assert (created_queued, calls) == (True, ["TransactWriteItems"])
    assert queued == store.get("t2")

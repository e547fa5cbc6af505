"""FirestoreTicketStore as a `core.ports.Outbox` and `TicketStore`, against the emulator, driven
by `core.delivery.deliver_due` as the drain function drives it."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.gcp.firestore_store import FirestoreTicketStore
from core.delivery import RetryPolicy, deliver_due
from core.errors import FieldProblem, HelpdeskUnavailable, InvalidTicket, TicketNotFound
from core.ports import HelpdeskRef, StoredTicket, TicketQuery
from tests.integration.gcp.conftest import Emulator

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def client(firestore_emulator: Emulator) -> Any:
    return firestore_emulator.client()


@pytest.fixture
def store(client: Any) -> FirestoreTicketStore:
    suffix = uuid.uuid4().hex[:8]
    return FirestoreTicketStore(
        client, tickets_collection=f"tickets-{suffix}", outbox_collection=f"outbox-{suffix}"
    )


def _ticket(n: int, priority: str = "normal", needs_review: bool = True) -> StoredTicket:
    return StoredTicket(
        id=f"t{n}",
        external_id=None,
        received_at=(T0 + timedelta(seconds=n)).isoformat(timespec="milliseconds"),
        ticket={"subject": f"ticket {n}", "description": ""},
        enrichment={"priority": {"label": priority}, "needs_review": needs_review},
    )


class Helpdesk:
    name = "fake"

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.created: list[str] = []

    def create_ticket(self, ticket: StoredTicket, idempotency_key: str) -> HelpdeskRef:
        if self.failures:
            self.failures -= 1
            raise HelpdeskUnavailable("down", retry_after=30)
        self.created.append(idempotency_key)
        return HelpdeskRef("fake", f"H{len(self.created)}")

    def close(self) -> None:
        pass


def test_add_is_idempotent_and_get_reads_the_enriched_ticket(store: FirestoreTicketStore) -> None:
    first, created = store.add_with_delivery(_ticket(1), T0)
    again, created_again = store.add_with_delivery(
        replace(_ticket(1), enrichment={"priority": {"label": "urgent"}}), T0
    )

    assert created and not created_again
    assert again.enrichment == first.enrichment
    assert store.get("t1").enrichment == first.enrichment
    assert len(store.deliveries()) == 1
    with pytest.raises(TicketNotFound):
        store.get("missing")


def test_an_invalid_ticket_is_not_found_and_not_enqueued(store: FirestoreTicketStore) -> None:
    assert store.mark_invalid("t9", InvalidTicket([FieldProblem("subject", "bad")]), T0)
    assert not store.mark_invalid("t9", InvalidTicket([FieldProblem("subject", "bad")]), T0)
    with pytest.raises(TicketNotFound):
        store.get("t9")
    assert store.deliveries() == []


def test_list_filters_pages_and_counts(store: FirestoreTicketStore) -> None:
    for n, (priority, review) in enumerate(
        [("normal", True), ("urgent", False), ("urgent", True)], start=1
    ):
        store.add(_ticket(n, priority, review))

    page = store.list(TicketQuery(limit=2))
    assert page.total == 3 and [t.id for t in page.items] == ["t3", "t2"]
    assert [t.id for t in store.list(TicketQuery(priority="urgent")).items] == ["t3", "t2"]
    assert store.list(TicketQuery(priority="urgent", needs_review=False)).total == 1
    assert [t.id for t in store.list(TicketQuery(offset=2)).items] == ["t1"]


def test_a_claim_leases_until_it_expires(store: FirestoreTicketStore) -> None:
    store.add_with_delivery(_ticket(1), T0)
    store.add_with_delivery(_ticket(2), T0 + timedelta(seconds=5))

    claimed = store.claim_due(T0 + timedelta(seconds=1), T0 + timedelta(seconds=60), 10)
    assert [d.ticket_id for d, _ in claimed] == ["t1"]
    assert claimed[0][1].ticket["subject"] == "ticket 1"
    # Leased: a second worker gets only what has become due since.
    later = T0 + timedelta(seconds=10)
    assert [d.ticket_id for d, _ in store.claim_due(later, later + timedelta(seconds=60), 10)] == [
        "t2"
    ]
    # The first worker died: after its lease, t1 is due again.
    expired = T0 + timedelta(seconds=61)
    assert [
        d.ticket_id for d, _ in store.claim_due(expired, expired + timedelta(seconds=60), 10)
    ] == ["t1"]


def test_deliver_due_retries_then_delivers_once(store: FirestoreTicketStore) -> None:
    store.add_with_delivery(_ticket(1), T0)
    helpdesk = Helpdesk(failures=1)
    policy = RetryPolicy(base_s=1.0, cap_s=1.0, lease_s=60.0)
    clock = [T0]

    report = deliver_due(store, helpdesk, now=lambda: clock[0], policy=policy, rand=lambda: 0.5)
    assert report.retrying == ["t1"]
    retrying = store.delivery("t1")
    assert (
        retrying is not None
        and retrying.attempts == 1
        and retrying.next_attempt_at == T0 + timedelta(seconds=30)
    )
    assert deliver_due(store, helpdesk, now=lambda: clock[0], policy=policy).claimed == 0

    clock[0] = T0 + timedelta(seconds=31)
    assert deliver_due(store, helpdesk, now=lambda: clock[0], policy=policy).delivered == ["t1"]
    assert deliver_due(store, helpdesk, now=lambda: clock[0], policy=policy).claimed == 0
    delivered = store.delivery("t1")
    assert (
        delivered is not None
        and delivered.status == "delivered"
        and delivered.ref == HelpdeskRef("fake", "H1")
    )
    assert helpdesk.created == ["ticket-enrich:t1"]
    assert [d.ticket_id for d in store.deliveries(status="delivered")] == ["t1"]
    assert store.purge("delivered") == 1
    assert store.deliveries() == []


def test_enqueue_keeps_the_first_version(store: FirestoreTicketStore) -> None:
    first, created = store.enqueue(_ticket(4, "low"), T0)
    second, created_again = store.enqueue(_ticket(4, "urgent"), T0)

    assert created and not created_again
    assert (
        second.enrichment
        == first.enrichment
        == {"priority": {"label": "low"}, "needs_review": True}
    )


def test_counts_by_status_include_the_empty_ones(store: FirestoreTicketStore) -> None:
    assert store.count_by_status() == {"pending": 0, "retrying": 0, "delivered": 0, "dead": 0}
    store.add(_ticket(0))  # a ticket without a delivery is not counted
    statuses = ["pending"] * 3 + ["retrying"] * 2 + ["dead"]
    for n, status in enumerate(statuses, start=1):
        store.add_with_delivery(_ticket(n), T0)
        delivery = store.delivery(f"t{n}")
        assert delivery is not None
        store.save(replace(delivery, status=status))

    assert store.count_by_status() == {"pending": 3, "retrying": 2, "delivered": 0, "dead": 1}

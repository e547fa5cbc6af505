"""The SQLite store's outbox against a real database file: atomic enqueue, leases, states."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.local.sqlite_store import SQLiteTicketStore
from core.ports import HelpdeskRef, StoredTicket

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LEASE = T0 + timedelta(seconds=60)


def _ticket(ticket_id: str) -> StoredTicket:
    return StoredTicket(ticket_id, None, T0.isoformat(), {"subject": "s"}, {"needs_review": False})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteTicketStore]:
    with SQLiteTicketStore(tmp_path / "t.sqlite3") as opened:
        yield opened


def test_a_new_ticket_and_its_delivery_are_stored_together_once(store: SQLiteTicketStore) -> None:
    _, created = store.add_with_delivery(_ticket("a"), T0)
    _, again = store.add_with_delivery(_ticket("a"), T0 + timedelta(hours=1))

    assert (created, again) == (True, False)
    (delivery,) = store.deliveries()
    assert (delivery.ticket_id, delivery.status, delivery.attempts) == ("a", "pending", 0)
    assert delivery.next_attempt_at == T0


def test_plain_add_enqueues_nothing(store: SQLiteTicketStore) -> None:
    store.add(_ticket("a"))
    assert store.deliveries() == [] and store.delivery("a") is None


def test_invalid_content_stores_neither_ticket_nor_delivery(store: SQLiteTicketStore) -> None:
    bad = replace(_ticket("a"), ticket={"subject": float("nan")})
    with pytest.raises(ValueError):
        store.add_with_delivery(bad, T0)
    assert store.deliveries() == []


def test_two_stores_on_one_file_never_claim_the_same_delivery(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite3"
    with SQLiteTicketStore(path) as first, SQLiteTicketStore(path) as second:
        for name in "abc":
            first.add_with_delivery(_ticket(name), T0)

        one = first.claim_due(T0, LEASE, limit=2)
        two = second.claim_due(T0, LEASE, limit=10)
        after_lease = second.claim_due(LEASE, LEASE + timedelta(seconds=60), limit=10)

    assert [d.ticket_id for d, _ in one] == ["a", "b"]
    assert [d.ticket_id for d, _ in two] == ["c"]
    assert [t.id for _, t in one] == ["a", "b"]
    assert sorted(d.ticket_id for d, _ in after_lease) == ["a", "b", "c"]


def test_save_releases_the_lease_and_keeps_the_ref(store: SQLiteTicketStore) -> None:
    store.add_with_delivery(_ticket("a"), T0)
    ((claimed, _),) = store.claim_due(T0, LEASE, limit=1)
    retry = replace(claimed, status="retrying", attempts=1, last_error="down", ref=None)
    store.save(retry)
    assert [d.ticket_id for d, _ in store.claim_due(T0, LEASE, limit=1)] == ["a"]

    done = replace(retry, status="delivered", attempts=2, ref=HelpdeskRef("w", "9", "u"))
    store.save(done)

    assert store.delivery("a") == done
    assert store.claim_due(LEASE, LEASE, limit=10) == []
    assert store.deliveries("delivered") == [done] and store.deliveries("dead") == []


def test_purge_forgets_deliveries_of_one_status_only(store: SQLiteTicketStore) -> None:
    for name, status in (("a", "delivered"), ("b", "dead"), ("c", "pending")):
        store.add_with_delivery(_ticket(name), T0)
        delivery = store.delivery(name)
        assert delivery is not None
        store.save(replace(delivery, status=status))

    assert store.purge("delivered") == 1
    assert sorted(d.ticket_id for d in store.deliveries()) == ["b", "c"]
    assert store.get("a").id == "a"
    with pytest.raises(ValueError):
        store.purge("pending")


def test_counts_by_status_include_the_empty_ones(store: SQLiteTicketStore) -> None:
    assert store.count_by_status() == {"pending": 0, "retrying": 0, "delivered": 0, "dead": 0}
    store.add(_ticket("z"))  # a ticket without a delivery is not counted
    for name, status in (("a", "pending"), ("b", "dead"), ("c", "dead"), ("d", "retrying")):
        store.add_with_delivery(_ticket(name), T0)
        delivery = store.delivery(name)
        assert delivery is not None
        store.save(replace(delivery, status=status))

    executed: list[str] = []
    store._conn.set_trace_callback(executed.append)
    assert store.count_by_status() == {"pending": 1, "retrying": 1, "delivered": 0, "dead": 2}
    store._conn.set_trace_callback(None)
    # Whatever the store ran, SQLite answered it from an index, reading no outbox row.
    plans = [store._conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall() for sql in executed]
    assert plans and all("COVERING INDEX" in step[3] for plan in plans for step in plan)

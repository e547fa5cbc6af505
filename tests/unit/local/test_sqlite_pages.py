"""The SQLite store's side of the pages: corrections, agreement, the change feed, status
digests, and the dashboard's filters and order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.local.sqlite_store import SQLiteTicketStore
from core.errors import TicketNotFound
from core.ports import Correction, Delivery, StoredTicket, TicketQuery


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteTicketStore]:
    with SQLiteTicketStore(tmp_path / "tickets.sqlite3") as opened:
        yield opened


def _ticket(n: int, label: str, band: str = "low", language: str = "en") -> StoredTicket:
    enrichment: dict[str, Any] = {
        "priority": {"label": label, "band": band, "confidence": 0.5},
        "language": {"code": language, "confidence": 0.9},
        "needs_review": band != "high",
    }
    return StoredTicket(
        f"t{n}", None, f"2026-01-01T00:00:{n:02d}.000+00:00", {"subject": n}, enrichment
    )


def _correction(ticket_id: str, label: str, predicted: str, agent: str = "ann") -> Correction:
    return Correction(ticket_id, "priority", label, predicted, agent, "v1", "2026-01-02T00:00:00")


def test_the_latest_correction_per_ticket_counts_for_agreement(store: SQLiteTicketStore) -> None:
    for n in range(4):
        store.add(_ticket(n, "normal"))
    store.add_correction(_correction("t0", "urgent", "normal"))
    store.add_correction(_correction("t0", "normal", "normal", agent="bob"))  # changes its mind
    store.add_correction(_correction("t1", "urgent", "normal"))
    store.add_correction(_correction("t2", "normal", "normal"))
    store.add_correction(
        Correction("t3", "resolution", "Fixed", "Invalid", "ann", "v1", "2026-01-02")
    )

    latest = store.corrections()
    assert [(c.ticket_id, c.target, c.label) for c in latest] == [
        ("t3", "resolution", "Fixed"),
        ("t2", "priority", "normal"),
        ("t1", "priority", "urgent"),
        ("t0", "priority", "normal"),
    ]
    assert [c.agent for c in store.corrections("t0")] == ["bob"]
    everything = store.agreement("priority", 50)
    assert (everything.tickets, everything.agreed, everything.rate) == (3, 2, 2 / 3)
    # The window takes the most recently corrected tickets.
    last_two = store.agreement("priority", 2)
    assert (last_two.tickets, last_two.agreed) == (2, 1)
    assert store.agreement("resolution", 50).agreed == 0
    assert store.agreement("nothing", 50).rate is None


def test_a_correction_of_an_unknown_ticket_is_refused(store: SQLiteTicketStore) -> None:
    with pytest.raises(TicketNotFound):
        store.add_correction(_correction("nope", "urgent", "normal"))
    assert store.corrections() == []


def test_every_change_is_in_the_feed_in_order(store: SQLiteTicketStore) -> None:
    start = store.last_change()
    now = datetime.now(UTC)
    store.add_with_delivery(_ticket(1, "normal"), now)
    store.add(_ticket(1, "normal"))  # a duplicate changes nothing
    store.replace_enrichment("t1", _ticket(1, "urgent").enrichment)
    store.save(Delivery("t1", "delivered", 1, now))
    store.save(Delivery("t1", "delivered", 1, now))  # no change of state, no event
    store.add_correction(_correction("t1", "urgent", "urgent"))

    changes = store.changes_since(start)
    assert [(c.ticket_id, c.kind) for c in changes] == [
        ("t1", "created"),
        ("t1", "delivery"),
        ("t1", "enriched"),
        ("t1", "delivery"),
        ("t1", "feedback"),
    ]
    assert [c.seq for c in changes] == sorted(c.seq for c in changes)
    assert store.last_change() == changes[-1].seq
    assert store.changes_since(changes[1].seq, limit=2) == changes[2:4]
    assert store.get("t1").enrichment["priority"]["label"] == "urgent"
    assert store.list(TicketQuery(priority="urgent")).total == 1
    with pytest.raises(TicketNotFound):
        store.replace_enrichment("nope", {})


def test_status_digests_are_kept_per_ticket(store: SQLiteTicketStore) -> None:
    store.add(_ticket(1, "normal"))
    assert store.status_digest("t1") is None
    store.save_status_digest("t1", "a" * 64)
    store.save_status_digest("t1", "b" * 64)
    assert store.status_digest("t1") == "b" * 64


def test_filters_and_the_work_queue_order(store: SQLiteTicketStore) -> None:
    now = datetime.now(UTC)
    store.add_with_delivery(_ticket(1, "normal", "high", "en"), now)
    store.add_with_delivery(_ticket(2, "urgent", "low", "de"), now)
    store.add(_ticket(3, "low", "medium", "en"))
    store.add(_ticket(4, "urgent", "medium", "en"))
    store.save(Delivery("t1", "dead", 3, now, last_error="410"))

    def ids(**filters: Any) -> list[str]:
        return [t.id for t in store.list(TicketQuery(**filters)).items]

    assert ids() == ["t4", "t3", "t2", "t1"]
    assert ids(priority_order=("urgent", "normal", "low")) == ["t2", "t4", "t1", "t3"]
    # Labels the order does not name come last.
    assert ids(priority_order=("normal",)) == ["t1", "t2", "t3", "t4"]
    assert ids(band="medium") == ["t4", "t3"]
    assert ids(language="de") == ["t2"]
    assert ids(needs_review=False) == ["t1"]
    assert ids(delivery_status="dead") == ["t1"]
    assert ids(delivery_status="pending") == ["t2"]
    assert ids(delivery_status="none") == ["t4", "t3"]
    assert ids(band="medium", priority="urgent") == ["t4"]
    assert store.list(TicketQuery(band="medium", limit=1)).total == 2

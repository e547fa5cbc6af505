"""The SQLite ticket store against a real database file in a temporary directory."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from adapters.local.sqlite_store import SQLiteTicketStore
from core.errors import StoreError, TicketNotFound
from core.ports import StoredTicket, TicketQuery


def _ticket(
    ticket_id: str,
    *,
    received_at: str = "2024-05-01T10:00:00.000+00:00",
    priority: str = "Major",
    needs_review: bool = False,
    external_id: str | None = None,
    subject: str = "NameNode fails to start",
) -> StoredTicket:
    return StoredTicket(
        id=ticket_id,
        external_id=external_id,
        received_at=received_at,
        ticket={"subject": subject, "custom_fields": {"component": "hdfs"}},
        enrichment={
            "priority": {
                "label": priority,
                "confidence": 0.8125,
                "band": "medium" if needs_review else "high",
                "needs_review": needs_review,
                "probabilities": {priority: 0.8125, "Other": 0.1875},
            },
            "needs_review": needs_review,
            "model": {"name": "test", "version": "1"},
        },
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "dir" / "tickets.sqlite3"


@pytest.fixture
def store(db_path: Path) -> Iterator[SQLiteTicketStore]:
    with SQLiteTicketStore(db_path) as opened:
        yield opened


def test_opening_creates_parent_directories_and_a_wal_database(db_path: Path) -> None:
    with SQLiteTicketStore(db_path):
        assert db_path.is_file()
        with closing(sqlite3.connect(db_path)) as other:
            (mode,) = other.execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"


def test_add_then_get_returns_the_same_ticket(store: SQLiteTicketStore) -> None:
    ticket = _ticket("a", external_id="ZD-1")

    stored, created = store.add(ticket)

    assert created is True
    assert stored == ticket
    assert store.get("a") == ticket


def test_add_is_idempotent_on_the_id_and_keeps_the_first_version(
    store: SQLiteTicketStore,
) -> None:
    first = _ticket("a", priority="Major", subject="first")
    retry = _ticket("a", priority="Minor", subject="retry", received_at="2024-06-01T00:00:00Z")

    store.add(first)
    stored, created = store.add(retry)

    assert created is False
    assert stored == first
    assert store.get("a") == first
    assert store.list(TicketQuery()).total == 1


def test_get_unknown_id_raises_ticket_not_found(store: SQLiteTicketStore) -> None:
    store.add(_ticket("a"))

    with pytest.raises(TicketNotFound) as info:
        store.get("missing")

    assert info.value.ticket_id == "missing"


def test_list_is_newest_first_with_insertion_order_breaking_ties(
    store: SQLiteTicketStore,
) -> None:
    store.add(_ticket("old", received_at="2024-01-01T00:00:00.000+00:00"))
    store.add(_ticket("tie-1", received_at="2024-03-01T00:00:00.000+00:00"))
    store.add(_ticket("tie-2", received_at="2024-03-01T00:00:00.000+00:00"))
    store.add(_ticket("mid", received_at="2024-02-01T00:00:00.000+00:00"))

    page = store.list(TicketQuery())

    assert [t.id for t in page.items] == ["tie-2", "tie-1", "mid", "old"]
    assert page.total == 4


def test_list_filters_by_priority_and_needs_review(store: SQLiteTicketStore) -> None:
    store.add(_ticket("major-ok", priority="Major", needs_review=False))
    store.add(_ticket("major-review", priority="Major", needs_review=True))
    store.add(_ticket("minor-review", priority="Minor", needs_review=True))

    def ids(query: TicketQuery) -> set[str]:
        page = store.list(query)
        assert page.total == len(page.items)
        return {t.id for t in page.items}

    assert ids(TicketQuery(priority="Major")) == {"major-ok", "major-review"}
    assert ids(TicketQuery(needs_review=True)) == {"major-review", "minor-review"}
    assert ids(TicketQuery(needs_review=False)) == {"major-ok"}
    assert ids(TicketQuery(priority="Minor", needs_review=True)) == {"minor-review"}
    assert ids(TicketQuery(priority="Blocker")) == set()


def test_list_pages_with_a_total_of_all_matches(store: SQLiteTicketStore) -> None:
    for day in range(1, 8):
        store.add(_ticket(f"t{day}", received_at=f"2024-01-0{day}T00:00:00.000+00:00"))

    pages = [store.list(TicketQuery(limit=3, offset=offset)) for offset in (0, 3, 6, 9)]

    assert [[t.id for t in page.items] for page in pages] == [
        ["t7", "t6", "t5"],
        ["t4", "t3", "t2"],
        ["t1"],
        [],
    ]
    assert {page.total for page in pages} == {7}


@pytest.mark.parametrize(
    "bad_value",
    [float("nan"), float("inf"), "lone \ud800 surrogate"],
    ids=["nan", "infinity", "lone-surrogate"],
)
def test_add_refuses_content_it_could_not_serve_back(
    store: SQLiteTicketStore, bad_value: object
) -> None:
    ticket = _ticket("bad")
    ticket.ticket["custom_fields"]["weird"] = bad_value

    with pytest.raises(ValueError):
        store.add(ticket)

    assert store.list(TicketQuery()).total == 0
    with pytest.raises(TicketNotFound):
        store.get("bad")


def test_list_refuses_negative_paging(store: SQLiteTicketStore) -> None:
    with pytest.raises(ValueError):
        store.list(TicketQuery(limit=-1))
    with pytest.raises(ValueError):
        store.list(TicketQuery(offset=-1))


def test_tickets_survive_closing_and_reopening(db_path: Path) -> None:
    ticket = _ticket("a", external_id="ZD-1")
    with SQLiteTicketStore(db_path) as first:
        first.add(ticket)

    with SQLiteTicketStore(db_path) as reopened:
        assert reopened.get("a") == ticket
        assert reopened.list(TicketQuery()).total == 1
        assert reopened.add(ticket) == (ticket, False)


def test_concurrent_adds_of_one_id_create_it_once(store: SQLiteTicketStore) -> None:
    results: list[bool] = []
    start = threading.Barrier(8)

    def add() -> None:
        start.wait()
        results.append(store.add(_ticket("same"))[1])

    threads = [threading.Thread(target=add) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False] * 7 + [True]
    assert store.list(TicketQuery()).total == 1


def test_a_closed_store_raises_store_error(db_path: Path) -> None:
    store = SQLiteTicketStore(db_path)
    store.close()

    with pytest.raises(StoreError):
        store.get("a")
    with pytest.raises(StoreError):
        store.add(_ticket("a"))
    with pytest.raises(StoreError):
        store.list(TicketQuery())


def test_a_newer_schema_is_refused(db_path: Path) -> None:
    SQLiteTicketStore(db_path).close()
    with closing(sqlite3.connect(db_path)) as other:
        other.execute("PRAGMA user_version=99")

    with pytest.raises(StoreError, match="schema version 99"):
        SQLiteTicketStore(db_path)

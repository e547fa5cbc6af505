"""The service's worker stores checkpoint the write-ahead log on a thread of their own
(`checkpoint_every`), so that no request's commit copies the log into the database."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.local import sqlite_store
from adapters.local.sqlite_store import SQLiteTicketStore
from core.ports import StoredTicket

PAGE = 4096


def _fill(store: SQLiteTicketStore, count: int, start: int = 0) -> None:
    now = datetime.now(UTC)
    for i in range(start, start + count):
        store.add_with_delivery(
            StoredTicket(
                id=f"t-{i}",
                external_id=None,
                received_at=now.isoformat(),
                ticket={"subject": f"ticket {i}", "description": "x" * 6000},
                enrichment={"priority": {"label": "normal"}, "needs_review": True},
            ),
            now,
        )


def _wal_pages(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size // PAGE if wal.exists() else 0


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(what)


def test_commits_leave_the_checkpoints_to_the_background(tmp_path: Path) -> None:
    # With the background an hour away, the commits let the log grow past the 250 pages at
    # which a plain store's commits checkpoint it.
    path = tmp_path / "background.sqlite3"
    with SQLiteTicketStore(path, checkpoint_every=3600.0) as store:
        _fill(store, 600)
        assert _wal_pages(path) > 1000
        assert store.checkpoints == {"runs": 0, "restarts": 0, "last": None}
    plain = tmp_path / "plain.sqlite3"
    with SQLiteTicketStore(plain) as store:
        _fill(store, 600)
        assert _wal_pages(plain) < 400
        assert store.checkpoints["runs"] == 0


def test_the_background_checkpoints_and_restarts_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "_WAL_RESTART_PAGES", 100)
    path = tmp_path / "tickets.sqlite3"
    with SQLiteTicketStore(path, checkpoint_every=0.01) as store:
        _fill(store, 150)
        _until(lambda: store.checkpoints["restarts"] >= 1, f"no restart: {store.checkpoints}")
        # Written on after the restart, from the start of the log again: nothing is lost.
        _fill(store, 50, start=150)
        assert store.get("t-0").ticket["subject"] == "ticket 0"
        assert store.get("t-199").ticket["subject"] == "ticket 199"
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM tickets").fetchone() == (200,)
        assert conn.execute("SELECT COUNT(*) FROM outbox").fetchone() == (200,)


def test_closing_the_store_stops_its_checkpoints(tmp_path: Path) -> None:
    def running() -> bool:
        return any(t.name.startswith("checkpoint ") for t in threading.enumerate())

    store = SQLiteTicketStore(tmp_path / "tickets.sqlite3", checkpoint_every=0.01)
    assert running()
    _fill(store, 5)
    _until(lambda: store.checkpoints["runs"] >= 1, "no checkpoint ran")
    store.close()
    assert not running()

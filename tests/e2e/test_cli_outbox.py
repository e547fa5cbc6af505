"""`ticket-enrich outbox` and `deliver --once` as a user runs them, against a real SQLite file."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from adapters.local.sqlite_store import SQLiteTicketStore
from core.ports import StoredTicket
from tests.support import run_cli

ROOT = Path(__file__).parents[2]


def run(*args: str, db: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, settings={"database": str(db), **settings})


def _seed(db: Path) -> None:
    now = datetime.now(UTC)
    with SQLiteTicketStore(db) as store:
        for ticket_id, status in (("a", "dead"), ("b", "dead"), ("c", "delivered"), ("d", None)):
            store.add_with_delivery(StoredTicket(ticket_id, None, now.isoformat(), {}, {}), now)
            delivery = store.delivery(ticket_id)
            if status is not None and delivery is not None:
                store.save(replace(delivery, status=status))


def _statuses(db: Path) -> dict[str, str]:
    result = run("outbox", "list", db=db)
    assert result.returncode == 0, result.stderr
    return {d["ticket_id"]: d["status"] for d in map(json.loads, result.stdout.splitlines())}


def test_list_retry_and_purge(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite3"
    _seed(db)
    assert _statuses(db) == {"a": "dead", "b": "dead", "c": "delivered", "d": "pending"}
    dead = run("outbox", "list", "--status", "dead", db=db)
    assert [json.loads(line)["ticket_id"] for line in dead.stdout.splitlines()] == ["a", "b"]

    assert run("outbox", "retry", "a", db=db).returncode == 0
    assert _statuses(db)["a"] == "pending"
    not_dead = run("outbox", "retry", "a", db=db)
    assert not_dead.returncode == 2 and "not dead" in not_dead.stderr
    assert run("outbox", "retry", "--all-dead", db=db).returncode == 0
    assert _statuses(db)["b"] == "pending"

    purged = run("outbox", "purge", "--status", "delivered", db=db)
    assert purged.returncode == 0 and "1 delivered" in purged.stderr
    assert set(_statuses(db)) == {"a", "b", "d"}


def test_deliver_without_a_configured_webhook_says_what_is_missing(tmp_path: Path) -> None:
    result = run("deliver", "--once", db=tmp_path / "t.sqlite3")
    assert result.returncode == 2
    assert "TICKET_ENRICH_HELPDESK_WEBHOOK_SECRET" in result.stderr


def test_deliver_once_records_an_unreachable_webhook_as_retrying(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite3"
    _seed(db)
    result = run(
        "deliver",
        "--once",
        db=db,
        helpdesk_webhook_url="http://127.0.0.1:9/hook",
        helpdesk_webhook_secret="s",
        helpdesk_timeout_s="5",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"delivered": [], "retrying": ["d"], "dead": []}
    assert _statuses(db)["d"] == "retrying"

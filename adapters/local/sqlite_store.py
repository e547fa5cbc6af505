"""The local service's ticket store: one SQLite file, standard library only (orjson, when
installed, encodes its JSON faster)."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import StoreError, TicketNotFound

try:
    import orjson
except ImportError:  # installed with the local extra; without it the standard library encodes
    orjson = None  # type: ignore[assignment]

if sys.platform != "win32":  # Windows: one worker, and SQLite's busy timeout alone
    import fcntl
from core.ports import (
    DELIVERY_STATUSES,
    Agreement,
    Correction,
    Delivery,
    HelpdeskRef,
    StoredTicket,
    TicketChange,
    TicketPage,
    TicketQuery,
)

# Bumped whenever the table layout changes, so an old file is refused instead of misread.
_SCHEMA_VERSION = 4

# A commit that takes the write-ahead log past this many pages copies it into the database
# (SQLite's default is 1,000: 4 MB, which took a commit 4-5 ms instead of 0.1 ms; 250 pages take
# about 2 ms). The service's workers leave it to a thread instead (`CHECKPOINT_EVERY_S`).
_WAL_AUTOCHECKPOINT_PAGES = 250
CHECKPOINT_EVERY_S = 0.02
# With checkpoints in the background (`checkpoint_every`): the pages in the log after which the
# background restarts it, and the backstop at which a commit checkpoints by itself after all.
_WAL_RESTART_PAGES = 4_000
_WAL_BACKSTOP_PAGES = 16_000


class _Checkpointer(threading.Thread):
    """Copies the log's pages into the database on a connection of its own, every ``interval``
    seconds, so that the commits of requests do not; and once the log holds `_WAL_RESTART_PAGES`
    pages, restarts it (a RESTART checkpoint, which writers wait for: it holds the writers'
    advisory lock) so that it does not grow for ever. A passive checkpoint never blocks a writer
    or a reader, and SQLite runs it without Python's global interpreter lock."""

    def __init__(self, path: Path, interval: float) -> None:
        super().__init__(name=f"checkpoint {path.name}", daemon=True)
        self._path, self._interval = path, interval
        self._stop_event = threading.Event()
        # (busy, pages in the log, pages checkpointed) of the last checkpoint, and how many ran.
        self.last: tuple[int, int, int] | None = None
        self.count = 0
        self.restarts = 0

    def run(self) -> None:
        try:
            conn = sqlite3.connect(self._path, timeout=0.0, isolation_level=None)
            lock = os.open(
                f"{self._path}.writer-lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
        except (OSError, sqlite3.Error):
            return  # the commits' own checkpoints (the backstop) keep the log bounded
        try:
            while not self._stop_event.wait(self._interval):
                try:
                    self._round(conn, lock)
                except (OSError, sqlite3.Error):
                    continue  # a lock held elsewhere: the next round tries again
        finally:
            conn.close()
            os.close(lock)

    def _round(self, conn: sqlite3.Connection, lock: int) -> None:
        row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.last = (int(row[0]), int(row[1]), int(row[2]))
        self.count += 1
        if self.last[1] < _WAL_RESTART_PAGES:
            return
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            row = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
        if row[0] == 0:
            self.restarts += 1

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5.0)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS tickets (
    id           TEXT PRIMARY KEY,
    external_id  TEXT,
    received_at  TEXT NOT NULL,
    priority     TEXT,
    needs_review INTEGER NOT NULL,
    ticket       TEXT NOT NULL,
    enrichment   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tickets_by_received ON tickets (received_at DESC);
CREATE INDEX IF NOT EXISTS tickets_by_priority ON tickets (priority, received_at DESC);
CREATE INDEX IF NOT EXISTS tickets_by_review ON tickets (needs_review, received_at DESC);
-- Version 2: the delivery outbox, one row per ticket, times in seconds since the epoch.
CREATE TABLE IF NOT EXISTS outbox (
    ticket_id       TEXT PRIMARY KEY REFERENCES tickets (id),
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at REAL NOT NULL,
    lease_until     REAL,
    last_error      TEXT,
    helpdesk_system TEXT,
    helpdesk_id     TEXT,
    helpdesk_url    TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at);
-- Version 3: agents' corrections (labels for the next training run), the digests of customers'
-- status tokens, and a change feed that triggers fill, so that every writer (another process,
-- the sqlite3 shell) shows up in the live queue.
CREATE TABLE IF NOT EXISTS feedback (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id     TEXT NOT NULL REFERENCES tickets (id),
    target        TEXT NOT NULL,
    label         TEXT NOT NULL,
    predicted     TEXT,
    agent         TEXT NOT NULL,
    model_version TEXT,
    corrected_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_by_ticket ON feedback (ticket_id, target, seq);
CREATE TABLE IF NOT EXISTS status_links (
    ticket_id TEXT PRIMARY KEY REFERENCES tickets (id),
    digest    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS changes (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id TEXT NOT NULL,
    kind      TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS ticket_created AFTER INSERT ON tickets
BEGIN INSERT INTO changes (ticket_id, kind) VALUES (NEW.id, 'created'); END;
CREATE TRIGGER IF NOT EXISTS ticket_enriched AFTER UPDATE OF enrichment ON tickets
BEGIN INSERT INTO changes (ticket_id, kind) VALUES (NEW.id, 'enriched'); END;
CREATE TRIGGER IF NOT EXISTS delivery_enqueued AFTER INSERT ON outbox
BEGIN INSERT INTO changes (ticket_id, kind) VALUES (NEW.ticket_id, 'delivery'); END;
CREATE TRIGGER IF NOT EXISTS delivery_changed AFTER UPDATE OF status, helpdesk_id ON outbox
WHEN OLD.status IS NOT NEW.status OR OLD.helpdesk_id IS NOT NEW.helpdesk_id
BEGIN INSERT INTO changes (ticket_id, kind) VALUES (NEW.ticket_id, 'delivery'); END;
CREATE TRIGGER IF NOT EXISTS ticket_corrected AFTER INSERT ON feedback
BEGIN INSERT INTO changes (ticket_id, kind) VALUES (NEW.ticket_id, 'feedback'); END;
-- Version 4: what the service's worker processes share and a restart ends: agents' live
-- sessions and the rate limits' token buckets (times on the machine's monotonic clock), with
-- each limit's counts.
CREATE TABLE IF NOT EXISTS sessions (
    nonce   TEXT PRIMARY KEY,
    agent   TEXT NOT NULL,
    expires INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_expiry ON sessions (expires);
CREATE TABLE IF NOT EXISTS rate_buckets (
    scope   TEXT NOT NULL,
    client  TEXT NOT NULL,
    tokens  REAL NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (scope, client)
);
CREATE INDEX IF NOT EXISTS rate_buckets_by_age ON rate_buckets (scope, updated);
CREATE TABLE IF NOT EXISTS rate_limits (
    scope   TEXT PRIMARY KEY,
    clients INTEGER NOT NULL,
    refused INTEGER NOT NULL,
    evicted INTEGER NOT NULL
);
"""
_FEEDBACK_COLUMNS = "ticket_id, target, label, predicted, agent, model_version, corrected_at"
# The latest correction per ticket and target is the one that counts.
_LATEST_FEEDBACK = (
    f"SELECT {_FEEDBACK_COLUMNS} FROM feedback WHERE seq IN"
    " (SELECT MAX(seq) FROM feedback GROUP BY ticket_id, target)"
)

_COLUMNS = "id, external_id, received_at, ticket, enrichment"
_DELIVERY_COLUMNS = (
    "ticket_id, status, attempts, next_attempt_at, last_error,"
    " helpdesk_system, helpdesk_id, helpdesk_url"
)


# Aliases, because inside the class `list` is the listing method.
_Corrections = list[Correction]
_Changes = list[TicketChange]


def _strict_json(value: Any) -> str:
    if orjson is not None:
        # orjson encodes in a third of the time; what it writes is kept when it reads back equal
        # to the value, which a NaN (written as null), a tuple or any type JSON lacks does not.
        try:
            encoded = orjson.dumps(value)
            if orjson.loads(encoded) == value:
                return encoded.decode("utf-8")
        except (TypeError, ValueError):  # a lone surrogate, a key that is not a string, an
            pass  # integer beyond 64 bits: the standard library's encoder decides, as it did
    text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    # A lone surrogate fails here, before any SQL runs, as a ValueError just like a NaN does.
    text.encode("utf-8")
    return text


def _row_to_ticket(row: tuple[Any, ...]) -> StoredTicket:
    ticket_id, external_id, received_at, ticket, enrichment = row
    return StoredTicket(
        id=ticket_id,
        external_id=external_id,
        received_at=received_at,
        ticket=json.loads(ticket),
        enrichment=json.loads(enrichment),
    )


def _row_to_correction(row: tuple[Any, ...]) -> Correction:
    ticket_id, target, label, predicted, agent, model_version, corrected_at = row
    return Correction(
        ticket_id=ticket_id,
        target=target,
        label=label,
        predicted=predicted,
        agent=agent,
        model_version=model_version,
        corrected_at=corrected_at,
    )


def _row_to_delivery(row: tuple[Any, ...]) -> Delivery:
    ticket_id, status, attempts, next_at, last_error, system, helpdesk_id, url = row
    ref = None if helpdesk_id is None else HelpdeskRef(system=system, id=helpdesk_id, url=url)
    return Delivery(
        ticket_id=ticket_id,
        status=status,
        attempts=attempts,
        next_attempt_at=datetime.fromtimestamp(next_at, UTC),
        last_error=last_error,
        ref=ref,
    )


class SQLiteTicketStore:
    """A `core.ports.TicketStore` and `core.ports.Outbox` in one SQLite file that survives
    restarts; tickets and their deliveries share it so both are written in one transaction.
    It is also the pages' `FeedbackStore`, `TicketChanges` and `StatusLinks`.

    One connection is shared behind a lock: FastAPI runs handlers on a thread pool, and the
    local service's load does not justify a connection per thread. WAL mode lets other
    processes (the service's other workers, the sqlite3 shell) read while this one writes.

    Processes that write through this class take turns on an advisory lock beside the file
    (``<database>.writer-lock``) before SQLite's own write lock: a writer that waits there is
    woken the moment the other one commits, where SQLite's busy handler would sleep a
    millisecond or more between tries, which with several workers writing a thousand tickets a
    second is most of the 99th-percentile latency. Other writers (the sqlite3 shell) still meet
    SQLite's busy timeout, as before.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        checkpoint_every: float | None = None,
    ) -> None:
        """Open (creating the file, its parent directories and its tables) the store at `path`.

        With ``checkpoint_every`` (seconds), a thread checkpoints the write-ahead log at that
        interval, instead of the commits that fill it (see `_Checkpointer`).
        """
        self.path = Path(path)
        self._lock = threading.Lock()
        self._writer_lock: int | None = None
        self._checkpointer: _Checkpointer | None = None
        try:
            # Tickets hold customers' personal data: a new store is its owner's alone (SQLite
            # gives its -wal and -shm files the database file's mode).
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if str(self.path) != ":memory:" and not self.path.exists():
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            # Autocommit: every write is a single statement, and reads that must agree (a page
            # and its total) open their own transaction explicitly.
            self._conn = sqlite3.connect(
                self.path, timeout=10.0, isolation_level=None, check_same_thread=False
            )
            if str(self.path) != ":memory:" and sys.platform != "win32":
                self._writer_lock = os.open(
                    f"{self.path}.writer-lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
                )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the ticket store at {self.path}: {exc}") from exc
        # In the background only with the writers' lock the restarts take (not in memory, not on
        # Windows).
        interval = checkpoint_every if self._writer_lock is not None else None
        try:
            self._open_schema()
            if interval is not None:
                self._conn.execute(f"PRAGMA wal_autocheckpoint={_WAL_BACKSTOP_PAGES}")
        except sqlite3.Error as exc:
            self._conn.close()
            raise StoreError(f"cannot open the ticket store at {self.path}: {exc}") from exc
        if interval is not None:
            self._checkpointer = _Checkpointer(self.path, interval)
            self._checkpointer.start()

    def _open_schema(self) -> None:
        self._conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable across application crashes in WAL mode; only a power loss can lose
        # the last commits, which the at-least-once sources would re-deliver.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(f"PRAGMA wal_autocheckpoint={_WAL_AUTOCHECKPOINT_PAGES}")
        (version,) = self._conn.execute("PRAGMA user_version").fetchone()
        if version > _SCHEMA_VERSION:
            self._conn.close()
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this service's "
                f"{_SCHEMA_VERSION}; upgrade ticket-enrich"
            )
        self._conn.executescript(_SCHEMA)
        self._conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")

    def add(self, ticket: StoredTicket) -> tuple[StoredTicket, bool]:
        """Store the ticket unless its id exists; return the stored one and whether it is new.

        Raises ValueError, storing nothing, for content that is not strict JSON (NaN, infinity,
        lone surrogates): once stored, it would break every listing that includes it.
        """
        return self._add(ticket, None)

    def add_with_delivery(self, ticket: StoredTicket, now: datetime) -> tuple[StoredTicket, bool]:
        """Like `add`, and in the same transaction enqueue a delivery due at ``now`` when the
        ticket is new; a duplicate enqueues nothing."""
        return self._add(ticket, now)

    def _add(self, ticket: StoredTicket, deliver_at: datetime | None) -> tuple[StoredTicket, bool]:
        ticket_json = _strict_json(ticket.ticket)
        enrichment_json = _strict_json(ticket.enrichment)
        priority = ticket.enrichment.get("priority", {}).get("label")
        needs_review = bool(ticket.enrichment.get("needs_review", False))
        try:
            with self._lock, self._transaction():
                cursor = self._conn.execute(
                    "INSERT INTO tickets (id, external_id, received_at, priority, needs_review,"
                    " ticket, enrichment) VALUES (?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (id) DO NOTHING",
                    (
                        ticket.id,
                        ticket.external_id,
                        ticket.received_at,
                        priority,
                        int(needs_review),
                        ticket_json,
                        enrichment_json,
                    ),
                )
                created = cursor.rowcount == 1
                if created and deliver_at is not None:
                    self._conn.execute(
                        "INSERT INTO outbox (ticket_id, status, attempts, next_attempt_at)"
                        " VALUES (?, 'pending', 0, ?) ON CONFLICT (ticket_id) DO NOTHING",
                        (ticket.id, deliver_at.timestamp()),
                    )
                # On a conflict the first version wins: read it back, so the caller sees exactly
                # what a later `get` returns. A new row is the argument itself (strict JSON
                # reads back equal), so it is not read again.
                row = (
                    None
                    if created
                    else self._conn.execute(
                        f"SELECT {_COLUMNS} FROM tickets WHERE id = ?", (ticket.id,)
                    ).fetchone()
                )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot store ticket {ticket.id}: {exc}") from exc
        if created:
            return ticket, True
        if row is None:
            raise StoreError(f"ticket {ticket.id} vanished right after it was stored")
        return _row_to_ticket(row), created

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        # IMMEDIATE takes the write lock up front, so two processes claiming deliveries
        # serialise instead of both reading the same due rows.
        with self._writing():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """This process's turn to write (see the class's docstring); the caller holds
        ``self._lock``, so threads of one process never wait here for each other."""
        if self._writer_lock is None or sys.platform == "win32":
            yield
            return
        fcntl.flock(self._writer_lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._writer_lock, fcntl.LOCK_UN)

    def claim_due(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[tuple[Delivery, StoredTicket]]:
        """Lease up to ``limit`` pending or retrying deliveries due at ``now``, oldest first."""
        at = now.timestamp()
        try:
            with self._lock, self._transaction():
                rows = self._conn.execute(
                    f"SELECT {_DELIVERY_COLUMNS} FROM outbox"
                    " WHERE status IN ('pending', 'retrying') AND next_attempt_at <= ?"
                    " AND (lease_until IS NULL OR lease_until <= ?)"
                    " ORDER BY next_attempt_at, rowid LIMIT ?",
                    (at, at, limit),
                ).fetchall()
                claimed = []
                for row in rows:
                    self._conn.execute(
                        "UPDATE outbox SET lease_until = ? WHERE ticket_id = ?",
                        (lease_until.timestamp(), row[0]),
                    )
                    ticket = self._conn.execute(
                        f"SELECT {_COLUMNS} FROM tickets WHERE id = ?", (row[0],)
                    ).fetchone()
                    claimed.append((_row_to_delivery(row), _row_to_ticket(ticket)))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot claim deliveries: {exc}") from exc
        return claimed

    def save(self, delivery: Delivery) -> None:
        """Record the outcome of an attempt and release the delivery's lease."""
        if delivery.status not in DELIVERY_STATUSES:
            raise ValueError(f"unknown delivery status {delivery.status!r}")
        ref = delivery.ref
        try:
            with self._lock, self._writing():
                self._conn.execute(
                    "UPDATE outbox SET status = ?, attempts = ?, next_attempt_at = ?,"
                    " last_error = ?, helpdesk_system = ?, helpdesk_id = ?, helpdesk_url = ?,"
                    " lease_until = NULL WHERE ticket_id = ?",
                    (
                        delivery.status,
                        delivery.attempts,
                        delivery.next_attempt_at.timestamp(),
                        delivery.last_error,
                        None if ref is None else ref.system,
                        None if ref is None else ref.id,
                        None if ref is None else ref.url,
                        delivery.ticket_id,
                    ),
                )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot save delivery of {delivery.ticket_id}: {exc}") from exc

    def delivery(self, ticket_id: str) -> Delivery | None:
        """The delivery of this ticket, if one was enqueued."""
        try:
            with self._lock:
                row = self._conn.execute(
                    f"SELECT {_DELIVERY_COLUMNS} FROM outbox WHERE ticket_id = ?", (ticket_id,)
                ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read delivery of {ticket_id}: {exc}") from exc
        return None if row is None else _row_to_delivery(row)

    def deliveries(self, status: str | None = None, limit: int = 100) -> list[Delivery]:
        """Deliveries, optionally of one status, in the order they were enqueued."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        where, params = ("", []) if status is None else (" WHERE status = ?", [status])
        try:
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT {_DELIVERY_COLUMNS} FROM outbox{where} ORDER BY rowid LIMIT ?",
                    [*params, limit],
                ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot list deliveries: {exc}") from exc
        return [_row_to_delivery(row) for row in rows]

    def count_by_status(self) -> dict[str, int]:
        """How many deliveries have each status (0 for none): one GROUP BY over the index
        ``outbox_due``, whose leading column is the status, so no row of the table is read."""
        try:
            with self._lock:
                rows = self._conn.execute(
                    "SELECT status, COUNT(*) FROM outbox GROUP BY status"
                ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot count deliveries: {exc}") from exc
        return {**dict.fromkeys(DELIVERY_STATUSES, 0), **dict(rows)}

    def purge(self, status: str) -> int:
        """Forget every delivery of this status (the tickets stay); return how many."""
        if status not in ("delivered", "dead"):
            raise ValueError(f"only delivered or dead deliveries can be purged, not {status!r}")
        try:
            with self._lock:
                cursor = self._conn.execute("DELETE FROM outbox WHERE status = ?", (status,))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot purge deliveries: {exc}") from exc
        return cursor.rowcount

    def get(self, ticket_id: str) -> StoredTicket:
        """The ticket with this id, or `core.errors.TicketNotFound`."""
        try:
            with self._lock:
                row = self._conn.execute(
                    f"SELECT {_COLUMNS} FROM tickets WHERE id = ?", (ticket_id,)
                ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read ticket {ticket_id}: {exc}") from exc
        if row is None:
            raise TicketNotFound(ticket_id)
        return _row_to_ticket(row)

    def list(self, query: TicketQuery) -> TicketPage:
        """Tickets matching the query's filters with the total that matched: newest first, or
        by predicted priority (in ``query.priority_order``) then oldest first."""
        if query.limit < 0 or query.offset < 0:
            # SQLite reads a negative LIMIT as "no limit", which would silently dump the table.
            raise ValueError(f"limit and offset must be >= 0, got {query.limit}, {query.offset}")
        clauses: list[str] = []
        params: list[Any] = []
        if query.priority is not None:
            clauses.append("t.priority = ?")
            params.append(query.priority)
        if query.needs_review is not None:
            clauses.append("t.needs_review = ?")
            params.append(int(query.needs_review))
        if query.band is not None:
            clauses.append("json_extract(t.enrichment, '$.priority.band') = ?")
            params.append(query.band)
        if query.language is not None:
            clauses.append("json_extract(t.enrichment, '$.language.code') = ?")
            params.append(query.language)
        if query.delivery_status is not None:
            # "none": delivery is off, or this ticket was stored before it was turned on.
            if query.delivery_status == "none":
                clauses.append("o.status IS NULL")
            else:
                clauses.append("o.status = ?")
                params.append(query.delivery_status)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        source = " FROM tickets AS t LEFT JOIN outbox AS o ON o.ticket_id = t.id"
        order_params: list[Any] = []
        if query.priority_order:
            ranks = " ".join("WHEN ? THEN ?" for _ in query.priority_order)
            for rank, label in enumerate(query.priority_order):
                order_params += [label, rank]
            order = (
                f" ORDER BY CASE t.priority {ranks} ELSE {len(query.priority_order)} END,"
                " t.received_at, t.rowid"
            )
        else:
            order = " ORDER BY t.received_at DESC, t.rowid DESC"
        columns = ", ".join(f"t.{name}" for name in _COLUMNS.split(", "))
        try:
            with self._lock:
                # One read transaction, so the total and the page see the same snapshot even
                # while another process writes.
                self._conn.execute("BEGIN")
                try:
                    (total,) = self._conn.execute(
                        f"SELECT COUNT(*){source}{where}", params
                    ).fetchone()
                    rows = self._conn.execute(
                        f"SELECT {columns}{source}{where}{order} LIMIT ? OFFSET ?",
                        [*params, *order_params, query.limit, query.offset],
                    ).fetchall()
                finally:
                    self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot list tickets: {exc}") from exc
        return TicketPage(items=[_row_to_ticket(row) for row in rows], total=total)

    def replace_enrichment(self, ticket_id: str, enrichment: dict[str, Any]) -> StoredTicket:
        """Replace a stored ticket's enrichment (after re-enriching it with another model)."""
        enrichment_json = _strict_json(enrichment)
        priority = enrichment.get("priority", {}).get("label")
        needs_review = bool(enrichment.get("needs_review", False))
        try:
            with self._lock, self._transaction():
                cursor = self._conn.execute(
                    "UPDATE tickets SET enrichment = ?, priority = ?, needs_review = ?"
                    " WHERE id = ?",
                    (enrichment_json, priority, int(needs_review), ticket_id),
                )
                if cursor.rowcount == 0:
                    raise TicketNotFound(ticket_id)
                row = self._conn.execute(
                    f"SELECT {_COLUMNS} FROM tickets WHERE id = ?", (ticket_id,)
                ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot update ticket {ticket_id}: {exc}") from exc
        return _row_to_ticket(row)

    def add_correction(self, correction: Correction) -> Correction:
        """Record an agent's correction; raises `core.errors.TicketNotFound` for an unknown
        ticket. A later correction of the same ticket and target supersedes this one."""
        self._insert_correction(
            correction, f"INSERT INTO feedback ({_FEEDBACK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        return correction

    def add_correction_once(self, correction: Correction) -> bool:
        """Record the correction unless its ticket already has one for its target (checked and
        written in one transaction, so an agent's correction stored meanwhile is never
        superseded); return whether it was recorded. Raises `core.errors.TicketNotFound` for an
        unknown ticket."""
        return self._insert_correction(
            correction,
            f"INSERT INTO feedback ({_FEEDBACK_COLUMNS})"
            " SELECT ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS"
            " (SELECT 1 FROM feedback WHERE ticket_id = ? AND target = ?)",
            (correction.ticket_id, correction.target),
        )

    def _insert_correction(
        self, correction: Correction, insert: str, extra: tuple[str, ...] = ()
    ) -> bool:
        """Run ``insert`` with the correction's row (then ``extra``) in one transaction with
        the check that its ticket exists; return whether a row was written."""
        try:
            with self._lock, self._transaction():
                exists = self._conn.execute(
                    "SELECT 1 FROM tickets WHERE id = ?", (correction.ticket_id,)
                ).fetchone()
                if exists is None:
                    raise TicketNotFound(correction.ticket_id)
                cursor = self._conn.execute(insert, (*_correction_row(correction), *extra))
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot store the correction of {correction.ticket_id}: {exc}"
            ) from exc
        return cursor.rowcount == 1

    def corrections(self, ticket_id: str | None = None, limit: int = 100) -> _Corrections:
        """The latest correction per ticket and target, newest first; of one ticket if given."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        where, params = ("", []) if ticket_id is None else (" AND ticket_id = ?", [ticket_id])
        try:
            with self._lock:
                rows = self._conn.execute(
                    f"{_LATEST_FEEDBACK}{where} ORDER BY seq DESC LIMIT ?", [*params, limit]
                ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot list corrections: {exc}") from exc
        return [_row_to_correction(row) for row in rows]

    def agreement(self, target: str, window: int) -> Agreement:
        """How many of the last ``window`` tickets corrected on ``target`` kept the model's
        label (each ticket counted once, by its latest correction)."""
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        try:
            with self._lock:
                tickets, agreed = self._conn.execute(
                    "SELECT COUNT(*), COALESCE(SUM(label IS predicted), 0) FROM"
                    f" ({_LATEST_FEEDBACK} AND target = ? ORDER BY seq DESC LIMIT ?)",
                    (target, window),
                ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot compute agreement: {exc}") from exc
        return Agreement(target=target, window=window, tickets=tickets, agreed=agreed)

    def changes_since(self, seq: int, limit: int = 100) -> _Changes:
        """Changes to stored tickets after ``seq``, oldest first."""
        try:
            with self._lock:
                rows = self._conn.execute(
                    "SELECT seq, ticket_id, kind FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
                    (seq, limit),
                ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read changes: {exc}") from exc
        return [TicketChange(seq=row[0], ticket_id=row[1], kind=row[2]) for row in rows]

    def last_change(self) -> int:
        """The ``seq`` of the latest change, 0 when there is none."""
        try:
            with self._lock:
                (seq,) = self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read changes: {exc}") from exc
        return int(seq)

    def save_status_digest(self, ticket_id: str, digest: str) -> None:
        """Remember the digest of the ticket's customer status token (replacing any)."""
        try:
            with self._lock:
                self._conn.execute(
                    "INSERT INTO status_links (ticket_id, digest) VALUES (?, ?)"
                    " ON CONFLICT (ticket_id) DO UPDATE SET digest = excluded.digest",
                    (ticket_id, digest),
                )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot save the status link of {ticket_id}: {exc}") from exc

    def status_digest(self, ticket_id: str) -> str | None:
        """The digest saved for this ticket's status token, if any."""
        try:
            with self._lock:
                row = self._conn.execute(
                    "SELECT digest FROM status_links WHERE ticket_id = ?", (ticket_id,)
                ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the status link of {ticket_id}: {exc}") from exc
        return None if row is None else str(row[0])

    # --- what the worker processes share: sessions and rate limits --------------------------

    def add_session(self, nonce: str, agent: str, expires: int, now: float, keep: int) -> None:
        """Keep a new session (`adapters.local.auth.SessionStore`); forget the expired ones
        and, past ``keep`` sessions, the oldest."""
        try:
            with self._lock, self._transaction():
                self._conn.execute("DELETE FROM sessions WHERE expires < ?", (now,))
                (count,) = self._conn.execute("SELECT COUNT(*) FROM sessions").fetchone()
                if count >= keep:
                    self._conn.execute(
                        "DELETE FROM sessions WHERE rowid IN"
                        " (SELECT rowid FROM sessions ORDER BY rowid LIMIT ?)",
                        (count - keep + 1,),
                    )
                self._conn.execute(
                    "INSERT INTO sessions (nonce, agent, expires) VALUES (?, ?, ?)",
                    (nonce, agent, expires),
                )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot keep the session: {exc}") from exc

    def session_of(self, nonce: str) -> tuple[str, int] | None:
        """The agent and expiry of the live session with this nonce, if there is one."""
        try:
            with self._lock:
                row = self._conn.execute(
                    "SELECT agent, expires FROM sessions WHERE nonce = ?", (nonce,)
                ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the session: {exc}") from exc
        return None if row is None else (str(row[0]), int(row[1]))

    def end_session(self, nonce: str) -> None:
        """Forget one session."""
        try:
            with self._lock:
                self._conn.execute("DELETE FROM sessions WHERE nonce = ?", (nonce,))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot end the session: {exc}") from exc

    def end_agent_sessions(self, agent: str) -> int:
        """Forget every session of one agent; how many there were."""
        try:
            with self._lock:
                cursor = self._conn.execute("DELETE FROM sessions WHERE agent = ?", (agent,))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot end the sessions of {agent}: {exc}") from exc
        return cursor.rowcount

    def end_sessions(self) -> int:
        """Forget every session (the service starting signs everybody out); how many."""
        try:
            with self._lock:
                cursor = self._conn.execute("DELETE FROM sessions")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot end the sessions: {exc}") from exc
        return cursor.rowcount

    def take_token(
        self,
        scope: str,
        client: str,
        now: float,
        burst: float,
        rate_per_s: float,
        max_clients: int,
    ) -> float:
        """Take a token from ``client``'s bucket in ``scope`` (`adapters.local.ratelimit.
        TokenBuckets`), in one transaction, so that every worker process counts against the
        same bucket: 0.0 when it had one, else the seconds until it will."""
        # A bucket not updated for this long has refilled: it is the same as none.
        full_after = burst / rate_per_s
        try:
            with self._lock, self._transaction():
                self._conn.execute(
                    "INSERT INTO rate_limits (scope, clients, refused, evicted)"
                    " VALUES (?, 0, 0, 0) ON CONFLICT (scope) DO NOTHING",
                    (scope,),
                )
                forgotten = self._conn.execute(
                    "DELETE FROM rate_buckets WHERE scope = ? AND updated <= ?",
                    (scope, now - full_after),
                ).rowcount
                row = self._conn.execute(
                    "SELECT tokens, updated FROM rate_buckets WHERE scope = ? AND client = ?",
                    (scope, client),
                ).fetchone()
                added = evicted = 0
                if row is None:
                    tokens = burst
                    added = 1
                else:
                    tokens = min(burst, row[0] + max(0.0, now - row[1]) * rate_per_s)
                wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / rate_per_s
                self._conn.execute(
                    "INSERT INTO rate_buckets (scope, client, tokens, updated) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (scope, client) DO UPDATE"
                    " SET tokens = excluded.tokens, updated = excluded.updated",
                    (scope, client, tokens - 1.0 if wait == 0.0 else tokens, now),
                )
                (clients,) = self._conn.execute(
                    "SELECT clients FROM rate_limits WHERE scope = ?", (scope,)
                ).fetchone()
                clients += added - forgotten
                if clients > max_clients:
                    evicted = self._conn.execute(
                        "DELETE FROM rate_buckets WHERE rowid IN (SELECT rowid FROM rate_buckets"
                        " WHERE scope = ? ORDER BY updated LIMIT ?)",
                        (scope, clients - max_clients),
                    ).rowcount
                    clients -= evicted
                self._conn.execute(
                    "UPDATE rate_limits SET clients = ?, refused = refused + ?,"
                    " evicted = evicted + ? WHERE scope = ?",
                    (clients, int(wait > 0.0), evicted, scope),
                )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot take a rate-limit token: {exc}") from exc
        return wait

    def rate_limit_counts(self, scope: str) -> tuple[int, int, int]:
        """The buckets held, the refusals and the evictions of one rate limit."""
        try:
            with self._lock:
                row = self._conn.execute(
                    "SELECT clients, refused, evicted FROM rate_limits WHERE scope = ?", (scope,)
                ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the rate-limit counts: {exc}") from exc
        return (0, 0, 0) if row is None else (int(row[0]), int(row[1]), int(row[2]))

    def forget_rate_limits(self) -> None:
        """Forget every rate-limit bucket and count (the service starting begins afresh: the
        monotonic clock they were kept on starts again with the machine)."""
        try:
            with self._lock, self._transaction():
                self._conn.execute("DELETE FROM rate_buckets")
                self._conn.execute("DELETE FROM rate_limits")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot forget the rate limits: {exc}") from exc

    @property
    def checkpoints(self) -> dict[str, Any]:
        """The background checkpoints so far: how many ran and restarted the log, and the last
        one's ``(busy, pages in the log, pages checkpointed)``."""
        c = self._checkpointer
        if c is None:
            return {"runs": 0, "restarts": 0, "last": None}
        return {"runs": c.count, "restarts": c.restarts, "last": c.last}

    def close(self) -> None:
        """Close the connection; later calls raise `core.errors.StoreError`."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        with self._lock:
            self._conn.close()
            if self._writer_lock is not None:
                os.close(self._writer_lock)
                self._writer_lock = None

    def __enter__(self) -> SQLiteTicketStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _correction_row(correction: Correction) -> tuple[Any, ...]:
    """A correction's values in `_FEEDBACK_COLUMNS` order."""
    return (
        correction.ticket_id,
        correction.target,
        correction.label,
        correction.predicted,
        correction.agent,
        correction.model_version,
        correction.corrected_at,
    )

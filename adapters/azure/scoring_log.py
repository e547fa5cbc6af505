"""Scoring logs: each request's redacted tickets and predictions, appended to Blob Storage.

Layout, one JSON line per enriched ticket, one append blob per hour and per serving process::

    <container>/<prefix>/date=YYYY-MM-DD/hour=HH/<host>-<pid>.jsonl

so that a retraining job reads whole hours (or days) with one prefix listing, and no two
processes append to the same blob. Lines are written by a background thread: the request never
waits for storage, and a write that fails (or a request dropped because the queue is full) is
counted and logged, never raised.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import queue
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

_log = logging.getLogger(__name__)

# An append block may hold 4 MiB; lines are packed into blocks no larger than that.
_MAX_BLOCK_BYTES = 4 * 1024 * 1024
_STOP = object()
_EXIT_FLUSH_S = 5.0


class ScoringLog(Protocol):
    """Where scored requests go for retraining; `record` never raises and never blocks."""

    def record(self, request_id: str, lines: Sequence[dict[str, Any]]) -> None:
        """Queue one request's log lines."""
        ...

    def flush(self, timeout_s: float) -> bool:
        """Wait until everything queued so far is written or has failed; False on timeout."""
        ...

    def close(self, timeout_s: float = 5.0) -> None:
        """Write what is queued and stop."""
        ...


@dataclass
class ScoringLogStats:
    """What the scoring log did: tickets written, failed to write, dropped (queue full)."""

    written: int = 0
    failed: int = 0
    dropped: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, outcome: str, count: int) -> dict[str, int]:
        """Count ``count`` tickets as written, failed or dropped; return the counters."""
        with self._lock:
            setattr(self, outcome, getattr(self, outcome) + count)
            return self.as_dict()

    def as_dict(self) -> dict[str, int]:
        """The counters as JSON."""
        return {"written": self.written, "failed": self.failed, "dropped": self.dropped}


class NullScoringLog:
    """The scoring log when none is configured: keeps nothing."""

    def __init__(self) -> None:
        self.stats = ScoringLogStats()

    def record(self, request_id: str, lines: Sequence[dict[str, Any]]) -> None:
        """Keep nothing."""

    def flush(self, timeout_s: float) -> bool:
        """Nothing to wait for."""
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        """Nothing to stop."""


def blob_name(prefix: str, at: datetime, instance: str) -> str:
    """The append blob that receives lines logged at ``at`` by ``instance``."""
    at = at.astimezone(UTC)
    return f"{prefix.strip('/')}/date={at:%Y-%m-%d}/hour={at:%H}/{instance}.jsonl"


def default_instance() -> str:
    """This process's name in blob names: host and pid (every worker appends to its own)."""
    return f"{socket.gethostname()}-{os.getpid()}"


def _blocks(lines: Sequence[bytes]) -> list[bytes]:
    blocks: list[bytes] = []
    current = bytearray()
    for line in lines:
        if current and len(current) + len(line) > _MAX_BLOCK_BYTES:
            blocks.append(bytes(current))
            current = bytearray()
        current += line
    if current:
        blocks.append(bytes(current))
    return blocks


class BlobScoringLog:
    """A `ScoringLog` that appends JSON lines to hourly append blobs in one container."""

    def __init__(
        self,
        container: ContainerClient,
        *,
        prefix: str = "enrichments",
        instance: str | None = None,
        queue_max: int = 1000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._container = container
        self._prefix = prefix
        self._instance = instance or default_instance()
        self._clock = clock
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_max)
        self._created: set[str] = set()
        self._container_ready = False
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.stats = ScoringLogStats()

    def record(self, request_id: str, lines: Sequence[dict[str, Any]]) -> None:
        """Queue the lines of one request; when the queue is full they are dropped and counted."""
        if not lines:
            return
        self._ensure_thread()
        try:
            self._queue.put_nowait((request_id, self._clock(), list(lines)))
        except queue.Full:
            counters = self.stats.add("dropped", len(lines))
            _log.warning(
                "scoring log queue full: request not logged",
                extra={"request_id": request_id, "scoring_log": counters},
            )

    def flush(self, timeout_s: float) -> bool:
        """Wait until every request queued so far is written or counted as failed."""
        if self._thread is None:
            return True
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout_s)
        except queue.Full:
            return False
        return done.wait(timeout_s)

    def close(self, timeout_s: float = 5.0) -> None:
        """Write what is queued, then stop the writer thread."""
        if self._thread is None:
            return
        try:
            self._queue.put(_STOP, timeout=timeout_s)
        except queue.Full:
            return
        self._thread.join(timeout_s)
        self._thread = None

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="scoring-log", daemon=True)
                thread.start()
                self._thread = thread
                # A worker stopped by the server (scale-in, redeploy) writes what it queued.
                atexit.register(self.close, _EXIT_FLUSH_S)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            request_id, at, lines = item
            try:
                self._write(at, lines)
            except Exception as exc:
                # Storage being down must not cost a single enrichment: count it and go on.
                counters = self.stats.add("failed", len(lines))
                _log.warning(
                    "scoring log write failed",
                    extra={
                        "request_id": request_id,
                        "error": f"{type(exc).__name__}: {exc}"[:500],
                        "scoring_log": counters,
                    },
                )
            else:
                self.stats.add("written", len(lines))

    def _write(self, at: datetime, lines: list[dict[str, Any]]) -> None:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError

        if not self._container_ready:
            with contextlib.suppress(ResourceExistsError):
                self._container.create_container()
            self._container_ready = True
        name = blob_name(self._prefix, at, self._instance)
        blob = self._container.get_blob_client(name)
        if name not in self._created:
            # Exists already when this process restarted within the hour with the same pid.
            with contextlib.suppress(ResourceExistsError):
                blob.create_append_blob(match_condition=MatchConditions.IfMissing)
            self._created = {name}
        encoded = [
            (json.dumps(line, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
            for line in lines
        ]
        for block in _blocks(encoded):
            blob.append_block(block)

"""Delivery to a real webhook receiver on 127.0.0.1: throughput of the outbox through
`deliver_due` and the real `WebhookClient`, and how fast a backlog drains once the receiver is
back after an outage.

The receiver is a `ThreadingHTTPServer` in a thread of this process (HTTP/1.1, so the client's
connection pool is used as against a real helpdesk): it checks every signature, creates one
ticket per Idempotency-Key and answers a repeated key with the ticket it created first.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from adapters.helpdesk.webhook import (
    SIGNATURE_HEADER,
    SYSTEM,
    TIMESTAMP_HEADER,
    WebhookClient,
    verify_signature,
)
from adapters.local.sqlite_store import SQLiteTicketStore
from bench.context import Context, log, percentiles
from bench.markdown import fmt, table
from core.delivery import RetryPolicy, deliver_due, idempotency_key
from core.ports import Delivery, HelpdeskRef, Outbox, StoredTicket
from core.settings import Settings

SECRET = "bench-secret-not-for-production"
THROUGHPUT_TICKETS = 2_000
THROUGHPUT_RUNS = 3  # each in a fresh store; the median run (by deliveries/s) is reported
BACKLOG_TICKETS = 10_000
# The service's default batch size (`delivery_batch_size`): deliveries claimed per pass.
BATCH_SIZE: int = Settings.model_fields["delivery_batch_size"].default
# Small delays so that recovery measures the outbox and the wire, not the wait; attempts high
# enough that nothing dies during the benchmark.
BENCH_POLICY = RetryPolicy(base_s=0.05, cap_s=1.0, max_attempts=1000, lease_s=60.0)
PRODUCTION_POLICY = RetryPolicy()
POLL_INTERVAL_S = 0.01  # sleep after a pass that claimed nothing while deliveries remain
CLIENT_TIMEOUT_S = 5.0
DEADLINE_S = 300.0


@dataclass
class Receiver:
    """A webhook receiver that verifies signatures and creates one ticket per idempotency key."""

    port: int
    created: dict[str, str] = field(default_factory=dict)  # key → the receiver's ticket id
    created_for: dict[str, int] = field(default_factory=dict)  # ticket id → tickets created
    requests: int = 0
    repeats: int = 0  # requests for a key already created: answered, not created again
    bad_signatures: int = 0
    mismatched_keys: int = 0  # Idempotency-Key not the one of the ticket in the body
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without TCP_NODELAY the body waits for the
            # client's delayed ACK (~40 ms on Linux), as no real HTTP server lets it.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                key = self.headers.get("Idempotency-Key", "")
                signed = verify_signature(
                    SECRET,
                    self.headers.get(TIMESTAMP_HEADER, ""),
                    body,
                    self.headers.get(SIGNATURE_HEADER, ""),
                    tolerance_s=60,
                )
                with receiver.lock:
                    receiver.requests += 1
                    if not signed:
                        receiver.bad_signatures += 1
                        self._reply(401, {"error": "bad signature"})
                        return
                    ticket_id = str(json.loads(body)["id"])
                    if key != idempotency_key(ticket_id):
                        receiver.mismatched_keys += 1
                    found = receiver.created.get(key)
                    if found is None:
                        found = f"R{len(receiver.created) + 1}"
                        receiver.created[key] = found
                        receiver.created_for[ticket_id] = receiver.created_for.get(ticket_id, 0) + 1
                        status = 201
                    else:
                        receiver.repeats += 1
                        status = 200
                self._reply(status, {"id": found, "url": f"http://helpdesk.test/t/{found}"})

            def _reply(self, status: int, reply: dict[str, str]) -> None:
                payload = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.thread is not None:
            self.thread.join(10.0)


class TimedClient:
    """The webhook client, timing each `create_ticket` (signing plus the HTTP round trip)."""

    name = SYSTEM

    def __init__(self, inner: WebhookClient) -> None:
        self.inner = inner
        self.started: dict[str, float] = {}
        self.send_s: list[float] = []

    def create_ticket(self, ticket: StoredTicket, key: str) -> HelpdeskRef:
        start = time.perf_counter()
        self.started[ticket.id] = start
        try:
            return self.inner.create_ticket(ticket, key)
        finally:
            self.send_s.append(time.perf_counter() - start)

    def close(self) -> None:
        self.inner.close()


class TimedOutbox:
    """The SQLite outbox, timing each delivery from the start of its send to its saved outcome."""

    def __init__(self, inner: SQLiteTicketStore, client: TimedClient) -> None:
        self.inner = inner
        self.client = client
        self.delivery_s: list[float] = []

    def add_with_delivery(self, ticket: StoredTicket, now: datetime) -> tuple[StoredTicket, bool]:
        return self.inner.add_with_delivery(ticket, now)

    def claim_due(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[tuple[Delivery, StoredTicket]]:
        return self.inner.claim_due(now, lease_until, limit)

    def save(self, delivery: Delivery) -> None:
        self.inner.save(delivery)
        started = self.client.started.pop(delivery.ticket_id, None)
        if started is not None:
            self.delivery_s.append(time.perf_counter() - started)

    def delivery(self, ticket_id: str) -> Delivery | None:
        return self.inner.delivery(ticket_id)

    def deliveries(self, status: str | None = None, limit: int = 100) -> list[Delivery]:
        return self.inner.deliveries(status, limit)

    def purge(self, status: str) -> int:
        return self.inner.purge(status)

    def count_by_status(self) -> dict[str, int]:
        return self.inner.count_by_status()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _enrichment(n: int) -> dict[str, Any]:
    """An enrichment shaped like the service's (README example), varied a little per ticket."""
    label = ("low", "normal", "urgent")[n % 3]
    return {
        "priority": {
            "label": label,
            "confidence": 0.77,
            "band": "medium",
            "needs_review": True,
            "probabilities": {"low": 0.16, "normal": 0.77, "urgent": 0.07},
        },
        "categories": {"resolution": {"label": "Fixed", "confidence": 0.41, "band": "low"}},
        "resolution_time": {
            "hours": 251.3,
            "interval_50": [84.7, 857.2],
            "interval_90": [3.4, 10237.7],
        },
        "similar": [
            {
                "id": f"1343556{k}",
                "subject": "NameNode Access Time Precision",
                "score": 0.18,
                "priority": "normal",
                "resolution": "Invalid",
                "created": "2022-03-24",
            }
            for k in range(5)
        ],
        "possible_duplicate": False,
        "sentiment": {"score": -0.31, "band": "negative"},
        "language": {"code": "en", "confidence": 0.93},
        "explanation": [{"term": "upgrade", "weight": 0.19}, {"term": "namenode", "weight": 0.04}],
        "tags": ["namenode", "upgrade", "datanodes", "unusable"],
        "redactions": [],
        "needs_review": True,
        "model": {"name": "ticket-priority", "version": "20261123.110054-a04ac623"},
        "enriched_at": "2026-11-23T12:00:00.000+00:00",
    }


def _enqueue(store: SQLiteTicketStore, prefix: str, count: int) -> tuple[list[str], float, int]:
    """Store ``count`` tickets, each with its pending delivery; return the ids, the seconds it
    took and the size of one delivered body."""
    ids: list[str] = []
    body_bytes = 0
    start = time.perf_counter()
    for n in range(count):
        now = datetime.now(UTC)
        record = StoredTicket(
            id=f"{prefix}-{n:05d}",
            external_id=f"BENCH-{prefix}-{n}",
            received_at=now.isoformat(timespec="milliseconds"),
            ticket={
                "subject": f"NameNode will not start after upgrade on node {n}",
                "description": "Since the rolling upgrade this morning the NameNode exits during "
                "startup with an InconsistentFSStateException; all DataNodes are unusable and "
                "every job fails. We are blocked.",
                "requester": {"email": "ann@example.com", "name": "Ann"},
                "custom_fields": {},
                "external_id": f"BENCH-{prefix}-{n}",
            },
            enrichment=_enrichment(n),
        )
        _, created = store.add_with_delivery(record, now)
        if not created:
            raise RuntimeError(f"ticket {record.id} was already stored")
        ids.append(record.id)
        if n == 0:
            body_bytes = len(json.dumps(record.as_dict(), separators=(",", ":")).encode())
    return ids, time.perf_counter() - start, body_bytes


def _status_counts(db_path: Path) -> dict[str, int]:
    """Deliveries by status, read on a connection of its own (the store's is not disturbed)."""
    conn = sqlite3.connect(db_path, timeout=10.0)
    try:
        rows = conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall()
    finally:
        conn.close()
    counts = {"pending": 0, "retrying": 0, "delivered": 0, "dead": 0}
    counts.update({str(status): int(n) for status, n in rows})
    return counts


def _outstanding(db_path: Path) -> int:
    counts = _status_counts(db_path)
    return counts["pending"] + counts["retrying"]


def _drain(outbox: Outbox, client: TimedClient, db_path: Path) -> int:
    """Run `deliver_due` passes until no delivery is pending or retrying; return the passes."""
    deadline = time.monotonic() + DEADLINE_S
    passes = 0
    while True:
        if time.monotonic() > deadline:
            raise RuntimeError(f"deliveries still outstanding after {DEADLINE_S:.0f} s")
        report = deliver_due(outbox, client, policy=BENCH_POLICY, limit=BATCH_SIZE)
        passes += 1
        if report.claimed == 0:
            if _outstanding(db_path) == 0:
                return passes
            time.sleep(POLL_INTERVAL_S)


def _check_delivered(
    store: SQLiteTicketStore, receiver: Receiver, ids: list[str]
) -> dict[str, object]:
    """What the receiver created against the tickets enqueued, and the outbox's last word."""
    expected = {idempotency_key(ticket_id) for ticket_id in ids}
    deliveries = store.deliveries(limit=len(ids) + 1)
    refs_match = all(
        d.ref is not None and d.ref.id == receiver.created.get(idempotency_key(d.ticket_id))
        for d in deliveries
    )
    return {
        "enqueued": len(ids),
        "requests_received": receiver.requests,
        "distinct_keys": len(receiver.created),
        "keys_match_enqueued": set(receiver.created) == expected,
        # Tickets the receiver created beyond the first for one ticket id (a key that changed
        # between attempts would create one); a repeated key is answered with the first ticket.
        "duplicates_created": sum(n - 1 for n in receiver.created_for.values()),
        "tickets_created": sum(receiver.created_for.values()),
        "repeat_requests": receiver.repeats,
        "bad_signatures": receiver.bad_signatures,
        "mismatched_keys": receiver.mismatched_keys,
        "outbox": _status_counts(store.path),
        "outbox_refs_match_receiver": refs_match,
        "max_attempts_seen": max((d.attempts for d in deliveries), default=0),
    }


def _exactly_once(check: dict[str, object]) -> bool:
    outbox = check["outbox"]
    assert isinstance(outbox, dict)
    return (
        check["distinct_keys"] == check["enqueued"]
        and check["duplicates_created"] == 0
        and check["keys_match_enqueued"] is True
        and check["bad_signatures"] == 0
        and check["mismatched_keys"] == 0
        and outbox["delivered"] == check["enqueued"]
        and outbox["dead"] == 0
        and check["outbox_refs_match_receiver"] is True
    )


def _throughput(workdir: Path, count: int, run: int) -> dict[str, Any]:
    db_path = workdir / f"throughput-{run}.sqlite3"
    receiver = Receiver(port=0)
    receiver.start()
    client = TimedClient(WebhookClient(receiver.url, SECRET, timeout=CLIENT_TIMEOUT_S))
    try:
        with SQLiteTicketStore(db_path) as store:
            ids, enqueue_s, body_bytes = _enqueue(store, f"tp{run}", count)
            outbox = TimedOutbox(store, client)
            log(f"delivering {count} tickets to {receiver.url}")
            start = time.perf_counter()
            passes = _drain(outbox, client, db_path)
            wall = time.perf_counter() - start
            check = _check_delivered(store, receiver, ids)
    finally:
        client.close()
        receiver.stop()
    return {
        "tickets": count,
        "body_bytes": body_bytes,
        "enqueue_s": enqueue_s,
        "enqueue_per_s": count / enqueue_s,
        "wall_s": wall,
        "deliveries_per_s": count / wall,
        "passes": passes,
        "per_delivery": percentiles(outbox.delivery_s),
        "per_send": percentiles(client.send_s),
        "check": check,
        "exactly_once": _exactly_once(check),
    }


def _backlog(workdir: Path, count: int) -> dict[str, object]:
    db_path = workdir / "backlog.sqlite3"
    receiver = Receiver(port=_free_port())  # nothing listens there until `start`
    client = TimedClient(WebhookClient(receiver.url, SECRET, timeout=CLIENT_TIMEOUT_S))
    try:
        with SQLiteTicketStore(db_path) as store:
            ids, enqueue_s, _ = _enqueue(store, "bl", count)
            log(f"{count} tickets enqueued; one delivery pass with the receiver down")
            start = time.perf_counter()
            failed = deliver_due(store, client, policy=BENCH_POLICY, limit=count)
            failing_pass_s = time.perf_counter() - start
            after_failure = _status_counts(db_path)
            if len(failed.retrying) != count or after_failure["retrying"] != count:
                raise RuntimeError(f"the failing pass did not leave {count} retrying: {failed}")
            if receiver.requests:
                raise RuntimeError("the receiver answered while it was meant to be down")
            outbox = TimedOutbox(store, client)
            client.send_s.clear()
            receiver.start()
            back = time.perf_counter()
            log("receiver up; draining the backlog")
            passes = _drain(outbox, client, db_path)
            recovery_s = time.perf_counter() - back
            check = _check_delivered(store, receiver, ids)
    finally:
        client.close()
        receiver.stop()
    return {
        "tickets": count,
        "enqueue_s": enqueue_s,
        "failing_pass_s": failing_pass_s,
        "after_failing_pass": after_failure,
        "recovery_s": recovery_s,
        "deliveries_per_s_during_recovery": count / recovery_s,
        "passes": passes,
        "per_delivery": percentiles(outbox.delivery_s),
        "check": check,
        "exactly_once": _exactly_once(check),
    }


def _policy(policy: RetryPolicy) -> dict[str, object]:
    ceilings = [
        min(policy.cap_s, policy.base_s * 2.0 ** (n - 1)) for n in range(1, policy.max_attempts)
    ]
    return {
        "base_s": policy.base_s,
        "cap_s": policy.cap_s,
        "max_attempts": policy.max_attempts,
        "lease_s": policy.lease_s,
        # After n failed attempts the next waits uniform(0, ceiling[n-1]) s.
        "wait_ceiling_after_failures_s": ceilings,
        # Longest time from the first failure to the last attempt before the delivery is dead.
        "longest_outage_before_dead_s": sum(ceilings),
    }


def run(
    workdir: Path | None = None,
    *,
    tickets: int = THROUGHPUT_TICKETS,
    runs: int = THROUGHPUT_RUNS,
    backlog: int = BACKLOG_TICKETS,
) -> dict[str, object]:
    """Both measurements, in ``workdir`` (a temporary directory when None)."""
    with tempfile.TemporaryDirectory(prefix="bench-delivery-", dir=workdir) as tmp:
        measured = [_throughput(Path(tmp), tickets, n) for n in range(runs)]
        ranked = sorted(measured, key=lambda r: float(r["deliveries_per_s"]))
        throughput = {
            **ranked[len(ranked) // 2],
            "runs": runs,
            "deliveries_per_s_each_run": [r["deliveries_per_s"] for r in measured],
            "all_exactly_once": all(r["exactly_once"] for r in measured),
        }
        recovery = _backlog(Path(tmp), backlog)
    return {
        "batch_size": BATCH_SIZE,
        "poll_interval_s": POLL_INTERVAL_S,
        "client_timeout_s": CLIENT_TIMEOUT_S,
        "policy": _policy(BENCH_POLICY),
        "production_policy": _policy(PRODUCTION_POLICY),
        "throughput": throughput,
        "backlog": recovery,
    }


def bench_delivery(ctx: Context) -> dict[str, Any]:
    """The runner's entry point; no model is needed."""
    return run(ctx.workdir)


def _ceiling_after(policy: dict[str, Any], failures: int) -> float:
    ceilings: list[float] = policy["wait_ceiling_after_failures_s"]
    return ceilings[min(failures, len(ceilings)) - 1]


def render_delivery(result: dict[str, Any]) -> list[str]:
    """Markdown for `bench_delivery`."""
    t, b = result["throughput"], result["backlog"]
    p, prod = result["policy"], result["production_policy"]
    tc, bc = t["check"], b["check"]
    per, send = t["per_delivery"], t["per_send"]
    return [
        "## Delivery to a webhook",
        "",
        *table(
            ["measure", "value"],
            [
                [
                    f"throughput, {t['tickets']} tickets: deliveries/s "
                    f"(median of {t['runs']} runs)",
                    f"{t['deliveries_per_s']:.0f} ({t['wall_s']:.2f} s, {t['passes']} passes; "
                    f"runs {', '.join(f'{r:.0f}' for r in t['deliveries_per_s_each_run'])})",
                ],
                [
                    "per delivery, send to saved outcome: p50 / p99 ms",
                    f"{fmt(per['p50_ms'], 2)} / {fmt(per['p99_ms'], 2)}",
                ],
                [
                    "per send, signed POST round trip: p50 / p99 ms",
                    f"{fmt(send['p50_ms'], 2)} / {fmt(send['p99_ms'], 2)}",
                ],
                [
                    "throughput runs exactly once (median run: distinct keys / duplicates)",
                    f"{fmt(t['all_exactly_once'])} ({tc['distinct_keys']} / "
                    f"{tc['duplicates_created']})",
                ],
                [
                    f"backlog of {b['tickets']}: the failing pass with the receiver down",
                    f"{b['failing_pass_s']:.2f} s, {b['after_failing_pass']['retrying']} retrying",
                ],
                [
                    "backlog recovery: receiver back → nothing pending or retrying",
                    f"{b['recovery_s']:.2f} s ({b['deliveries_per_s_during_recovery']:.0f} "
                    f"deliveries/s, {b['passes']} passes)",
                ],
                [
                    "backlog: distinct keys received / duplicates created",
                    f"{bc['distinct_keys']} / {bc['duplicates_created']}",
                ],
                [
                    "backlog: requests / repeated keys / bad signatures",
                    f"{bc['requests_received']} / {bc['repeat_requests']} / {bc['bad_signatures']}",
                ],
                [
                    "backlog: outbox after recovery (delivered / dead / most attempts), "
                    "refs match receiver",
                    f"{bc['outbox']['delivered']} / {bc['outbox']['dead']} / "
                    f"{bc['max_attempts_seen']}, {fmt(bc['outbox_refs_match_receiver'])}",
                ],
                ["backlog recovered exactly once", fmt(b["exactly_once"])],
            ],
        ),
        "",
        f"- Tickets are `StoredTicket` records ({t['body_bytes']} B of JSON each, shaped like the "
        "README's enrichment) written with `add_with_delivery` into a temporary SQLite store "
        "(enrichment is not what is measured). `deliver_due` sends them through the real "
        "`WebhookClient` (httpx, HMAC-SHA256 signature, Idempotency-Key) to a "
        "`ThreadingHTTPServer` on 127.0.0.1 that verifies each signature, dedupes on the key and "
        "replies 201.",
        f"- Passes claim {result['batch_size']} deliveries (the default `delivery_batch_size`); "
        f"after a pass that claims nothing while deliveries remain, the loop sleeps "
        f"{result['poll_interval_s']} s (the service's worker polls every 1 s by default).",
        "- Per delivery (in the median throughput run) is from the start of the send to the "
        "outcome saved in the outbox, so it includes the SQLite write; throughput also pays "
        "for the claims. The receiver runs in the same process and shares its GIL, so the "
        "figures are a floor for one worker, not a helpdesk's limit. Loopback figures on a "
        "shared machine vary from run to run by up to about 2 ×.",
        f"- Recovery: {b['tickets']} tickets enqueued while nothing listened on the port; one pass "
        f"(limit {b['tickets']}) failed every delivery with a connection error, leaving them "
        "`retrying`; the receiver then started on that port and the clock ran until the outbox "
        "had no pending or retrying delivery. Retry policy for this run: base "
        f"{p['base_s']} s, cap {p['cap_s']} s (full jitter, wait uniform(0, min(cap, "
        f"base·2^(n−1))) after n failures), {p['max_attempts']} attempts, lease {p['lease_s']} s. "
        "After one failure every delivery is due within "
        f"{_ceiling_after(p, 1)} s, so the recovery time here is the drain time of the backlog.",
        f"- Production defaults are larger (base {prod['base_s']} s, cap {prod['cap_s']} s, "
        f"{prod['max_attempts']} attempts), so real recovery is bounded by the policy: after the "
        "receiver returns, a delivery that has failed n times waits up to "
        f"{_ceiling_after(prod, 1):.0f} s (n = 1), {_ceiling_after(prod, 5):.0f} s (n = 5), "
        f"{_ceiling_after(prod, 9):.0f} s (n = 9) or {_ceiling_after(prod, 10):.0f} s "
        "(n ≥ 10) before its next attempt, plus the poll interval and the drain time measured "
        f"here. The last of the {prod['max_attempts']} attempts comes at most "
        f"{prod['longest_outage_before_dead_s'] / 60:.0f} min (about half that on average) after "
        "the first failure, so a longer outage leaves deliveries `dead`, to be requeued.",
    ]

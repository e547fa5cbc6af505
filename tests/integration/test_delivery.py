"""Delivery to a real webhook receiver on 127.0.0.1: down, rate-limited, failing, dropping
connections, refusing, and a worker killed mid-delivery. Every ticket arrives exactly once.

The receiver checks each signature and dedupes on Idempotency-Key like a well-behaved helpdesk;
the assertions are on what it created and on the outbox, polled until they converge.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from adapters.helpdesk.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookClient,
    verify_signature,
)
from adapters.local.app import create_app
from adapters.local.sqlite_store import SQLiteTicketStore
from core import Enricher, load_enricher
from core.ports import StoredTicket
from core.settings import Settings

SECRET = "test-secret-not-for-production"
DEADLINE_S = 60.0
ROOT = Path(__file__).parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


# What the receiver does with the next request: reply with a status and headers, "drop" the
# connection after creating the ticket, or "hold" it (create, then never answer).
Step = tuple[int, dict[str, str]] | str


@dataclass
class Receiver:
    """A webhook receiver that verifies signatures and creates one ticket per idempotency key."""

    port: int = 0
    script: list[Step] = field(default_factory=list)
    created: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, float]] = field(default_factory=list)
    bad_signatures: int = 0
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def create(self, key: str, body: dict[str, Any]) -> tuple[str, bool]:
        with self.lock:
            if key in self.created:
                return self.created[key]["receiver_id"], False
            receiver_id = f"R{len(self.created) + 1}"
            self.created[key] = {"receiver_id": receiver_id, "body": body}
            return receiver_id, True

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                key = self.headers["Idempotency-Key"]
                with receiver.lock:
                    receiver.requests.append((key, time.monotonic()))
                    step = receiver.script.pop(0) if receiver.script else (201, {})
                if not verify_signature(
                    SECRET,
                    self.headers[TIMESTAMP_HEADER],
                    body,
                    self.headers[SIGNATURE_HEADER],
                    tolerance_s=60,
                ):
                    receiver.bad_signatures += 1
                    self._reply(401, {}, {"error": "bad signature"})
                    return
                if step in ("drop", "hold"):
                    receiver.create(key, json.loads(body))
                    if step == "hold":
                        receiver.holding.set()
                        receiver.release.wait(DEADLINE_S)
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                assert isinstance(step, tuple)
                status, headers = step
                if status >= 300:
                    self._reply(status, headers, {"error": f"scripted {status}"})
                    return
                receiver_id, new = receiver.create(key, json.loads(body))
                url = f"http://helpdesk.test/tickets/{receiver_id}"
                self._reply(201 if new else 200, {}, {"id": receiver_id, "url": url})

            def _reply(self, status: int, headers: dict[str, str], body: dict[str, Any]) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(payload))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    running.start()
    yield running
    running.stop()


API_KEY = "test-api-key"


@pytest.fixture(scope="module")
def enricher(small_model_dir: Path) -> Enricher:
    return load_enricher(small_model_dir)


def _settings(db_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database": db_path,
        "delivery_retry_base_s": 0.05,
        "delivery_retry_cap_s": 0.5,
        "delivery_max_attempts": 1000,
        "delivery_poll_interval_s": 0.05,
        "delivery_lease_s": 20.0,
        "api_key": API_KEY,
    }
    return Settings(**{**values, **overrides})


@contextmanager
def _serving(app: FastAPI) -> Iterator[str]:
    """Run the app, lifespan and all (the delivery worker lives there), on a free port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        _wait_until(lambda: server.started or not thread.is_alive(), "uvicorn to start")
        assert server.started
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(DEADLINE_S)
        sock.close()


@dataclass
class Service:
    client: httpx.Client
    store: SQLiteTicketStore

    def submit(self, count: int, prefix: str) -> list[str]:
        ids = []
        for n in range(count):
            ticket = {"subject": f"disk full on node {n}", "external_id": f"{prefix}-{n}"}
            response = self.client.post("/tickets", json=ticket)
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        return ids

    def statuses(self, ids: list[str]) -> list[str]:
        return [self.client.get(f"/tickets/{i}").json()["delivery"]["status"] for i in ids]

    def all_delivered(self, ids: list[str]) -> bool:
        return self.statuses(ids) == ["delivered"] * len(ids)


@contextmanager
def _service(enricher: Enricher, tmp_path: Path, url: str) -> Iterator[Service]:
    settings = _settings(tmp_path / "tickets.sqlite3")
    helpdesk = WebhookClient(url, SECRET, timeout=5.0)
    with SQLiteTicketStore(settings.database) as store:
        app = create_app(enricher, store, settings, outbox=store, helpdesk=helpdesk)
        with (
            _serving(app) as base,
            httpx.Client(base_url=base, timeout=30.0, headers={"X-API-Key": API_KEY}) as client,
        ):
            yield Service(client, store)
    helpdesk.close()


def _assert_exactly_once(service: Service, receiver: Receiver, ids: list[str]) -> None:
    keys = {f"ticket-enrich:{ticket_id}" for ticket_id in ids}
    assert set(receiver.created) == keys
    assert receiver.bad_signatures == 0
    for ticket_id in ids:
        created = receiver.created[f"ticket-enrich:{ticket_id}"]
        assert created["body"]["id"] == ticket_id
        delivery = service.client.get(f"/tickets/{ticket_id}").json()["delivery"]
        assert delivery["helpdesk"]["id"] == created["receiver_id"]
        assert delivery["helpdesk"]["system"] == "webhook"


def test_a_receiver_down_for_a_while_gets_every_ticket_once(
    enricher: Enricher, tmp_path: Path
) -> None:
    receiver = Receiver(port=_free_port())  # nothing listens there yet
    with _service(enricher, tmp_path, receiver.url) as service:
        ids = service.submit(5, "down")
        _wait_until(
            lambda: all(d["attempts"] >= 2 for d in service.client.get("/outbox").json()["items"]),
            "every delivery to fail at least twice",
        )
        assert set(service.statuses(ids)) == {"retrying"}
        receiver.start()
        try:
            _wait_until(lambda: service.all_delivered(ids), "every ticket delivered")
            _assert_exactly_once(service, receiver, ids)
        finally:
            receiver.stop()


def test_429_with_retry_after_is_waited_out(
    enricher: Enricher, tmp_path: Path, receiver: Receiver
) -> None:
    receiver.script = [(429, {"Retry-After": "2"})]
    with _service(enricher, tmp_path, receiver.url) as service:
        ids = service.submit(1, "limited")
        _wait_until(lambda: service.all_delivered(ids), "the ticket delivered")

        _assert_exactly_once(service, receiver, ids)
        (first, at_first), (second, at_second) = receiver.requests
        assert first == second == f"ticket-enrich:{ids[0]}"
        # The policy alone would have retried within half a second.
        assert at_second - at_first >= 1.9
        delivery = service.client.get(f"/tickets/{ids[0]}").json()["delivery"]
        assert delivery["attempts"] == 2


def test_500s_then_success(enricher: Enricher, tmp_path: Path, receiver: Receiver) -> None:
    receiver.script = [(500, {}), (502, {}), (503, {})]
    with _service(enricher, tmp_path, receiver.url) as service:
        ids = service.submit(1, "flaky")
        _wait_until(lambda: service.all_delivered(ids), "the ticket delivered")

        _assert_exactly_once(service, receiver, ids)
        assert [key for key, _ in receiver.requests] == [f"ticket-enrich:{ids[0]}"] * 4


def test_a_connection_dropped_after_the_receiver_created_the_ticket_is_not_duplicated(
    enricher: Enricher, tmp_path: Path, receiver: Receiver
) -> None:
    receiver.script = ["drop", "drop"]
    with _service(enricher, tmp_path, receiver.url) as service:
        ids = service.submit(1, "dropped")
        _wait_until(lambda: service.all_delivered(ids), "the ticket delivered")

        _assert_exactly_once(service, receiver, ids)
        assert [key for key, _ in receiver.requests] == [f"ticket-enrich:{ids[0]}"] * 3


def test_a_rejected_ticket_is_dead_and_can_be_requeued(
    enricher: Enricher, tmp_path: Path, receiver: Receiver
) -> None:
    receiver.script = [(400, {})]
    with _service(enricher, tmp_path, receiver.url) as service:
        (ticket_id,) = service.submit(1, "rejected")
        _wait_until(lambda: service.statuses([ticket_id]) == ["dead"], "the delivery to die")

        dead = service.client.get("/outbox", params={"status": "dead"}).json()["items"]
        assert [d["ticket_id"] for d in dead] == [ticket_id]
        assert "HTTP 400" in dead[0]["last_error"] and dead[0]["attempts"] == 1
        assert receiver.created == {}

        requeued = service.client.post(f"/outbox/{ticket_id}/retry")
        assert requeued.status_code == 200
        assert requeued.json()["attempts"] == 0
        _wait_until(lambda: service.all_delivered([ticket_id]), "the requeued ticket delivered")

        _assert_exactly_once(service, receiver, [ticket_id])
        assert service.client.get("/outbox", params={"status": "dead"}).json()["items"] == []
        again = service.client.post(f"/outbox/{ticket_id}/retry")
        assert again.status_code == 409
        assert service.client.post("/outbox/nope/retry").status_code == 404


def _worker(db_path: Path, url: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKET_ENRICH_")}
    env.update(
        TICKET_ENRICH_DATABASE=str(db_path),
        TICKET_ENRICH_HELPDESK_WEBHOOK_URL=url,
        TICKET_ENRICH_HELPDESK_WEBHOOK_SECRET=SECRET,
        TICKET_ENRICH_HELPDESK_TIMEOUT_S="10",
        TICKET_ENRICH_DELIVERY_LEASE_S="3",
        TICKET_ENRICH_DELIVERY_RETRY_BASE_S="0.05",
        TICKET_ENRICH_DELIVERY_RETRY_CAP_S="0.5",
        TICKET_ENRICH_DELIVERY_POLL_INTERVAL_S="0.05",
        TICKET_ENRICH_DELIVERY_BATCH_SIZE="1",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "adapters.local.cli", "deliver"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_worker_killed_mid_delivery_is_restarted_and_delivers_each_ticket_once(
    tmp_path: Path, receiver: Receiver
) -> None:
    db_path = tmp_path / "tickets.sqlite3"
    now = datetime.now(UTC)
    ids = [f"ticket-{n}" for n in range(4)]
    with SQLiteTicketStore(db_path) as store:
        for ticket_id in ids:
            ticket = StoredTicket(ticket_id, None, now.isoformat(), {"subject": ticket_id}, {})
            store.add_with_delivery(ticket, now)
        receiver.script = ["hold"]

        first = _worker(db_path, receiver.url)
        try:
            assert receiver.holding.wait(DEADLINE_S), "the worker never sent a delivery"
            first.send_signal(signal.SIGKILL)
            first.wait(DEADLINE_S)
        finally:
            first.kill()
        receiver.release.set()
        held_key = receiver.requests[0][0]
        assert [d.status for d in store.deliveries()].count("delivered") == 0

        second = _worker(db_path, receiver.url)
        try:
            _wait_until(
                lambda: [d.status for d in store.deliveries()] == ["delivered"] * len(ids),
                "every ticket delivered by the restarted worker",
            )
        finally:
            second.terminate()
            second.wait(DEADLINE_S)

        assert set(receiver.created) == {f"ticket-enrich:{i}" for i in ids}
        assert [key for key, _ in receiver.requests].count(held_key) == 2
        for delivery in store.deliveries():
            assert delivery.ref is not None
            assert (
                delivery.ref.id
                == receiver.created[f"ticket-enrich:{delivery.ticket_id}"]["receiver_id"]
            )

"""Real local services for the Google Cloud tests, one of each per test session.

- Google's Cloud Firestore emulator (from the Google Cloud SDK), started with the project's
  security rules, on a free loopback port; stopped by killing its process group.
- Google's Pub/Sub emulator (from the Google Cloud SDK), holding the dead-letter topic and a
  subscription the tests pull from.
- ``firebase-server`` (npm, installed under ``.tools/`` by ``tests/setup.d/30-gcp.sh``), which
  speaks the Realtime Database's REST protocol.
- A webhook receiver standing in for the helpdesk.
- The three functions, each served by the Functions Framework in its own process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.helpdesk.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "gcp" / "firestore.rules"
FIREBASE_SERVER = ROOT / ".tools" / "firebase-server" / "node_modules" / ".bin" / "firebase-server"
FUNCTIONS_FRAMEWORK = Path(sys.executable).with_name("functions-framework")
PROJECT = "demo-ticket-enrich"
RTDB_NAMESPACE = "demo-ticket-enrich-default-rtdb"
SECRET = "gcp-test-secret-not-for-production"
DEADLINE_S = 60.0
SETUP_HINT = "run `sh tests/setup.d/30-gcp.sh` (make check runs it)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(condition: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


@contextmanager
def process_group(
    command: list[str], what: str, log: Path, **kwargs: Any
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server in its own process group and kill the whole group at the end (the emulator
    is a shell script that starts Java; firebase-server is node behind a shim)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
        )
    try:
        yield proc
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code < 500
    except httpx.HTTPError:
        return False


def _started(proc: subprocess.Popen[bytes], url: str, what: str, log: Path) -> Callable[[], bool]:
    def check() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}:\n{log.read_text()}")
        return _answers(url)

    return check


@dataclass(frozen=True)
class Emulator:
    host: str
    project: str = PROJECT

    @property
    def rest(self) -> str:
        return f"http://{self.host}/v1/projects/{self.project}/databases/(default)/documents"

    def client(self) -> Any:
        """An admin client (the emulator's ``owner``), as the service's own is."""
        from google.cloud import firestore

        # The library reads the emulator's address once, when the client is built.
        saved = os.environ.get("FIRESTORE_EMULATOR_HOST")
        os.environ["FIRESTORE_EMULATOR_HOST"] = self.host
        try:
            return firestore.Client(project=self.project)
        finally:
            if saved is None:
                del os.environ["FIRESTORE_EMULATOR_HOST"]
            else:
                os.environ["FIRESTORE_EMULATOR_HOST"] = saved

    def document_pb(self, path: str) -> bytes:
        """The document's protobuf as Firestore's API returns it (what Eventarc wraps)."""
        import grpc
        from google.cloud.firestore_v1.services.firestore import FirestoreClient
        from google.cloud.firestore_v1.services.firestore.transports import FirestoreGrpcTransport
        from google.cloud.firestore_v1.types import Document

        channel = grpc.insecure_channel(self.host)
        try:
            api = FirestoreClient(transport=FirestoreGrpcTransport(channel=channel))
            document = api.get_document(
                request={"name": f"projects/{self.project}/databases/(default)/documents/{path}"},
                metadata=[("authorization", "Bearer owner")],
            )
        finally:
            channel.close()
        return Document.serialize(document)


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        pytest.fail(f"the Google Cloud SDK (gcloud) is not installed: {SETUP_HINT}")
    host = f"127.0.0.1:{free_port()}"
    log = tmp_path_factory.mktemp("firestore") / "emulator.log"
    command = [
        gcloud,
        "emulators",
        "firestore",
        "start",
        f"--host-port={host}",
        f"--rules={RULES}",
        "--quiet",
    ]
    with process_group(command, "Firestore emulator", log) as proc:
        wait_until(
            _started(proc, f"http://{host}/", "the Firestore emulator", log),
            "the Firestore emulator to start",
        )
        yield Emulator(host)


DEAD_LETTER_TOPIC = "ticket-enrich-rejected"


@dataclass
class PubSub:
    host: str
    project: str = PROJECT
    # Pulled letters of other tickets, kept for their tests (a session's functions share the
    # topic).
    unclaimed: list[tuple[dict[str, Any], dict[str, str]]] = field(default_factory=list)

    @property
    def topic(self) -> str:
        return f"projects/{self.project}/topics/{DEAD_LETTER_TOPIC}"

    @property
    def subscription(self) -> str:
        return f"projects/{self.project}/subscriptions/{DEAD_LETTER_TOPIC}-hold"

    def _client(self, kind: str) -> Any:
        from google.cloud import pubsub_v1

        # Like Firestore's, the library reads the emulator's address when the client is built.
        saved = os.environ.get("PUBSUB_EMULATOR_HOST")
        os.environ["PUBSUB_EMULATOR_HOST"] = self.host
        try:
            return getattr(pubsub_v1, kind)()
        finally:
            if saved is None:
                del os.environ["PUBSUB_EMULATOR_HOST"]
            else:
                os.environ["PUBSUB_EMULATOR_HOST"] = saved

    def create(self) -> None:
        """The dead-letter topic and its subscription, as `ticket-enrich deploy gcp` makes them."""
        from deploy.gcp.command import dead_letter_resources

        topic, subscription = dead_letter_resources(self.project, DEAD_LETTER_TOPIC)
        self._client("PublisherClient").create_topic(request=topic)
        self._client("SubscriberClient").create_subscription(request=subscription)

    def dead_letters(self) -> list[tuple[dict[str, Any], dict[str, str]]]:
        """Pull and acknowledge every message waiting on the subscription: (body, attributes)."""
        subscriber = self._client("SubscriberClient")
        found: list[tuple[dict[str, Any], dict[str, str]]] = []
        try:
            while True:
                # The functions answer once Pub/Sub has their message, so what is there is
                # there now; without return_immediately an empty pull waits for its deadline.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    reply = subscriber.pull(
                        request={
                            "subscription": self.subscription,
                            "max_messages": 100,
                            "return_immediately": True,
                        },
                        timeout=10.0,
                    )
                if not reply.received_messages:
                    return found
                for received in reply.received_messages:
                    message = received.message
                    found.append((json.loads(message.data), dict(message.attributes)))
                subscriber.acknowledge(
                    request={
                        "subscription": self.subscription,
                        "ack_ids": [r.ack_id for r in reply.received_messages],
                    }
                )
        finally:
            subscriber.close()

    def dead_letters_for(self, ticket_id: str) -> list[tuple[dict[str, Any], dict[str, str]]]:
        """The dead letters of one ticket, pulled with any others waiting."""
        self.unclaimed += self.dead_letters()
        mine = [letter for letter in self.unclaimed if letter[0].get("ticket_id") == ticket_id]
        self.unclaimed = [letter for letter in self.unclaimed if letter not in mine]
        return mine


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PubSub]:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        pytest.fail(f"the Google Cloud SDK (gcloud) is not installed: {SETUP_HINT}")
    host = f"127.0.0.1:{free_port()}"
    log = tmp_path_factory.mktemp("pubsub") / "emulator.log"
    command = [
        gcloud,
        "beta",
        "emulators",
        "pubsub",
        "start",
        f"--host-port={host}",
        f"--project={PROJECT}",
        "--quiet",
    ]
    with process_group(command, "Pub/Sub emulator", log) as proc:
        wait_until(
            _started(proc, f"http://{host}/", "the Pub/Sub emulator", log),
            "the Pub/Sub emulator to start",
        )
        emulator = PubSub(host)
        emulator.create()
        yield emulator


@dataclass(frozen=True)
class Database:
    url: str

    @property
    def rest(self) -> str:
        return self.url.split("?", 1)[0]


@pytest.fixture(scope="session")
def realtime_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    if not FIREBASE_SERVER.exists():
        pytest.fail(f"firebase-server is not installed at {FIREBASE_SERVER}: {SETUP_HINT}")
    port = free_port()
    log = tmp_path_factory.mktemp("rtdb") / "firebase-server.log"
    command = [str(FIREBASE_SERVER), "--rest", "--port", str(port), "--address", "127.0.0.1"]
    with process_group(command, "firebase-server", log) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_until(_started(proc, f"{base}/.json", "firebase-server", log), "firebase-server")
        yield Database(f"{base}?ns={RTDB_NAMESPACE}")


@dataclass
class Receiver:
    """A helpdesk webhook: checks signatures, creates one ticket per idempotency key, and fails
    the requests of the ticket ids it is told to fail."""

    port: int = 0
    created: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    failing: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def requests_for(self, ticket_id: str) -> int:
        with self.lock:
            return self.requests.count(f"ticket-enrich:{ticket_id}")

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                key = self.headers["Idempotency-Key"]
                ok = verify_signature(
                    SECRET,
                    self.headers[TIMESTAMP_HEADER],
                    body,
                    self.headers[SIGNATURE_HEADER],
                    tolerance_s=60,
                )
                with receiver.lock:
                    receiver.requests.append(key)
                    ticket_id = key.removeprefix("ticket-enrich:")
                    if not ok:
                        status, reply = 401, {"error": "bad signature"}
                    elif receiver.failing.get(ticket_id, 0) > 0:
                        receiver.failing[ticket_id] -= 1
                        status, reply = 503, {"error": "scripted outage"}
                    elif key in receiver.created:
                        status, reply = 200, {"id": receiver.created[key]["id"]}
                    else:
                        receiver.created[key] = {
                            "id": f"R{len(receiver.created) + 1}",
                            "body": json.loads(body),
                        }
                        status, reply = 201, {"id": receiver.created[key]["id"]}
                payload = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    running.start()
    yield running
    running.stop()


@dataclass(frozen=True)
class Functions:
    """Where each function listens."""

    created: str
    written: str
    drain: str
    # Each function's output (`<target>.log`): JSON lines, and any traceback.
    logs: Path


@pytest.fixture(scope="session")
def functions(
    firestore_emulator: Emulator,
    pubsub_emulator: PubSub,
    realtime_database: Database,
    receiver: Receiver,
    small_model_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Functions]:
    if not FUNCTIONS_FRAMEWORK.exists():
        pytest.fail(f"functions-framework is not installed next to {sys.executable}: {SETUP_HINT}")
    logs = tmp_path_factory.mktemp("functions")
    env = {
        **os.environ,
        "FIRESTORE_EMULATOR_HOST": firestore_emulator.host,
        "PUBSUB_EMULATOR_HOST": pubsub_emulator.host,
        "TICKET_ENRICH_DEAD_LETTER_TOPIC": DEAD_LETTER_TOPIC,
        "TICKET_ENRICH_GCP_PROJECT": firestore_emulator.project,
        "TICKET_ENRICH_MODEL_DIR": str(small_model_dir),
        "TICKET_ENRICH_RTDB_URL": realtime_database.url,
        "TICKET_ENRICH_DELIVER": "true",
        "TICKET_ENRICH_HELPDESK": "webhook",
        "TICKET_ENRICH_HELPDESK_WEBHOOK_URL": receiver.url,
        "TICKET_ENRICH_HELPDESK_WEBHOOK_SECRET": SECRET,
        "TICKET_ENRICH_DELIVERY_RETRY_BASE_S": "0.05",
        "TICKET_ENRICH_DELIVERY_RETRY_CAP_S": "0.2",
        "TICKET_ENRICH_DRAIN_BUDGET_S": "10",
        "PYTHONPATH": str(ROOT),
    }
    urls: dict[str, str] = {}
    with (
        _serve("on_ticket_created", env, logs) as urls["created"],
        _serve("on_ticket_written", env, logs) as urls["written"],
        _serve("drain_outbox", env, logs) as urls["drain"],
    ):
        yield Functions(**urls, logs=logs)


@contextmanager
def _serve(target: str, env: dict[str, str], logs: Path, source: str = "main.py") -> Iterator[str]:
    port = free_port()
    command = [
        str(FUNCTIONS_FRAMEWORK),
        "--source",
        str(ROOT / "adapters" / "gcp" / source),
        "--target",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    log = logs / f"{target}.log"
    with process_group(command, target, log, env=env, cwd=ROOT) as proc:
        url = f"http://127.0.0.1:{port}/"
        wait_until(_started(proc, url, f"the {target} function", log), f"{target} to serve")
        yield url

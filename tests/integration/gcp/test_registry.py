"""The Cloud Storage model registry against gcp-storage-emulator (installed by
`tests/setup.d/35-gcs.sh`), started here on 127.0.0.1.

The emulator keeps objects and their generations but ignores every precondition: it never
reads ``ifGenerationMatch`` (nor ``ifGenerationNotMatch`` or the metageneration ones), so a
create-only or stale upload simply overwrites, and a download at a stale generation succeeds;
`test_the_emulator_itself_ignores_generation_preconditions` pins that down. The registry's
concurrency control is therefore tested through `_PreconditionGate`, a small proxy in front of
the emulator that does what Cloud Storage documents for ``ifGenerationMatch`` (412 unless the
object's live generation equals it, 0 meaning "does not exist") and forwards everything else
untouched. The gate shows that the registry sends the right generations and recovers from a
412; that Cloud Storage itself enforces them is Google's documented behaviour, not tested here.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest
from google.api_core.exceptions import PreconditionFailed
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from adapters.gcp.registry import GcsModelRegistry
from tests.registry_contract import RegistryStore, check_registry_contract

SETUP = "sh tests/setup.d/35-gcs.sh"
PROJECT = "demo-ticket-enrich"
DEADLINE_S = 30.0
_OBJECT_PATH = re.compile(r"^/(?:download/)?storage/v1/b/(?P<bucket>[^/]+)/o/(?P<name>[^?]+)$")
_UPLOAD_PATH = re.compile(r"^/upload/storage/v1/b/(?P<bucket>[^/]+)/o$")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        connection.request("GET", "/")
        return connection.getresponse().status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """gcp-storage-emulator, in memory, on a free loopback port."""
    if importlib.util.find_spec("gcp_storage_emulator") is None:
        pytest.fail(f"gcp-storage-emulator is not installed in {sys.prefix}: run `{SETUP}`")
    workdir = tmp_path_factory.mktemp("gcs-emulator")
    port = _free_port()
    with (workdir / "emulator.log").open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "gcp_storage_emulator", "start",
                "--host", "127.0.0.1", "--port", str(port), "--in-memory", "--quiet",
            ],
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not _answers(port):
            if process.poll() is not None:
                pytest.fail(f"the emulator exited: {(workdir / 'emulator.log').read_text()}")
            if time.monotonic() > deadline:
                pytest.fail("gave up waiting for the Cloud Storage emulator to answer")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


class _PreconditionGate(ThreadingHTTPServer):
    """Forwards requests to the emulator one at a time, answering 412 to any that carries an
    ``ifGenerationMatch`` the object's live generation does not equal."""

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _GateHandler)
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.lock = threading.Lock()
        self.refused = 0

    def forward(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def generation(self, bucket: str, name: str) -> int:
        status, _, data = self.forward(
            "GET", f"/storage/v1/b/{bucket}/o/{quote(name, safe='')}", b"", {}
        )
        if status == 404:
            return 0
        assert status == 200, f"the emulator answered {status} to a metadata read: {data!r}"
        return int(json.loads(data)["generation"])


class _GateHandler(BaseHTTPRequestHandler):
    server: _PreconditionGate
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass

    def _handle(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            self._reply(501, [], b"the gate reads bodies by Content-Length only")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "connection"}}
        with self.server.lock:
            if "ifGenerationMatch" in query:
                bucket, name = self._target(url.path, query, body)
                expected = int(query["ifGenerationMatch"][0])
                if self.server.generation(bucket, name) != expected:
                    self.server.refused += 1
                    error = {
                        "code": 412,
                        "message": "At least one of the pre-conditions you specified did not hold.",
                        "errors": [{"reason": "conditionNotMet", "domain": "global"}],
                    }
                    self._reply(412, [], json.dumps({"error": error}).encode())
                    return
            status, upstream_headers, data = self.server.forward(
                self.command, self.path, body, headers
            )
        self._reply(status, upstream_headers, data)

    def _target(self, path: str, query: dict[str, list[str]], body: bytes) -> tuple[str, str]:
        """The bucket and object a conditional request is about."""
        if match := _OBJECT_PATH.match(path):
            return match["bucket"], unquote(match["name"])
        match = _UPLOAD_PATH.match(path)
        assert match, f"the gate does not know the object of {self.command} {path}"
        if "name" in query:
            return match["bucket"], query["name"][0]
        content_type = self.headers.get("Content-Type", "")
        if boundary := re.search(r'boundary="?([^";]+)"?', content_type):
            first_part = body.split(b"--" + boundary[1].encode())[1]
            body = first_part.split(b"\r\n\r\n", 1)[1]
        return match["bucket"], str(json.loads(body)["name"])

    def _reply(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
        self.send_response(status)
        skip = {"content-length", "transfer-encoding", "connection", "date", "server"}
        for key, value in headers:
            if key.lower() not in skip:
                self.send_header(key, value)
        if not any(k.lower() == "content-type" for k, _ in headers):
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def gate(emulator: str) -> Iterator[_PreconditionGate]:
    """The emulator behind the precondition gate, on another free loopback port."""
    server = _PreconditionGate(emulator)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(15)


def _client(endpoint: str) -> storage.Client:
    return storage.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": endpoint},
    )


def _gate_url(gate: _PreconditionGate) -> str:
    host, port = gate.server_address[:2]
    return f"http://{host!s}:{port}"


def _store(bucket: Any) -> RegistryStore:
    return RegistryStore(
        open=lambda: GcsModelRegistry(bucket),
        names=lambda: {b.name for b in bucket.client.list_blobs(bucket.name)},
        overwrite=lambda name, data: bucket.blob(name).upload_from_string(data),
    )


def test_the_registry_contract_holds_on_cloud_storage(
    gate: _PreconditionGate, small_model_dir: Path, tmp_path: Path
) -> None:
    client = _client(_gate_url(gate))
    refused_before = gate.refused

    def new_store() -> RegistryStore:
        return _store(client.create_bucket(f"registry-{uuid.uuid4().hex[:12]}"))

    check_registry_contract(new_store, small_model_dir, tmp_path)
    # The three races, and the version claimed by a crashed registration.
    assert gate.refused - refused_before >= 4


def test_a_stale_index_write_is_refused(gate: _PreconditionGate, small_model_dir: Path) -> None:
    """The precondition itself, without the retry: a write based on an old generation fails,
    and so does creating an index that another writer created first."""
    bucket = _client(_gate_url(gate)).create_bucket(f"registry-{uuid.uuid4().hex[:12]}")
    registry = GcsModelRegistry(bucket)
    assert registry._read_index() == ([], 0)
    assert registry._write_index([], 0) is True
    assert registry._write_index([], 0) is False
    _, generation = registry._read_index()
    assert generation > 0
    registry.register(small_model_dir)
    assert registry._write_index([], generation) is False
    assert len(registry.versions()) == 1


def test_the_emulator_itself_ignores_generation_preconditions(
    emulator: str, gate: _PreconditionGate
) -> None:
    """Why the gate exists. If this fails, the emulator has learned preconditions: point the
    registry tests at it directly and drop the gate."""
    bucket = _client(emulator).create_bucket(f"plain-{uuid.uuid4().hex[:12]}")
    bucket.blob("registry.json").upload_from_string(b"first", if_generation_match=0)
    first = bucket.get_blob("registry.json").generation
    assert first
    # A create-only upload over an existing object, then an upload at a stale generation:
    # both overwrite.
    bucket.blob("registry.json").upload_from_string(b"second", if_generation_match=0)
    bucket.blob("registry.json").upload_from_string(b"third", if_generation_match=first)
    assert bucket.get_blob("registry.json").generation != first
    # A download at a generation the object never had returns the live data.
    assert bucket.blob("registry.json").download_as_bytes(if_generation_match=1) == b"third"
    # Through the gate, the same requests are refused as Cloud Storage refuses them.
    gated = _client(_gate_url(gate)).bucket(bucket.name)
    for condition in (0, first):
        with pytest.raises(PreconditionFailed):
            gated.blob("registry.json").upload_from_string(b"x", if_generation_match=condition)
    with pytest.raises(PreconditionFailed):
        gated.blob("registry.json").download_as_bytes(if_generation_match=1)
    assert gated.blob("registry.json").download_as_bytes() == b"third"

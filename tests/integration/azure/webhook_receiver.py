"""A helpdesk webhook receiver on 127.0.0.1: checks each signature, creates one ticket per
Idempotency-Key (a repeated key gets the first answer), and can be told to fail next."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from adapters.helpdesk.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature

SECRET = "azure-test-secret-not-for-production"


@dataclass
class Receiver:
    url: str = ""
    created: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: int = 0
    bad_signatures: int = 0
    fail_next: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests += 1
            if not verify_signature(
                SECRET, headers.get(TIMESTAMP_HEADER.lower(), ""), body,
                headers.get(SIGNATURE_HEADER.lower(), ""),
            ):  # fmt: skip
                self.bad_signatures += 1
                return 401, {"error": "bad signature"}
            if self.fail_next:
                return self.fail_next.pop(0), {"error": "try later"}
            key = headers.get("idempotency-key", "")
            if key not in self.created:
                number = len(self.created) + 1
                self.created[key] = {
                    "id": str(number),
                    "url": f"{self.url}/tickets/{number}",
                    "ticket": json.loads(body),
                }
            first = self.created[key]
            return 201, {"id": first["id"], "url": first["url"]}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, reply = self.server.receiver.handle(
            {k.lower(): v for k, v in self.headers.items()}, body
        )
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, receiver: Receiver) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.receiver = receiver


@contextmanager
def receiving() -> Iterator[Receiver]:
    """A receiver on a free loopback port until the block ends."""
    receiver = Receiver()
    server = _Server(receiver)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

"""The RT connector against a real Request Tracker 5 (Debian's packages, SQLite, loopback).

`rt_server.sh install` installs RT (`make check` runs it); without it these tests fail rather
than pass silently. The server gets a fresh database in a temp dir and a free port for the module,
and is stopped afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.helpdesk.mapping import FieldMapping
from adapters.helpdesk.rt import RTClient
from core.errors import HelpdeskRejected, HelpdeskUnavailable
from core.ports import StoredTicket

SCRIPT = Path(__file__).with_name("rt_server.sh")
STARTUP_LIMIT_SECONDS = 120.0


def test_request_tracker_is_installed() -> None:
    assert shutil.which("rt-setup-database-5", path="/usr/sbin"), (
        "Request Tracker 5 is not installed: run `sh tests/integration/rt_server.sh install`"
    )


@dataclass
class RT:
    base_url: str
    token: str
    api: httpx.Client

    def ticket(self, ticket_id: str) -> dict[str, Any]:
        response = self.api.get(f"/ticket/{ticket_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def created_content(self, ticket_id: str) -> str:
        response = self.api.get(
            f"/ticket/{ticket_id}/attachments", params={"fields": "Content,ContentType"}
        )
        assert response.status_code == 200, response.text
        first = response.json()["items"][0]
        assert first["ContentType"] == "text/plain"
        return str(first["Content"])

    def count(self, query: str) -> int:
        response = self.api.get("/tickets", params={"query": query})
        assert response.status_code == 200, response.text
        return int(response.json()["total"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RT]:
    root = tmp_path_factory.mktemp("rt")
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(
        ["sh", str(SCRIPT), "run", str(root), str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "TMPDIR": str(root)},
    )
    try:
        token = _wait_until_serving(process, root, base_url)
        with httpx.Client(
            base_url=f"{base_url}/REST/2.0",
            headers={"Authorization": f"token {token}"},
            timeout=30.0,
        ) as api:
            yield RT(base_url, token, api)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
        log.close()


def _wait_until_serving(process: subprocess.Popen[bytes], root: Path, base_url: str) -> str:
    deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (root / "server.log").read_text(errors="replace")
            raise RuntimeError(f"RT exited with {process.returncode}:\n{log}")
        token_file = root / "token"
        if token_file.exists():
            token = token_file.read_text().strip()
            try:
                response = httpx.get(
                    f"{base_url}/REST/2.0/queue/1",
                    headers={"Authorization": f"token {token}"},
                    timeout=5.0,
                )
            except httpx.TransportError:
                pass
            else:
                if response.status_code == 200:
                    return token
        time.sleep(0.2)
    raise RuntimeError("RT did not start in time")


def _ticket(label: str, subject: str) -> StoredTicket:
    return StoredTicket(
        f"t-{subject}",
        None,
        "2026-11-23T11:00:00Z",
        {
            "subject": subject,
            "description": "Node 7 reports no space left on device.",
            "requester": {"email": "ann@example.com", "name": "Ann"},
        },
        {
            "priority": {"label": label, "confidence": 0.93, "band": "high", "needs_review": False},
            "needs_review": False,
            "tags": ["disk"],
        },
    )


def test_a_delivered_ticket_appears_in_rt_with_the_mapped_priority(rt: RT) -> None:
    client = RTClient(rt.base_url, rt.token)
    ref = client.create_ticket(_ticket("urgent", "Disk full on node 7"), "key-urgent")

    stored = rt.ticket(ref.id)
    assert stored["Priority"] == "90"
    assert stored["Subject"].startswith("Disk full on node 7 [te-")
    assert stored["Queue"]["id"] == "1"
    assert [r["id"] for r in stored["Requestor"]] == ["ann@example.com"]
    content = rt.created_content(ref.id)
    assert content.startswith("Node 7 reports no space left on device.")
    assert "Priority: urgent (confidence 0.93, band high)" in content
    assert ref.url == f"{rt.base_url}/Ticket/Display.html?id={ref.id}"


def test_a_low_priority_ticket_gets_rts_low_priority(rt: RT) -> None:
    ref = RTClient(rt.base_url, rt.token).create_ticket(_ticket("low", "Typo in docs"), "key-low")
    assert rt.ticket(ref.id)["Priority"] == "20"


def test_delivering_with_the_same_key_again_returns_the_first_ticket(rt: RT) -> None:
    client = RTClient(rt.base_url, rt.token)
    first = client.create_ticket(_ticket("normal", "Slow login"), "key-twice")
    second = client.create_ticket(_ticket("normal", "Slow login"), "key-twice")
    assert first == second
    assert rt.count("Subject LIKE 'Slow login'") == 1


def test_a_priority_override_from_settings_reaches_rt(rt: RT) -> None:
    mapping = FieldMapping.from_dict("rt", {"priorities": {"urgent": 99}})
    ref = RTClient(rt.base_url, rt.token, mapping=mapping).create_ticket(
        _ticket("urgent", "Cluster down"), "key-override"
    )
    assert rt.ticket(ref.id)["Priority"] == "99"


def test_a_queue_rt_does_not_have_is_rejected_with_rts_message(rt: RT) -> None:
    client = RTClient(rt.base_url, rt.token, queue="Nope")
    with pytest.raises(
        HelpdeskRejected, match="No permission to create tickets in the queue 'Nope'"
    ):
        client.create_ticket(_ticket("normal", "Wrong queue"), "key-queue")


def test_a_wrong_token_is_rejected(rt: RT) -> None:
    client = RTClient(rt.base_url, "1-1-0000")
    with pytest.raises(HelpdeskRejected, match="HTTP 401"):
        client.create_ticket(_ticket("normal", "Bad token"), "key-token")
    assert rt.count("Subject LIKE 'Bad token'") == 0


def test_rt_that_is_not_listening_is_retryable() -> None:
    client = RTClient(f"http://127.0.0.1:{_free_port()}", "1-1-0000")
    with pytest.raises(HelpdeskUnavailable):
        client.create_ticket(_ticket("normal", "Nobody home"), "key-down")

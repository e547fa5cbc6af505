"""`ticket-enrich rollout gcp` through google-cloud-run's real `ServicesClient` (REST transport)
against `CloudRunStandIn`, a small HTTP server on 127.0.0.1 speaking the part of the Cloud Run
Admin API v2 that a rollout uses.

Cloud Run has no emulator, so this server is a stand-in for Google's control plane, written
here: it keeps services, their revisions and traffic, and refuses what Cloud Run documents it
refuses (a traffic target naming an unknown revision, percentages that do not add up to 100, a
tag used twice, an update carrying a stale etag). What it shows is that the client library's
requests are the ones the rollout means to send (paths, the traffic targets, the etag) and that
the command reads the answers right; that a real project routes traffic as asked is Cloud Run's
documented behaviour, not tested here.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2

from adapters.local.cli import main
from deploy.gcp import rollout

PROJECT = "demo-ticket-enrich"
REGION = "europe-west1"
FUNCTION = "ticket-enrich-firestore"
SERVICE = f"projects/{PROJECT}/locations/{REGION}/services/{FUNCTION}"
OLD, NEW = f"{FUNCTION}-00001-abc", f"{FUNCTION}-00002-xyz"
_SERVICE_PATH = re.compile(r"^/v2/(projects/[^/]+/locations/[^/]+/services/[^/:]+)$")
# Cloud Run's enum TrafficTargetAllocationType, as the REST transport sends it (integers).
_LATEST, _REVISION = (
    ("TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", 1),
    (
        "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION",
        2,
    ),
)


@dataclass
class CloudRunStandIn:
    """Services by name, each with its revisions (oldest first) and its traffic."""

    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    revisions: dict[str, list[str]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, revisions: list[str]) -> None:
        """A service as a deploy leaves it: every revision ready, all traffic to LATEST."""
        self.revisions[name] = list(revisions)
        self.services[name] = {
            "name": name,
            "uid": "4f6c1d1e-2b7a-4c59-9d3e-8f1a2b3c4d5e",
            "generation": "1",
            "etag": '"1"',
            "template": {"containers": [{"image": "europe-west1-docker.pkg.dev/x/gcf/f:1"}]},
            "traffic": [{"type": _LATEST[0], "percent": 100}],
            "latestReadyRevision": f"{name}/revisions/{revisions[-1]}",
            "latestCreatedRevision": f"{name}/revisions/{revisions[-1]}",
            "uri": f"https://{name.rsplit('/', 1)[-1]}-abc123-ew.a.run.app",
        }

    def deploy_with_latest(self, name: str, revision: str) -> None:
        """A new revision, as a deploy makes it (traffic targets stay as they are)."""
        with self.lock:
            self.revisions[name].append(revision)
            self.services[name]["latestReadyRevision"] = f"{name}/revisions/{revision}"
            self.services[name]["latestCreatedRevision"] = f"{name}/revisions/{revision}"

    def update(self, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        service = self.services.get(name)
        if service is None:
            return 404, _error(404, "NOT_FOUND", f"Resource '{name}' was not found")
        if body.get("etag") and body["etag"] != service["etag"]:
            return 409, _error(409, "ABORTED", "the etag does not match the service's")
        traffic = body.get("traffic", [])
        tags = [t["tag"] for t in traffic if t.get("tag")]
        problems = []
        for target in traffic:
            kind = target.get("type")
            if kind in _REVISION and target.get("revision") not in self.revisions[name]:
                problems.append(f"Revision {target.get('revision')!r} does not exist")
            elif kind not in _REVISION and kind not in _LATEST:
                problems.append(f"unknown traffic type {kind!r}")
        if sum(int(t.get("percent", 0)) for t in traffic) != 100:
            problems.append("traffic percentages must add up to 100")
        if len(tags) != len(set(tags)):
            problems.append("a tag names one traffic target")
        if problems:
            return 400, _error(400, "INVALID_ARGUMENT", "; ".join(problems))
        generation = int(service["generation"]) + 1
        service["traffic"] = [
            {**t, "type": _REVISION[0] if t.get("type") in _REVISION else _LATEST[0]}
            for t in traffic
        ]
        service["generation"] = str(generation)
        service["etag"] = f'"{generation}"'
        operation = {
            "name": f"projects/{PROJECT}/locations/{REGION}/operations/op-{generation}",
            "done": True,
            "response": {"@type": "type.googleapis.com/google.cloud.run.v2.Service", **service},
        }
        return 200, operation


def _error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "status": status, "message": message}}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass

    def do_GET(self) -> None:
        self._handle(None)

    def do_PATCH(self) -> None:
        self._handle(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))

    def _handle(self, body: dict[str, Any] | None) -> None:
        stand_in = self.server.stand_in
        path = urlsplit(self.path).path
        match = _SERVICE_PATH.match(path)
        with stand_in.lock:
            stand_in.requests.append((self.command, self.path, body))
            if match is None:
                status, reply = 404, _error(404, "NOT_FOUND", f"no route {path}")
            elif body is None:
                found = stand_in.services.get(match[1])
                status, reply = (
                    (200, found)
                    if found
                    else (404, _error(404, "NOT_FOUND", f"Resource '{match[1]}' was not found"))
                )
            else:
                status, reply = stand_in.update(match[1], body)
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    def __init__(self, stand_in: CloudRunStandIn) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.stand_in = stand_in


@pytest.fixture
def cloud_run(monkeypatch: pytest.MonkeyPatch) -> Iterator[CloudRunStandIn]:
    stand_in = CloudRunStandIn()
    stand_in.add(SERVICE, [OLD])
    server = _Server(stand_in)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"

    def client() -> run_v2.ServicesClient:
        return run_v2.ServicesClient(
            transport="rest",
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=endpoint),
        )

    monkeypatch.setattr(rollout, "services_client", client)
    try:
        yield stand_in
    finally:
        server.shutdown()
        server.server_close()
        thread.join(15)


def _rollout(capsys: pytest.CaptureFixture[str], *words: str) -> tuple[int, dict[str, Any]]:
    """Run the command; its JSON report, or what it said on stderr when it failed."""
    code = main(["rollout", "gcp", *words, "--project", PROJECT, "--region", REGION])
    said = capsys.readouterr()
    return code, (json.loads(said.out.splitlines()[-1]) if code == 0 else {"error": said.err})


def _traffic(cloud_run: CloudRunStandIn) -> list[tuple[str, int, str]]:
    return [
        (t.get("revision", "LATEST"), int(t["percent"]), t.get("tag", ""))
        for t in cloud_run.services[SERVICE]["traffic"]
    ]


def test_a_rollout_starts_changes_its_share_and_is_promoted(
    cloud_run: CloudRunStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    code, status = _rollout(capsys, "status")
    assert code == 0
    assert status["rollout"] == "none"
    assert status["traffic"] == [{"revision": OLD, "percent": 100, "tag": ""}]

    cloud_run.deploy_with_latest(SERVICE, NEW)
    # Deployed through LATEST, the new revision already has everything: too late to split.
    assert main(["rollout", "gcp", "start", "--revision", NEW, "--project", PROJECT]) == 2
    assert "--no-traffic" in capsys.readouterr().err
    cloud_run.services[SERVICE]["traffic"] = [
        {"type": _REVISION[0], "revision": OLD, "percent": 100}
    ]

    code, started = _rollout(capsys, "start", "--revision", NEW, "--share", "10")
    assert code == 0, started
    assert started["rollout"] == "in progress"
    assert _traffic(cloud_run) == [(OLD, 90, "stable"), (NEW, 10, "candidate")]
    method, path, body = cloud_run.requests[-1]
    assert method == "PATCH" and path.startswith(f"/v2/{SERVICE}")
    # The service goes back as it was read, etag included, with the new traffic by revision.
    assert body is not None and body["etag"] == '"1"'
    assert body["template"] == cloud_run.services[SERVICE]["template"]
    assert [t["type"] for t in body["traffic"]] == [_REVISION[1], _REVISION[1]]

    code, _ = _rollout(capsys, "start", "--revision", NEW, "--share", "50")
    assert code == 0
    assert _traffic(cloud_run) == [(OLD, 50, "stable"), (NEW, 50, "candidate")]

    code, promoted = _rollout(capsys, "promote")
    assert code == 0
    assert _traffic(cloud_run) == [(NEW, 100, "")]
    assert promoted["rollout"] == "none"
    assert promoted["traffic"] == [{"revision": NEW, "percent": 100, "tag": ""}]


def test_a_rollout_is_rolled_back(
    cloud_run: CloudRunStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud_run.services[SERVICE]["traffic"] = [
        {"type": _REVISION[0], "revision": OLD, "percent": 100}
    ]
    cloud_run.deploy_with_latest(SERVICE, NEW)
    assert _rollout(capsys, "start", "--revision", NEW, "--share", "25")[0] == 0
    assert _traffic(cloud_run) == [(OLD, 75, "stable"), (NEW, 25, "candidate")]
    code, back = _rollout(capsys, "rollback")
    assert code == 0
    assert _traffic(cloud_run) == [(OLD, 100, "")]
    assert back["latest_ready_revision"] == NEW
    # Nothing is in progress any more.
    assert main(["rollout", "gcp", "rollback", "--project", PROJECT]) == 2
    assert main(["rollout", "gcp", "promote", "--project", PROJECT]) == 2


def test_cloud_run_refusals_are_reported(
    cloud_run: CloudRunStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    code, said = _rollout(capsys, "start", "--revision", f"{FUNCTION}-00009-nope", "--share", "5")
    assert code == 2
    assert "Revision 'ticket-enrich-firestore-00009-nope' does not exist" in said["error"]
    assert _traffic(cloud_run) == [("LATEST", 100, "")]
    # An update based on a service someone else changed since it was read is refused.
    service = rollout.read_service(rollout.services_client(), SERVICE)
    cloud_run.deploy_with_latest(SERVICE, NEW)
    with cloud_run.lock:
        cloud_run.services[SERVICE]["etag"] = '"7"'
    with pytest.raises(rollout.TicketEnrichError, match="etag"):
        rollout.apply(rollout.services_client(), service, [rollout.Target(NEW, 100)])
    code, said = _rollout(capsys, "status", "--function", "nope")
    assert code == 2
    assert f"projects/{PROJECT}/locations/{REGION}/services/nope" in said["error"]


def test_the_share_is_checked_before_any_request(
    cloud_run: CloudRunStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    for share in ("0", "100", "-5"):
        assert (
            main(
                [
                    "rollout",
                    "gcp",
                    "start",
                    "--revision",
                    NEW,
                    "--share",
                    share,
                    "--project",
                    PROJECT,
                ]
            )
            == 2
        )
        assert "1 to 99" in capsys.readouterr().err
    assert cloud_run.requests == []

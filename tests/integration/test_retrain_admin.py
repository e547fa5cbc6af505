"""Retraining from the agent UI's API, against the real local service on a loopback port: the
model card, uploads of sample exports (good and bad), a pull from a fake Zendesk, one job at a
time, the agents' corrections in the new data, and promotion served without a restart."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from adapters.local.app import create_app
from adapters.local.registry import DirectoryModelRegistry
from adapters.local.sqlite_store import SQLiteTicketStore
from core import load_enricher
from core.settings import Settings
from tests.integration.helpdesk_fakes import Reply, Request, serving
from tests.integration.pull_fakes import GARBLED, ZendeskExport, seeded
from tests.support import wait_until, write_tickets

API_KEY = "retrain-test-key"
EXPORTS = Path(__file__).parents[1] / "corpus" / "exports"
TIMEOUT_S = 60.0


@dataclass
class Service:
    url: str
    api: httpx.Client
    store: SQLiteTicketStore
    registry: DirectoryModelRegistry
    root: Path


@contextmanager
def running(model_dir: Path, root: Path, **overrides: Any) -> Iterator[Service]:
    """The service with its own copy of the enricher (promotion changes it) on a free port."""
    settings = Settings(
        database=root / "tickets.sqlite3",
        models_dir=root / "models",
        api_key=API_KEY,
        **overrides,
    )
    store = SQLiteTicketStore(settings.database)
    app = create_app(load_enricher(model_dir), store, settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="on", log_level="warning", timeout_graceful_shutdown=5)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + TIMEOUT_S
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    url = f"http://{host}:{port}"
    try:
        assert server.started, "uvicorn did not start"
        with httpx.Client(base_url=url, timeout=TIMEOUT_S, headers={"X-API-Key": API_KEY}) as api:
            yield Service(
                url, api, store, DirectoryModelRegistry(settings.model_registry_dir), root
            )
    finally:
        server.should_exit = True
        thread.join(TIMEOUT_S)
        sock.close()
        store.close()


@pytest.fixture
def service(small_model_dir: Path, tmp_path: Path) -> Iterator[Service]:
    with running(small_model_dir, tmp_path) as found:
        yield found


def _upload(service: Service, name: str, content: bytes) -> httpx.Response:
    return service.api.post("/admin/retrain/upload", files={"file": (name, content)})


def _ended(service: Service, job_id: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        job = service.api.get(f"/admin/retrain/jobs/{job_id}").json()
        return job if job["status"] != "running" else None

    result: dict[str, Any] = wait_until(ended, f"retrain job {job_id} to end")
    return result


def test_the_model_card_shows_the_served_model_its_data_and_test_figures(
    service: Service,
) -> None:
    served = service.api.get("/model").json()
    card = service.api.get("/admin/model")
    assert card.status_code == 200, card.text
    body = card.json()
    assert body["model"]["version"] == served["version"]
    assert body["data"]["rows"] == served["training_data"]["rows"]
    assert body["data"]["first_created"] == served["training_data"]["first_created"]
    labels = served["labels"]
    assert set(body["test"]["per_class"]) == set(labels)
    matrix = body["test"]["confusion_matrix"]
    assert matrix["labels"] == labels
    assert sum(map(sum, matrix["matrix"])) == body["test"]["rows"] > 0
    assert 0.0 <= body["test"]["auto_apply"]["share"] <= 1.0


def test_without_the_key_nothing_of_the_retrain_admin_answers(service: Service) -> None:
    with httpx.Client(base_url=service.url, timeout=TIMEOUT_S) as anonymous:
        assert anonymous.get("/admin/model").status_code == 401
        assert anonymous.post("/admin/retrain", json={"source": "shipped"}).status_code == 401
        upload = anonymous.post(
            "/admin/retrain/upload", files={"file": ("zendesk.csv", b"Subject\nx\n")}
        )
        assert upload.status_code == 401


@pytest.mark.parametrize(
    ("name", "content", "status", "says"),
    [
        ("notes.txt", b"subject,priority\nx,urgent\n", 422, "unknown file type"),
        ("export.csv", b"", 422, "empty"),
        ("export.csv", b"\xff\xfe not utf-8", 422, "UTF-8"),
        ("export.jsonl", b'{"subject": "x"}\n[1, 2]\n', 422, "not a JSON object"),
        ("export.csv", b"Name,Colour\nann,red\n", 422, "'Name', 'Colour'"),
        ("export.csv", b"subject,priority\nDisk full,urgent\nSlow page,normal\n", 422, "least 20"),
    ],
)
def test_a_bad_upload_is_refused_with_a_message_and_starts_nothing(
    service: Service, name: str, content: bytes, status: int, says: str
) -> None:
    refused = _upload(service, name, content)
    assert refused.status_code == status, refused.text
    assert refused.json()["error"]["code"] == "invalid_export"
    assert says in refused.json()["error"]["message"]
    assert service.api.get("/admin/retrain").json()["job"] is None


def test_an_upload_that_is_not_multipart_or_too_large_is_refused(service: Service) -> None:
    plain = service.api.post(
        "/admin/retrain/upload", content=b"subject,priority\n", headers={"content-type": "text/csv"}
    )
    assert plain.status_code == 422 and "multipart" in plain.json()["error"]["message"]
    unnamed = service.api.post("/admin/retrain/upload", files={"other": ("a.csv", b"x")})
    assert unnamed.status_code == 422 and "no part named file" in unnamed.text
    huge = _upload(service, "big.csv", b"subject,priority\n" + b"x,urgent\n" * 4_000_000)
    assert huge.status_code == 413, huge.text
    assert huge.json()["error"]["code"] == "export_too_large"
    assert "limit" in huge.json()["error"]["message"]


def test_a_sample_zendesk_export_retrains_redacted_and_its_other_labels_need_consent(
    service: Service,
) -> None:
    champion = service.api.get("/model").json()["version"]
    started = _upload(service, "zendesk.csv", (EXPORTS / "zendesk.csv").read_bytes())
    assert started.status_code == 202, started.text
    job = _ended(service, started.json()["id"])
    assert job["status"] == "ready", job["error"]
    assert job["source"] == {"kind": "upload", "name": "zendesk.csv", "preset": "zendesk-csv"}
    assert job["tickets_read"] == 27  # 26 with a priority, one without
    challenge = job["challenge"]
    # The champion predicts urgent/normal; Zendesk's four priorities are another model.
    assert challenge["comparable"] is False and challenge["recommended"] is False
    assert "labels" in challenge["reason"]
    assert challenge["labels"]["added"] == ["high", "low"]
    assert "champion" not in challenge["metrics"]
    assert set(challenge["metrics"]["champion_own_window"]["per_class"]) == {"normal", "urgent"}
    # Only the columns the preset reads were written, and the requesters' e-mails were not.
    written = next((service.root / "models" / "retrain").glob("upload-*/export.jsonl"))
    text = written.read_text()
    assert "@example.com" not in text and "Requester" not in text
    refused = service.api.post(f"/admin/retrain/jobs/{job['id']}/promote")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "labels_differ"
    assert "accept_new_labels" in refused.json()["error"]["message"]
    discarded = service.api.post(f"/admin/retrain/jobs/{job['id']}/discard")
    assert discarded.status_code == 200 and discarded.json()["status"] == "discarded"
    assert service.registry.get(challenge["challenger"]).stage == "archived"
    assert service.registry.production().version == champion  # type: ignore[union-attr]
    assert service.api.get("/model").json()["version"] == champion


def test_a_promoted_challenger_is_served_at_once_with_the_corrections_in_its_data(
    service: Service, tmp_path: Path
) -> None:
    champion = service.api.get("/model").json()["version"]
    corrected = service.api.post(
        "/tickets", json={"subject": "Nightly backup failed", "description": "disk full"}
    ).json()
    label = corrected["enrichment"]["priority"]["label"]
    other = "urgent" if label == "normal" else "normal"
    feedback = service.api.post(
        f"/tickets/{corrected['id']}/feedback", json={"target": "priority", "label": other}
    )
    assert feedback.status_code == 201, feedback.text
    export = write_tickets(tmp_path / "closed.jsonl", rows=160, seed=11)

    started = _upload(service, "closed.jsonl", export.read_bytes())
    assert started.status_code == 202, started.text
    job = _ended(service, started.json()["id"])
    assert job["status"] == "ready", job["error"]
    assert job["corrections"] == 1
    challenge = job["challenge"]
    assert challenge["data"]["rows"] == 160 and challenge["data"]["corrections"] == 1
    assert challenge["comparable"] is True
    for side in ("champion", "challenger"):
        figures = challenge["metrics"][side]
        assert figures["rows"] == challenge["window"]["rows"]
        assert set(figures["per_class"]) == {"normal", "urgent"}
        assert set(figures["auto_apply"]) == {"share", "precision"}
    candidate = service.registry.get(challenge["challenger"])
    assert candidate.stage == "candidate" and candidate.parent == champion
    assert candidate.data_rows == 161  # the export and the corrected ticket

    promoted = service.api.post(f"/admin/retrain/jobs/{job['id']}/promote")
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["status"] == "promoted"
    new = challenge["challenger"]
    assert service.api.get("/model").json()["version"] == new
    assert service.api.get("/admin/model").json()["model"]["version"] == new
    enriched = service.api.post("/tickets", json={"subject": "Cluster down", "description": "x"})
    assert enriched.json()["enrichment"]["model"]["version"] == new
    assert service.registry.production().version == new  # type: ignore[union-attr]
    assert service.registry.get(champion).stage == "archived"
    assert (service.root / "models" / "latest").resolve().name == new
    again = service.api.post(f"/admin/retrain/jobs/{job['id']}/promote")
    assert again.status_code == 409

    # The next retrain takes only the corrections made since this one read them.
    later = service.api.post("/tickets", json={"subject": "Printer jam", "description": "x"})
    label = later.json()["enrichment"]["priority"]["label"]
    other = "urgent" if label == "normal" else "normal"
    service.api.post(
        f"/tickets/{later.json()['id']}/feedback", json={"target": "priority", "label": other}
    )
    next_job = _ended(service, _upload(service, "closed.jsonl", export.read_bytes()).json()["id"])
    assert next_job["status"] == "ready", next_job["error"]
    assert next_job["corrections"] == 1
    assert next_job["challenge"]["champion"] == new


class HeldZendesk(ZendeskExport):
    """Zendesk whose export answers only once the test lets it."""

    def __init__(self) -> None:
        super().__init__()
        self.go = threading.Event()

    def answer(self, request: Request) -> Reply:
        self.go.wait(TIMEOUT_S)
        return super().answer(request)


def _zendesk_settings(fake: ZendeskExport, token: str) -> dict[str, Any]:
    return {
        "helpdesk": "zendesk",
        "helpdesk_url": fake.base_url,
        "helpdesk_user": ZendeskExport.EMAIL,
        "helpdesk_token": token,
    }


def test_a_pull_from_the_helpdesk_runs_one_at_a_time_and_reports_its_progress(
    small_model_dir: Path, tmp_path: Path
) -> None:
    with serving(HeldZendesk()) as fake:
        assert isinstance(fake, HeldZendesk)
        fake.seed(seeded(60, 5, 3))
        settings = _zendesk_settings(fake, ZendeskExport.TOKEN)
        with running(small_model_dir, tmp_path, **settings) as service:
            started = service.api.post("/admin/retrain", json={"source": "helpdesk"})
            assert started.status_code == 202, started.text
            job_id = started.json()["id"]
            assert started.json()["source"] == {"kind": "helpdesk", "helpdesk": "zendesk"}
            busy = service.api.post("/admin/retrain", json={"source": "shipped"})
            assert busy.status_code == 409 and busy.json()["error"]["code"] == "retrain_running"
            upload = _upload(service, "zendesk.csv", (EXPORTS / "zendesk.csv").read_bytes())
            assert upload.status_code == 409
            reading = service.api.get(f"/admin/retrain/jobs/{job_id}").json()
            assert reading["status"] == "running" and reading["stage"] == "reading"
            fake.go.set()
            job = _ended(service, job_id)
            assert job["status"] == "ready", job["error"]
            assert job["tickets_read"] == 63  # the solved ones, with or without a priority
            assert any("60 closed tickets pulled" in m for m in job["messages"])
            assert job["challenge"]["data"]["rows"] == 60
            pulled = (tmp_path / "pull" / "zendesk.jsonl").read_text()
            assert "@example.com" not in pulled  # redacted before it was written


def test_wrong_helpdesk_credentials_fail_the_job_and_the_champion_keeps_serving(
    small_model_dir: Path, tmp_path: Path
) -> None:
    with serving(ZendeskExport()) as fake:
        assert isinstance(fake, ZendeskExport)
        fake.seed(seeded(30, 0, 0))
        with running(small_model_dir, tmp_path, **_zendesk_settings(fake, "wrong")) as service:
            champion = service.api.get("/model").json()["version"]
            started = service.api.post("/admin/retrain", json={"source": "helpdesk"})
            assert started.status_code == 202, started.text
            job = _ended(service, started.json()["id"])
            assert job["status"] == "failed"
            assert "TICKET_ENRICH_HELPDESK_TOKEN" in job["error"]
            assert job["challenge"] is None
            assert service.api.get("/model").json()["version"] == champion
            promote = service.api.post(f"/admin/retrain/jobs/{job['id']}/promote")
            assert promote.status_code == 409


class FailingZendesk(ZendeskExport):
    """Zendesk whose export answers its first page, then a maintenance page in place of the
    next ones until the test mends it."""

    broken = True

    def answer(self, request: Request) -> Reply:
        if self.broken and "cursor" in request.query:
            return Reply(200, GARBLED)
        return super().answer(request)


def test_a_helpdesk_outage_mid_pull_fails_the_job_and_the_next_retrain_resumes(
    small_model_dir: Path, tmp_path: Path
) -> None:
    with serving(FailingZendesk()) as fake:
        assert isinstance(fake, FailingZendesk)
        fake.seed(seeded(150, 0, 0))  # two pages of 100
        settings = _zendesk_settings(fake, ZendeskExport.TOKEN)
        with running(small_model_dir, tmp_path, **settings) as service:
            champion = service.api.get("/model").json()["version"]
            started = service.api.post("/admin/retrain", json={"source": "helpdesk"})
            job = _ended(service, started.json()["id"])
            assert job["status"] == "failed" and job["stage"] == "reading"
            error = job["error"]
            assert "\n" not in error and "page 2 could not be read" in error
            assert "100 closed tickets so far are kept" in error
            assert "start a retrain from the helpdesk again to resume" in error
            assert job["challenge"] is None and service.registry.versions() == []
            assert service.api.get("/model").json()["version"] == champion
            assert service.api.post("/tickets", json={"subject": "still served"}).status_code == 201

            fake.broken = False
            asked = len(fake.requests)
            again = service.api.post("/admin/retrain", json={"source": "helpdesk"})
            job = _ended(service, again.json()["id"])
            assert job["status"] == "ready", job["error"]
            assert any("resuming after page 1 (100 closed tickets" in m for m in job["messages"])
            assert job["challenge"]["data"]["rows"] == 150
            # The resumed pull asked for the second page only, not the first again.
            reads = [r for r in fake.requests[asked:] if r.path.endswith("cursor.json")]
            assert reads and all("cursor" in r.query for r in reads)


def test_a_webhook_helpdesk_cannot_be_pulled(service: Service) -> None:
    refused = service.api.post("/admin/retrain", json={"source": "helpdesk"})
    assert refused.status_code == 409, refused.text
    assert "upload an export" in refused.json()["error"]["message"]
    unknown = service.api.post("/admin/retrain", json={"source": "ftp"})
    assert unknown.status_code == 422
    assert service.api.get("/admin/retrain/jobs/nope").status_code == 404


def test_too_few_closed_tickets_in_the_helpdesk_fail_the_job_with_the_count(
    small_model_dir: Path, tmp_path: Path
) -> None:
    with serving(ZendeskExport()) as fake:
        assert isinstance(fake, ZendeskExport)
        fake.seed(seeded(8, 2, 1))
        settings = _zendesk_settings(fake, ZendeskExport.TOKEN)
        with running(small_model_dir, tmp_path, **settings) as service:
            started = service.api.post("/admin/retrain", json={"source": "helpdesk"})
            job = _ended(service, started.json()["id"])
            assert job["status"] == "failed"
            assert "8 closed tickets" in job["error"] and "at least 20" in job["error"]
            assert job["stage"] == "reading"
            assert service.registry.versions() == []  # nothing was trained or registered


def test_two_workers_of_one_service_share_the_job_and_both_serve_the_promotion(
    small_model_dir: Path, tmp_path: Path
) -> None:
    # Two apps on one database and models folder: what `serve` runs as several worker processes.
    with (
        running(small_model_dir, tmp_path) as first,
        running(small_model_dir, tmp_path) as second,
    ):
        champion = first.api.get("/model").json()["version"]
        export = write_tickets(tmp_path / "closed.jsonl", rows=160, seed=11)
        started = _upload(first, "closed.jsonl", export.read_bytes())
        assert started.status_code == 202, started.text
        job_id = started.json()["id"]
        job = _ended(second, job_id)  # polled on the other worker
        assert job["status"] == "ready", job["error"]
        assert second.api.get("/admin/retrain").json()["job"]["id"] == job_id

        promoted = second.api.post(f"/admin/retrain/jobs/{job_id}/promote")
        assert promoted.status_code == 200, promoted.text
        new = job["challenge"]["challenger"]
        assert new != champion
        assert second.api.get("/model").json()["version"] == new
        # The first worker swaps the promoted model in on its own, between its requests.
        wait_until(
            lambda: first.api.get("/model").json()["version"] == new,
            "the other worker to serve the promoted model",
        )
        ticket = first.api.post("/tickets", json={"subject": "Cluster down", "description": "x"})
        assert ticket.json()["enrichment"]["model"]["version"] == new
        again = first.api.post(f"/admin/retrain/jobs/{job_id}/promote")
        assert again.status_code == 409 and again.json()["error"]["code"] == "not_ready"

"""A challenger with other priority labels than the served model, promoted from the agent UI's
API against the real local service: two apps on one database and models folder (what
`serve --workers 2` runs, inspected worker by worker), then `ticket-enrich serve --workers 2`
itself. The comparison says it is not like for like and lists the labels added and removed,
promotion needs the admin's explicit consent, and after it every worker's feedback, `/healthz`,
`/model`, `/model/report`, model card and dashboard config follow the new labels, while stored
tickets keep their enrichment and corrections with a removed label stay out of training."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from tests.integration.test_retrain_admin import (
    API_KEY,
    EXPORTS,
    TIMEOUT_S,
    Service,
    _ended,
    _upload,
    running,
)
from tests.support import serving, wait_until, write_tickets

REQUESTS = 16
_STARTED = re.compile(r"Started server process \[(\d+)\]")


def _retrained(service: Service, export: str) -> dict[str, Any]:
    started = _upload(service, export, (EXPORTS / export).read_bytes())
    assert started.status_code == 202, started.text
    job = _ended(service, started.json()["id"])
    assert job["status"] == "ready", job["error"]
    return job


def _serves(service: Service, version: str) -> bool:
    return bool(service.api.get("/healthz").json()["model"]["version"] == version)


def _correct(service: Service, ticket_id: str, label: str) -> httpx.Response:
    return service.api.post(
        f"/tickets/{ticket_id}/feedback", json={"target": "priority", "label": label}
    )


def _follows(service: Service, version: str, labels: list[str]) -> None:
    """Everything label-dependent in this worker is the served model's."""
    assert service.api.get("/healthz").json()["model"]["version"] == version
    assert service.api.get("/readyz").json()["model"]["version"] == version
    model = service.api.get("/model").json()
    assert model["version"] == version and model["labels"] == labels
    card = service.api.get("/admin/model").json()
    assert card["model"]["version"] == version and card["model"]["labels"] == labels
    report_path = service.registry.fetch(version) / "report" / "metrics.json"
    assert service.api.get("/model/report").content == report_path.read_bytes()
    assert service.api.get("/admin/model/report").content == report_path.read_bytes()
    config = service.api.get("/agent/config").json()
    assert sorted(config["priority_order"]) == sorted(labels)
    assert config["targets"]["priority"] == labels
    queue = service.api.get("/agent/queue").json()
    assert queue["model"]["version"] == version


def test_a_challenger_with_other_labels_is_promoted_with_consent_and_every_worker_follows(
    small_model_dir: Path, tmp_path: Path
) -> None:
    with (
        running(small_model_dir, tmp_path) as first,
        running(small_model_dir, tmp_path) as second,
    ):
        champion = first.api.get("/model").json()
        assert champion["labels"] == ["normal", "urgent"]
        ticket = first.api.post(
            "/tickets", json={"subject": "Checkout fails for every customer", "description": "x"}
        ).json()
        stored = ticket["enrichment"]
        assert _correct(first, ticket["id"], "high").status_code == 422  # not served yet

        # A team on Zendesk retrains for the first time: four levels instead of two.
        job = _retrained(first, "zendesk.csv")
        challenge = job["challenge"]
        assert challenge["comparable"] is False and challenge["recommended"] is False
        assert challenge["labels"] == {
            "champion": ["normal", "urgent"],
            "challenger": ["high", "low", "normal", "urgent"],
            "added": ["high", "low"],
            "removed": [],
        }
        assert (
            "not like for like" in challenge["reason"] and "added: high, low" in challenge["reason"]
        )
        # Each model on its own test window: the challenger on the new data's newest tickets,
        # the champion as it was tested when it was trained.
        own = challenge["metrics"]["champion_own_window"]
        assert "champion" not in challenge["metrics"]
        assert own["rows"] == champion["training_data"]["split"]["test"]
        assert set(own["per_class"]) == {"normal", "urgent"}
        assert own["window"] == "its own test window"
        mine = challenge["metrics"]["challenger"]
        assert mine["rows"] == challenge["window"]["rows"] > 0
        assert set(mine["per_class"]) <= {"high", "low", "normal", "urgent"}
        assert set(mine["auto_apply"]) == {"share", "precision"}
        assert mine["urgent_recall"] is None or 0.0 <= mine["urgent_recall"] <= 1.0

        promote = f"/admin/retrain/jobs/{job['id']}/promote"
        for body in (None, {"accept_new_labels": False}):
            refused = second.api.post(promote, json=body)
            assert refused.status_code == 409, refused.text
            error = refused.json()["error"]
            assert error["code"] == "labels_differ"
            assert '{"accept_new_labels": true}' in error["message"]
            assert "added: high, low; removed: none" in error["message"]
        assert second.api.get(f"/admin/retrain/jobs/{job['id']}").json()["status"] == "ready"
        new = challenge["challenger"]
        assert second.registry.get(new).stage == "candidate"
        assert _serves(first, champion["version"]) and _serves(second, champion["version"])

        promoted = second.api.post(promote, json={"accept_new_labels": True})
        assert promoted.status_code == 200, promoted.text
        decision = promoted.json()["decision"]
        assert decision["outcome"] == "promoted"
        assert decision["labels_accepted"]["added"] == ["high", "low"]
        entry = second.registry.get(new)
        assert entry.stage == "production"
        assert entry.decision is not None
        assert "accepting new priority labels (added: high, low" in entry.decision["reason"]
        assert entry.decision["labels_accepted"]["removed"] == []
        assert second.registry.get(champion["version"]).stage == "archived"

        zendesk = ["high", "low", "normal", "urgent"]
        _follows(second, new, zendesk)
        wait_until(lambda: _serves(first, new), "the other worker to serve the promoted model")
        _follows(first, new, zendesk)
        for worker in (first, second):
            assert _correct(worker, ticket["id"], "high").status_code == 201
        # The ticket keeps the enrichment it was stored with; its correction carries the new
        # label and names the model that made the prediction.
        again = first.api.get(f"/tickets/{ticket['id']}").json()
        assert again["enrichment"] == stored
        (correction,) = first.api.get(f"/tickets/{ticket['id']}/feedback").json()["items"]
        assert correction["label"] == "high"
        assert correction["model_version"] == champion["version"]
        fresh = first.api.post("/tickets", json={"subject": "Cluster down", "description": "x"})
        assert fresh.json()["enrichment"]["model"]["version"] == new
        assert fresh.json()["enrichment"]["priority"]["label"] in zendesk

        # Then back to three levels (Request Tracker): "high" is removed.
        rt_job = _retrained(second, "rt.tsv")
        # The "high" correction is not among the export's labels: left out, not a fourth class.
        assert rt_job["corrections"] == 0
        assert any("1 corrections left out" in m for m in rt_job["messages"])
        assert rt_job["challenge"]["labels"]["removed"] == ["high"]
        assert rt_job["challenge"]["labels"]["added"] == []
        # Made while the four-level model still serves, after the retrain read the corrections.
        assert _correct(first, fresh.json()["id"], "high").status_code == 201
        rt = rt_job["challenge"]["challenger"]
        refused = first.api.post(f"/admin/retrain/jobs/{rt_job['id']}/promote")
        assert refused.status_code == 409
        assert "removed: high" in refused.json()["error"]["message"]
        promoted = first.api.post(
            f"/admin/retrain/jobs/{rt_job['id']}/promote", json={"accept_new_labels": True}
        )
        assert promoted.status_code == 200, promoted.text
        wait_until(lambda: _serves(second, rt), "the other worker to serve the promoted model")
        for worker in (first, second):
            _follows(worker, rt, ["low", "normal", "urgent"])
            removed = _correct(worker, ticket["id"], "high")
            assert removed.status_code == 422, removed.text
            assert "is not one of ['low', 'normal', 'urgent']" in removed.text
            assert _correct(worker, ticket["id"], "low").status_code == 201
        # A correction with a label no longer served stays in the history...
        history = second.api.get(f"/tickets/{fresh.json()['id']}/feedback").json()["items"]
        assert [c["label"] for c in history] == ["high"]
        # ...but the next retrain leaves it out rather than bring the class back.
        last = _retrained(first, "rt.tsv")
        assert last["corrections"] == 1  # the "low" one
        assert any("1 corrections left out" in m and "high" in m for m in last["messages"])
        assert last["challenge"]["comparable"] is True


def test_serve_with_two_worker_processes_follows_a_promotion_to_other_labels(
    small_model_dir: Path, tmp_path: Path
) -> None:
    settings = {
        "workers": "2",
        "model_dir": str(small_model_dir),
        "models_dir": str(tmp_path / "models"),
        "database": str(tmp_path / "tickets.sqlite3"),
        "api_key": API_KEY,
    }
    log = tmp_path / "service.log"
    key = {"X-API-Key": API_KEY}

    def fresh(method: str, path: str, **kwargs: Any) -> httpx.Response:
        # A fresh connection each time, so that the kernel hands requests to either worker.
        with httpx.Client(base_url=base_url, timeout=TIMEOUT_S, headers=key) as http:
            return http.request(method, path, **kwargs)

    with serving(settings, log) as base_url:
        wait_until(lambda: len(_STARTED.findall(log.read_text())) == 2, "both workers to start")
        champion = fresh("GET", "/model").json()["version"]
        ticket = fresh("POST", "/tickets", json={"subject": "Disk full", "description": "x"})
        ticket_id = ticket.json()["id"]
        started = fresh(
            "POST",
            "/admin/retrain/upload",
            files={"file": ("zendesk.csv", (EXPORTS / "zendesk.csv").read_bytes())},
        )
        assert started.status_code == 202, started.text

        def ended() -> dict[str, Any] | None:
            job = fresh("GET", f"/admin/retrain/jobs/{started.json()['id']}").json()
            return job if job["status"] != "running" else None

        job = wait_until(ended, "the retrain to end")
        assert job["status"] == "ready", job["error"]
        new = job["challenge"]["challenger"]
        promote = f"/admin/retrain/jobs/{job['id']}/promote"
        refused = fresh("POST", promote)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "labels_differ"
        promoted = fresh("POST", promote, json={"accept_new_labels": True})
        assert promoted.status_code == 200, promoted.text

        def everywhere() -> bool:
            versions = {
                fresh("GET", "/healthz").json()["model"]["version"] for _ in range(REQUESTS)
            }
            return versions == {new}

        wait_until(everywhere, "every worker to serve the promoted model")
        # The worker that did not take the promotion swapped the model in on its own.
        assert "serving a promoted model" in log.read_text()
        report = (tmp_path / "models" / "registry" / new / "report" / "metrics.json").read_bytes()
        for _ in range(REQUESTS):
            corrected = fresh(
                "POST",
                f"/tickets/{ticket_id}/feedback",
                json={"target": "priority", "label": "high"},
            )
            assert corrected.status_code == 201, corrected.text
            assert fresh("GET", "/model/report").content == report
            config = fresh("GET", "/agent/config").json()
            assert config["priority_order"] == ["urgent", "high", "normal", "low"]
        assert fresh("GET", f"/tickets/{ticket_id}").json()["enrichment"]["model"]["version"] == (
            champion
        )
    assert "Traceback" not in log.read_text(errors="replace")


def test_consent_is_asked_against_the_model_served_now_not_the_one_judged(
    small_model_dir: Path, tmp_path: Path
) -> None:
    with running(small_model_dir, tmp_path) as service:
        export = write_tickets(tmp_path / "closed.jsonl", rows=160, seed=11)
        started = _upload(service, "closed.jsonl", export.read_bytes())
        same = _ended(service, started.json()["id"])
        assert same["status"] == "ready" and same["challenge"]["comparable"] is True
        assert same["challenge"]["labels"]["added"] == same["challenge"]["labels"]["removed"] == []
        zendesk = _retrained(service, "zendesk.csv")
        accepted = service.api.post(
            f"/admin/retrain/jobs/{zendesk['id']}/promote", json={"accept_new_labels": True}
        )
        assert accepted.status_code == 200, accepted.text
        # Judged beside the two-label champion, the first challenger now replaces four labels.
        refused = service.api.post(f"/admin/retrain/jobs/{same['id']}/promote")
        assert refused.status_code == 409, refused.text
        assert "added: none; removed: high, low" in refused.json()["error"]["message"]
        promoted = service.api.post(
            f"/admin/retrain/jobs/{same['id']}/promote", json={"accept_new_labels": True}
        )
        assert promoted.status_code == 200, promoted.text
        assert promoted.json()["decision"]["labels_accepted"]["removed"] == ["high", "low"]
        assert service.api.get("/model").json()["labels"] == ["normal", "urgent"]

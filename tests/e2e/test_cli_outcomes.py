"""`ticket-enrich outcomes` as an operator runs it: the service delivers tickets to a real
Request Tracker, agents resolve them there, the command turns their final priorities into
labels, and the service's live quality counts them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration import test_rt_real
from tests.integration.test_rt_real import RT
from tests.support import run_cli, serving, wait_until

API_KEY = "outcomes-test-key"

# The module-scoped Request Tracker fixture (a real RT 5 on loopback), shared by name.
rt = test_rt_real.rt


@pytest.fixture
def settings(rt: RT, tmp_path: Path, small_model_dir: Path) -> dict[str, str]:
    """The service's settings: the small two-label model, a fresh store, delivery to RT."""
    return {
        "database": str(tmp_path / "tickets.sqlite3"),
        "model_dir": str(small_model_dir),
        "models_dir": str(tmp_path / "models"),
        "api_key": API_KEY,
        "deliver": "true",
        "helpdesk": "rt",
        "helpdesk_url": rt.base_url,
        "helpdesk_token": rt.token,
        "delivery_poll_interval_s": "0.2",
    }


@pytest.fixture
def service(settings: dict[str, str], tmp_path: Path) -> Iterator[httpx.Client]:
    """`ticket-enrich serve` in its own process on a free loopback port; stopped afterwards."""
    with (
        serving(settings, tmp_path / "serve.log") as base_url,
        httpx.Client(base_url=base_url, headers={"X-API-Key": API_KEY}, timeout=30) as api,
    ):
        yield api


def test_tickets_resolved_in_rt_become_labels_the_service_scores(
    rt: RT, settings: dict[str, str], service: httpx.Client
) -> None:
    created = []
    for subject in ("Production cluster down, data loss", "Question about configuration"):
        response = service.post(
            "/tickets", json={"subject": subject, "description": f"{subject}. Please help."}
        )
        assert response.status_code == 201, response.text
        created.append(response.json())
    predicted = {t["id"]: t["enrichment"]["priority"]["label"] for t in created}
    version = created[0]["enrichment"]["model"]["version"]

    def delivered() -> list[dict[str, Any]] | None:
        items = service.get("/outbox", params={"status": "delivered"}).json()["items"]
        return items if len(items) == 2 else None

    refs = {d["ticket_id"]: d["helpdesk"]["id"] for d in wait_until(delivered, "delivery to RT")}
    assert service.get("/model/quality").json()["overall"]["tickets"] == 0

    # In RT, an agent resolves the first as the model said and the second as the other label.
    final = {}
    flip = {"urgent": ("normal", 50), "normal": ("urgent", 90)}
    for n, (ticket_id, helpdesk_id) in enumerate(refs.items()):
        label = predicted[ticket_id]
        label, priority = (label, {"urgent": 90, "normal": 50}[label]) if n == 0 else flip[label]
        final[ticket_id] = label
        response = rt.api.put(
            f"/ticket/{helpdesk_id}", json={"Status": "resolved", "Priority": priority}
        )
        assert response.status_code == 200, response.text

    result = run_cli("outcomes", settings=settings)

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["helpdesk"] == "rt" and summary["asked"] == 2 and summary["stopped"] is None
    assert sorted(summary["recorded"]) == sorted(refs)
    quality = service.get("/model/quality").json()
    assert quality["overall"]["tickets"] == 2 and quality["overall"]["agreement"] == 0.5
    assert quality["versions"][version]["tickets"] == 2
    feedback = service.get("/feedback").json()["items"]
    assert {c["ticket_id"]: (c["label"], c["agent"]) for c in feedback} == {
        ticket_id: (label, "helpdesk:rt") for ticket_id, label in final.items()
    }

    again = run_cli("outcomes", settings=settings)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["recorded"] == []
    assert service.get("/model/quality").json()["overall"]["tickets"] == 2


def test_outcomes_with_the_webhook_says_it_cannot_read_tickets_back(tmp_path: Path) -> None:
    result = run_cli(
        "outcomes",
        settings={
            "database": str(tmp_path / "t.sqlite3"),
            "models_dir": str(tmp_path / "models"),
            "helpdesk_webhook_url": "http://127.0.0.1:9/hook",
            "helpdesk_webhook_secret": "s",
        },
    )
    assert result.returncode == 2
    assert "the webhook helpdesk cannot be asked how its tickets closed" in result.stderr

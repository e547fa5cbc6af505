"""Live quality and Prometheus metrics on a real local service over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.local.app import create_app
from adapters.local.sqlite_store import SQLiteTicketStore
from core import load_enricher
from core.ports import Delivery
from core.settings import Settings
from tests.integration.test_local_service import _serving

KEY = {"X-API-Key": "observability-key"}


@pytest.fixture
def client(model_dir: Path, tmp_path: Path) -> Iterator[httpx.Client]:
    settings = Settings(
        database=tmp_path / "t.sqlite3", api_key="observability-key", drift_min_tickets=3
    )
    store = SQLiteTicketStore(settings.database)
    app = create_app(load_enricher(model_dir), store, settings)
    with _serving(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http
    store.close()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


TICKETS = [
    {"subject": "NameNode crashes on startup", "description": "Data loss on the whole cluster"},
    {"subject": "Typo in the docs", "description": "A small typo in the configuration page"},
    {"subject": "Flaky test TestDFSIO", "description": "Fails now and then on the CI"},
]


def test_metrics_count_enrichments_and_show_drift(client: httpx.Client) -> None:
    predicted = []
    for ticket in TICKETS:
        response = client.post("/tickets", json=ticket, headers=KEY)
        assert response.status_code == 201
        predicted.append(response.json()["enrichment"]["priority"])
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    assert samples[("ticket_enrich_enrichment_seconds_count", ())] == 3
    for p in predicted:
        key = ("ticket_enrich_enriched_total", (("band", p["band"]), ("priority", p["label"])))
        assert samples[key] == sum(
            1 for q in predicted if (q["label"], q["band"]) == (p["label"], p["band"])
        )
    features = {labels[0][1] for name, labels in samples if name == "ticket_enrich_drift_psi"}
    assert {"text_length", "language", "vocabulary", "priority", "band"} <= features


class _UnlistedStore(SQLiteTicketStore):
    """The real store, except that listing deliveries fails: a scrape must only count them."""

    def deliveries(self, status: str | None = None, limit: int = 100) -> list[Delivery]:
        raise AssertionError("the scrape listed deliveries")


def test_metrics_count_the_outbox_by_status_without_listing_it(
    model_dir: Path, tmp_path: Path
) -> None:
    settings = Settings(database=tmp_path / "t.sqlite3", api_key="observability-key")
    store = _UnlistedStore(settings.database)
    app = create_app(load_enricher(model_dir), store, settings, outbox=store)
    with _serving(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        ids = []
        for ticket in [*TICKETS, {"subject": "Disk full", "description": "On every node"}]:
            response = http.post("/tickets", json=ticket, headers=KEY)
            assert response.status_code == 201
            ids.append(response.json()["id"])
        for ticket_id, status in zip(ids, ("dead", "retrying", "dead"), strict=False):
            delivery = store.delivery(ticket_id)
            assert delivery is not None
            store.save(replace(delivery, status=status, attempts=1))

        response = http.get("/metrics")
    store.close()
    assert response.status_code == 200
    samples = _samples(response.text)
    depth = {
        labels[0][1]: value
        for (name, labels), value in samples.items()
        if name == "ticket_enrich_outbox_deliveries"
    }
    assert depth == {"pending": 1, "retrying": 1, "delivered": 0, "dead": 2}


def test_quality_per_model_version_from_agents_corrections(client: httpx.Client) -> None:
    stored = [client.post("/tickets", json=t, headers=KEY).json() for t in TICKETS]
    version = stored[0]["enrichment"]["model"]["version"]
    # Agents keep the first two predictions and correct the third to another label.
    for i, ticket in enumerate(stored):
        label = ticket["enrichment"]["priority"]["label"]
        if i == 2:
            label = "urgent" if label != "urgent" else "low"
        response = client.post(
            f"/tickets/{ticket['id']}/feedback",
            json={"target": "priority", "label": label, "agent": "ann"},
            headers=KEY,
        )
        assert response.status_code == 201, response.text
    assert client.get("/model/quality").status_code == 401
    quality = client.get("/model/quality", headers=KEY).json()
    assert quality["overall"]["tickets"] == 3
    assert quality["overall"]["agreement"] == pytest.approx(2 / 3)
    assert set(quality["versions"]) == {version}
    assert quality["versions"][version]["macro_f1"] < 1.0
    one = client.get("/model/quality", params={"window": 1}, headers=KEY).json()
    assert one["overall"]["tickets"] == 1 and one["overall"]["agreement"] == 0.0

"""Past its bound of requests in flight the local service answers 503 with Retry-After at once,
and takes requests again as soon as one finishes: a real uvicorn server, over HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.local.app import create_app
from adapters.local.sqlite_store import SQLiteTicketStore
from core import load_enricher
from core.ports import TicketPage, TicketQuery
from core.settings import Settings
from tests.integration.test_local_service import _serving

API_KEY = "k" * 32
WAIT_S = 60.0


class _HoldingStore(SQLiteTicketStore):
    """The first listing of tickets waits until the test lets it go (it runs on FastAPI's
    thread pool, so the event loop stays free to answer others meanwhile); later ones, such as
    the drift gauge of /metrics, do not."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.entered = threading.Event()
        self.release = threading.Event()

    def list(self, query: TicketQuery) -> TicketPage:
        if not self.entered.is_set():
            self.entered.set()
            self.release.wait(WAIT_S)
        return super().list(query)


@pytest.fixture
def held(small_model_dir: Path, tmp_path: Path) -> Iterator[tuple[httpx.Client, _HoldingStore]]:
    store = _HoldingStore(tmp_path / "tickets.sqlite3")
    settings = Settings(database=tmp_path / "tickets.sqlite3", api_key=API_KEY, max_in_flight=1)
    app = create_app(load_enricher(small_model_dir), store, settings)
    try:
        with (
            _serving(app) as url,
            httpx.Client(base_url=url, timeout=WAIT_S, headers={"X-API-Key": API_KEY}) as http,
        ):
            yield http, store
    finally:
        store.release.set()
        store.close()


def _refused_count(http: httpx.Client) -> float:
    for family in text_string_to_metric_families(http.get("/metrics").text):
        if family.name == "ticket_enrich_requests_refused_overloaded":
            return sum(s.value for s in family.samples if s.name.endswith("_total"))
    raise AssertionError("no overload counter in /metrics")


def test_a_request_past_the_bound_gets_503_with_retry_after_and_the_next_one_after_is_served(
    held: tuple[httpx.Client, _HoldingStore],
) -> None:
    http, store = held
    ticket = {"subject": "Export fails", "description": "the nightly export stops"}
    answers: list[httpx.Response] = []
    first = threading.Thread(target=lambda: answers.append(http.get("/tickets")))
    first.start()
    try:
        assert store.entered.wait(WAIT_S), "the first request never reached the store"

        refused = http.post("/tickets", json=ticket)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        error = refused.json()["error"]
        assert error["code"] == "overloaded"
        assert "retry" in error["message"]
        # Liveness and metrics answer whatever the load.
        assert http.get("/healthz").status_code == 200
        assert _refused_count(http) == 1
    finally:
        store.release.set()
        first.join(WAIT_S)

    assert [a.status_code for a in answers] == [200]
    # Nothing of the refused ticket was stored; with the bound free again it is taken.
    assert answers[0].json()["total"] == 0
    assert http.post("/tickets", json=ticket).status_code == 201

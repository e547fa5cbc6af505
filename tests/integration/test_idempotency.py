"""`Idempotency-Key` on every create endpoint of the real local service: one key, one ticket and
one delivery, the first answer replayed; the same key with another ticket is 409."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import serving

API_KEY = "k" * 32
TICKET = {"subject": "Printer on floor 3 jams", "description": "every second page since Monday"}


@pytest.fixture(scope="module")
def service(small_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("idempotency")
    settings = {
        "model_dir": str(small_model_dir),
        "database": str(root / "tickets.sqlite3"),
        "api_key": API_KEY,
        "deliver": "true",
        "helpdesk_webhook_url": "http://127.0.0.1:9/hook",
        "helpdesk_webhook_secret": "s",
        "customer_rate_per_hour": "0",
    }
    with serving(settings, root / "service.log") as base_url:
        yield base_url


def _api(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"X-API-Key": API_KEY}, timeout=30)


def test_twenty_posts_with_one_key_make_one_ticket_and_one_delivery(service: str) -> None:
    key = str(uuid.uuid4())
    with _api(service) as api:
        before = api.get("/tickets").json()["total"]
        answers = [
            api.post("/tickets", json=TICKET, headers={"Idempotency-Key": key}) for _ in range(20)
        ]
        assert {a.status_code for a in answers} == {201}
        assert len({a.json()["id"] for a in answers}) == 1
        assert [a.headers.get("idempotent-replayed") for a in answers] == [None] + ["true"] * 19
        assert all(a.json() == answers[0].json() for a in answers)
        assert api.get("/tickets").json()["total"] == before + 1
        ticket_id = answers[0].json()["id"]
        deliveries = [d for d in api.get("/outbox").json()["items"] if d["ticket_id"] == ticket_id]
        assert len(deliveries) == 1


def test_the_same_key_with_another_ticket_is_409_and_stores_nothing(service: str) -> None:
    key = str(uuid.uuid4())
    with _api(service) as api:
        first = api.post("/tickets", json=TICKET, headers={"Idempotency-Key": key})
        assert first.status_code == 201
        total = api.get("/tickets").json()["total"]
        other = api.post(
            "/tickets",
            json={**TICKET, "subject": "Another ticket"},
            headers={"Idempotency-Key": key},
        )
        assert other.status_code == 409
        assert other.json()["error"]["code"] == "idempotency_key_reused"
        assert api.get("/tickets").json()["total"] == total
        # Without a key the same ticket is simply another ticket.
        assert api.post("/tickets", json=TICKET).json()["id"] != first.json()["id"]


def test_a_malformed_key_is_refused_before_anything_is_stored(service: str) -> None:
    with _api(service) as api:
        total = api.get("/tickets").json()["total"]
        for bad in ("x" * 256, "tab\tinside", ""):
            answer = api.post("/tickets", json=TICKET, headers={"Idempotency-Key": bad})
            assert answer.status_code == 422, bad
            assert answer.json()["error"]["problems"][0]["field"] == "Idempotency-Key"
        assert api.get("/tickets").json()["total"] == total


def test_the_customer_form_honours_a_key_with_a_fresh_status_link(service: str) -> None:
    key = str(uuid.uuid4())
    first = httpx.post(
        f"{service}/customer/tickets", json=TICKET, headers={"Idempotency-Key": key}, timeout=30
    )
    again = httpx.post(
        f"{service}/customer/tickets", json=TICKET, headers={"Idempotency-Key": key}, timeout=30
    )
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    ticket_id = first.json()["id"]

    def status(token: str) -> int:
        url = f"{service}/customer/tickets/{ticket_id}"
        return httpx.get(url, headers={"X-Status-Token": token}, timeout=30).status_code

    assert status(again.json()["status_token"]) == 200
    assert status(first.json()["status_token"]) == 404
    other = httpx.post(
        f"{service}/customer/tickets",
        json={**TICKET, "subject": "Something else"},
        headers={"Idempotency-Key": key},
        timeout=30,
    )
    assert other.status_code == 409

"""deploy/gcp/firestore.rules, enforced by the Firestore emulator (started with them) for
requests that carry a Firebase ID token instead of the emulator's ``owner`` credential. The
emulator accepts unsigned tokens, so each test signs in as whoever it needs."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.integration.gcp.conftest import Emulator

ENRICHED = {
    "subject": "Disk full on node 7",
    "description": "",
    "owner": "uid-ann",
    "enrichment": {"priority": {"label": "normal", "confidence": 0.7}, "needs_review": True},
    "enrichment_state": {"status": "enriched", "at": "2026-11-23T10:00:00.000Z"},
    "received_at": "2026-11-23T10:00:00.000Z",
}


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def token(uid: str, **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": "https://securetoken.google.com/demo-ticket-enrich",
        "aud": "demo-ticket-enrich",
        "auth_time": now,
        "iat": now,
        "exp": now + 3600,
        "sub": uid,
        "user_id": uid,
        "firebase": {"identities": {}, "sign_in_provider": "custom"},
        **claims,
    }
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(payload)}."


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"integerValue": str(value)}
    if isinstance(value, dict):
        return {"mapValue": {"fields": {k: _value(v) for k, v in value.items()}}}
    raise TypeError(value)


def _fields(data: dict[str, Any]) -> dict[str, Any]:
    return {"fields": {k: _value(v) for k, v in data.items()}}


class As:
    """REST requests to the emulator as one signed-in user (or nobody)."""

    def __init__(self, emulator: Emulator, bearer: str | None) -> None:
        self.base = emulator.rest
        self.headers = {} if bearer is None else {"Authorization": f"Bearer {bearer}"}

    def get(self, ticket_id: str) -> int:
        return httpx.get(
            f"{self.base}/tickets/{ticket_id}", headers=self.headers, timeout=30.0
        ).status_code

    def create(self, data: dict[str, Any]) -> int:
        url = f"{self.base}/tickets?documentId={uuid.uuid4().hex}"
        return httpx.post(url, headers=self.headers, json=_fields(data), timeout=30.0).status_code

    def update(self, ticket_id: str, data: dict[str, Any]) -> int:
        mask = "&".join(f"updateMask.fieldPaths={k}" for k in data)
        url = f"{self.base}/tickets/{ticket_id}?{mask}"
        return httpx.patch(url, headers=self.headers, json=_fields(data), timeout=30.0).status_code

    def list_own(self, uid: str) -> int:
        query = {
            "structuredQuery": {
                "from": [{"collectionId": "tickets"}],
                "where": {
                    "fieldFilter": {
                        "field": {"fieldPath": "owner"},
                        "op": "EQUAL",
                        "value": {"stringValue": uid},
                    }
                },
            }
        }
        return httpx.post(
            f"{self.base}:runQuery", headers=self.headers, json=query, timeout=30.0
        ).status_code

    def read_outbox(self) -> int:
        return httpx.get(
            f"{self.base}/ticket_outbox/any", headers=self.headers, timeout=30.0
        ).status_code


@pytest.fixture(scope="module")
def enriched_id(firestore_emulator: Emulator) -> str:
    ticket_id = uuid.uuid4().hex
    firestore_emulator.client().collection("tickets").document(ticket_id).set(ENRICHED)
    return ticket_id


@pytest.fixture
def ann(firestore_emulator: Emulator) -> As:
    return As(firestore_emulator, token("uid-ann"))


@pytest.fixture
def bob(firestore_emulator: Emulator) -> As:
    return As(firestore_emulator, token("uid-bob"))


@pytest.fixture
def agent(firestore_emulator: Emulator) -> As:
    return As(firestore_emulator, token("uid-agent", agent=True))


def test_a_customer_creates_a_ticket_in_their_own_name_only(
    ann: As, firestore_emulator: Emulator
) -> None:
    assert ann.create({"subject": "Disk full", "owner": "uid-ann"}) == 200
    assert (
        ann.create(
            {
                "subject": "Disk full",
                "description": "on node 7",
                "requester": {"email": "ann@example.com"},
                "owner": "uid-ann",
            }
        )
        == 200
    )
    assert ann.create({"subject": "Disk full", "owner": "uid-bob"}) == 403
    assert ann.create({"subject": "Disk full"}) == 403
    assert As(firestore_emulator, None).create({"subject": "Disk full", "owner": "uid-ann"}) == 403


@pytest.mark.parametrize(
    "field",
    ["enrichment", "enrichment_state", "enrichment_error", "received_at", "corrected_priority"],
)
def test_nobody_but_the_service_writes_enrichment_fields(ann: As, agent: As, field: str) -> None:
    value = {"status": "enriched"} if field != "received_at" else "2026-01-01"
    if field == "corrected_priority":
        value = "urgent"
    assert ann.create({"subject": "Disk full", "owner": "uid-ann", field: value}) == 403
    assert agent.create({"subject": "Disk full", "owner": "uid-agent", field: value}) == 403


def test_a_customer_reads_their_own_tickets_only(
    ann: As, bob: As, firestore_emulator: Emulator, enriched_id: str
) -> None:
    assert ann.get(enriched_id) == 200
    assert ann.list_own("uid-ann") == 200
    assert bob.get(enriched_id) == 403
    assert bob.list_own("uid-ann") == 403
    assert As(firestore_emulator, None).get(enriched_id) == 403


def test_a_customer_cannot_change_a_ticket(ann: As, enriched_id: str) -> None:
    assert ann.update(enriched_id, {"subject": "Changed"}) == 403
    assert ann.update(enriched_id, {"enrichment": {"priority": {"label": "urgent"}}}) == 403
    assert ann.update(enriched_id, {"corrected_priority": "urgent"}) == 403


def test_an_agent_reads_every_ticket_and_corrects_priority_only(
    agent: As, enriched_id: str
) -> None:
    assert agent.get(enriched_id) == 200
    assert agent.update(enriched_id, {"corrected_priority": "urgent"}) == 200
    assert agent.update(enriched_id, {"enrichment": {"priority": {"label": "urgent"}}}) == 403
    assert agent.update(enriched_id, {"subject": "Changed"}) == 403
    assert agent.update(enriched_id, {"corrected_priority": ""}) == 403


def test_no_client_reads_the_outbox(ann: As, agent: As) -> None:
    assert ann.read_outbox() == 403
    assert agent.read_outbox() == 403

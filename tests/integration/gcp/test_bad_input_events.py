"""The bad-input corpus (tests/corpus/bad_inputs.jsonl, the hostile ticket bodies every entry
point is replayed with) against the Firebase triggers, served by the Functions Framework:
each body as the Realtime Database write a client could make (the event's ``delta``, spliced in
as it is, valid JSON or not) and as the data of a Firestore event (not a document event at all).
Each is one per-ticket error: acknowledged (2xx, so Eventarc does not retry it), published to
the dead-letter topic with the reason, written into the ticket, and no traceback in the
function's output. A body that is JSON ``null`` is a deletion: acknowledged, nothing to reject.
"""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import httpx
import pytest

from tests.integration.gcp.conftest import Database, Emulator, Functions, PubSub
from tests.support import bad_ticket_bodies
from tests.unit.gcp.eventarc import database_raw, firestore_raw

BODIES = bad_ticket_bodies()
IDS = [name for name, _ in BODIES]
CODES = {"malformed_body", "invalid_ticket", "ticket_too_large"}


def _post(url: str, event: tuple[dict[str, str], bytes]) -> httpx.Response:
    headers, body = event
    return httpx.post(url, headers=headers, content=body, timeout=60.0)


def _tracebacks(logs: Path) -> list[str]:
    return [
        f"{log.name}: {line}"
        for log in sorted(logs.glob("*.log"))
        for line in log.read_text(errors="replace").splitlines()
        if "Traceback" in line
    ]


def test_the_corpus_has_bodies_to_replay() -> None:
    assert len(BODIES) >= 10


@pytest.mark.parametrize(("name", "body"), BODIES, ids=IDS)
def test_a_hostile_database_write_is_one_rejected_ticket(
    functions: Functions,
    realtime_database: Database,
    pubsub_emulator: PubSub,
    name: str,
    body: bytes,
) -> None:
    key = "-N" + base64.urlsafe_b64encode(uuid.uuid4().bytes).decode()[:18]
    ref = f"tickets/{key}"

    reply = _post(functions.written, database_raw(ref, body))

    assert reply.status_code == 200, reply.text
    letters = pubsub_emulator.dead_letters_for(key)
    node = httpx.get(f"{realtime_database.rest}/{ref}.json", timeout=10.0).json()
    if body == b"null":
        assert letters == [] and node is None
    else:
        [(letter, attributes)] = letters
        assert letter["source"] == "realtime-database" and letter["path"] == ref
        assert letter["error"]["code"] == attributes["code"] and attributes["code"] in CODES
        assert letter["error"]["problems"] and letter["error"]["message"]
        assert node["enrichment_state"]["status"] == "invalid"
        assert node["enrichment_error"] == letter["error"]
        assert "enrichment" not in node
    assert _tracebacks(functions.logs) == []


@pytest.mark.parametrize(("name", "body"), BODIES, ids=IDS)
def test_a_hostile_firestore_event_is_one_rejected_ticket(
    functions: Functions,
    firestore_emulator: Emulator,
    pubsub_emulator: PubSub,
    name: str,
    body: bytes,
) -> None:
    ticket_id = uuid.uuid4().hex[:20]

    reply = _post(functions.created, firestore_raw(f"tickets/{ticket_id}", body))

    assert reply.status_code == 200, reply.text
    [(letter, attributes)] = pubsub_emulator.dead_letters_for(ticket_id)
    assert letter["source"] == "firestore" and letter["path"] == f"tickets/{ticket_id}"
    assert attributes["code"] == letter["error"]["code"] == "malformed_body"
    document = firestore_emulator.client().collection("tickets").document(ticket_id).get()
    assert document.to_dict()["enrichment_error"] == letter["error"]
    assert _tracebacks(functions.logs) == []

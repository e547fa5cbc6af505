"""The Realtime Database route: the function served by the Functions Framework receives the
reference-written events the platform sends (shapes recorded under tests/events/gcp/) and
writes back through firebase-admin to firebase-server, which speaks the database's REST
protocol; deliveries go to the Firestore emulator's outbox."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
import pytest

from tests.integration.gcp.conftest import Database, Emulator, Functions, PubSub, Receiver
from tests.unit.gcp.eventarc import database_written, recorded, request_of

TICKET = {
    "subject": "Balancer hangs on a rack-aware cluster",
    "description": "hdfs balancer never finishes when racks are uneven; call +44 20 7946 0958",
    "owner": "uid-bob",
    "requester": {"email": "bob@example.com"},
}


def _key() -> str:
    return "-N" + base64.urlsafe_b64encode(uuid.uuid4().bytes).decode()[:18]


def _put(db: Database, ref: str, value: Any) -> None:
    httpx.put(f"{db.rest}/{ref}.json", json=value, timeout=10.0).raise_for_status()


def _get(db: Database, ref: str) -> Any:
    return httpx.get(f"{db.rest}/{ref}.json", timeout=10.0).json()


def _send(url: str, event: tuple[dict[str, str], bytes]) -> httpx.Response:
    headers, body = event
    return httpx.post(url, headers=headers, content=body, timeout=30.0)


@pytest.fixture(scope="module")
def client(firestore_emulator: Emulator) -> Any:
    return firestore_emulator.client()


def _outbox(client: Any, ticket_id: str) -> dict[str, Any] | None:
    snapshot = client.collection("ticket_outbox").document(ticket_id).get()
    return snapshot.to_dict() if snapshot.exists else None


def test_the_recorded_create_event_enriches_the_ticket(
    functions: Functions, realtime_database: Database, client: Any
) -> None:
    record = recorded("database_ref_written_create.json")
    ref = record["headers"]["ce-ref"]
    _put(realtime_database, ref, record["data"]["delta"])

    reply = _send(functions.written, request_of(record))

    assert reply.status_code == 200, reply.text
    node = _get(realtime_database, ref)
    assert node["enrichment_state"]["status"] == "enriched"
    assert (
        node["enrichment"]["priority"]["label"] in node["enrichment"]["priority"]["probabilities"]
    )
    assert node["owner"] == "uid-bob"
    delivery = _outbox(client, ref.rsplit("/", 1)[-1])
    assert delivery is not None
    # The database keeps no nulls or empty objects, so compare what it does keep.
    pushed = json.loads(delivery["ticket_json"])["enrichment"]
    assert pushed["priority"] == node["enrichment"]["priority"]
    assert pushed["enriched_at"] == node["enrichment"]["enriched_at"]


def test_write_back_agent_edit_and_duplicates_have_no_second_effect(
    functions: Functions, realtime_database: Database, client: Any, receiver: Receiver
) -> None:
    key = _key()
    ref = f"tickets/{key}"
    _put(realtime_database, ref, TICKET)
    create = database_written(ref, None, TICKET)

    assert _send(functions.written, create).status_code == 200
    enriched = _get(realtime_database, ref)
    assert "+44 20 7946 0958" not in enriched["description"]
    written_back = {k: v for k, v in enriched.items() if k not in TICKET or v != TICKET[k]}

    # The event the write-back itself causes, an agent's correction, and the first event again.
    writeback = database_written(ref, TICKET, written_back)
    assert _send(functions.written, writeback).status_code == 200
    httpx.patch(
        f"{realtime_database.rest}/{ref}.json", json={"corrected_priority": "urgent"}, timeout=10.0
    )
    edit = database_written(ref, enriched, {"corrected_priority": "urgent"})
    assert _send(functions.written, edit).status_code == 200
    assert _send(functions.written, create).status_code == 200
    httpx.post(functions.drain, timeout=30.0)
    assert _send(functions.written, create).status_code == 200
    httpx.post(functions.drain, timeout=30.0)

    after = _get(realtime_database, ref)
    assert after["enrichment"] == enriched["enrichment"]
    assert after["corrected_priority"] == "urgent"
    assert receiver.requests_for(key) == 1
    assert _outbox(client, key)["status"] == "delivered"  # type: ignore[index]


def test_the_recorded_write_back_and_agent_edit_events_are_skipped(
    functions: Functions, realtime_database: Database
) -> None:
    for name in ("database_ref_written_writeback.json", "database_ref_written_agent_edit.json"):
        record = recorded(name)
        ref = f"tickets/{_key()}"
        headers, body = request_of(record)
        headers.update({"ce-ref": ref, "ce-subject": f"refs/{ref}"})

        assert _send(functions.written, (headers, body)).status_code == 200
        # Nothing was written: the node the event names does not exist.
        assert _get(realtime_database, ref) is None


def test_a_malformed_ticket_gets_its_error_and_is_acknowledged(
    functions: Functions, realtime_database: Database, pubsub_emulator: PubSub, client: Any
) -> None:
    key = _key()
    ref = f"tickets/{key}"
    bad = {"subject": 17, "owner": "uid-eve", "urgency": "now"}
    _put(realtime_database, ref, bad)

    assert _send(functions.written, database_written(ref, None, bad)).status_code == 200

    node = _get(realtime_database, ref)
    assert node["enrichment_state"]["status"] == "invalid"
    assert {p["field"] for p in node["enrichment_error"]["problems"]} == {"subject", "urgency"}
    assert "enrichment" not in node
    assert _outbox(client, key) is None
    [(letter, attributes)] = pubsub_emulator.dead_letters_for(key)
    assert letter["source"] == attributes["source"] == "realtime-database"
    assert letter["path"] == ref and letter["error"]["code"] == "invalid_ticket"
    assert {p["field"] for p in letter["error"]["problems"]} == {"subject", "urgency"}


def test_a_subject_only_ticket_is_enriched(
    functions: Functions, realtime_database: Database
) -> None:
    ref = f"tickets/{_key()}"
    ticket = {"subject": "Datanode disk full", "owner": "uid-bob"}
    _put(realtime_database, ref, ticket)

    assert _send(functions.written, database_written(ref, None, ticket)).status_code == 200

    assert _get(realtime_database, ref)["enrichment_state"]["status"] == "enriched"


def test_a_deleted_ticket_is_acknowledged(
    functions: Functions, realtime_database: Database
) -> None:
    ref = f"tickets/{_key()}"

    reply = _send(functions.written, database_written(ref, TICKET, None))

    assert reply.status_code == 200
    assert _get(realtime_database, ref) is None


@pytest.mark.parametrize("first", ["created", "updated", "written"])
def test_a_new_ticket_is_enriched_once_whichever_trigger_event_arrives_first(
    first: str,
    functions: Functions,
    realtime_database: Database,
    client: Any,
    receiver: Receiver,
) -> None:
    # The client writes the ticket, then one more field before the function has run: the
    # database sends created and written for the first write, updated and written for the
    # second.
    key = _key()
    ref = f"tickets/{key}"
    _put(realtime_database, ref, TICKET)
    httpx.patch(f"{realtime_database.rest}/{ref}.json", json={"channel": "web"}, timeout=10.0)
    kind = "google.firebase.database.ref.v1.{}".format
    events = {
        "created": [database_written(ref, None, TICKET, event_type=kind("created"))],
        "written": [
            database_written(ref, None, TICKET, event_type=kind("written")),
            database_written(ref, TICKET, {"channel": "web"}, event_type=kind("written")),
        ],
        "updated": [database_written(ref, TICKET, {"channel": "web"}, event_type=kind("updated"))],
    }
    ordered = events.pop(first) + [e for rest in events.values() for e in rest]

    assert _send(functions.written, ordered[0]).status_code == 200
    enriched = _get(realtime_database, ref)
    assert enriched["enrichment_state"]["status"] == "enriched"
    for event in ordered[1:]:
        reply = _send(functions.written, event)
        assert reply.status_code == 200, reply.text
    # The write-back's own updated event is ignored too.
    written_back = {k: v for k, v in enriched.items() if k not in TICKET or v != TICKET[k]}
    writeback = database_written(ref, TICKET, written_back, event_type=kind("updated"))
    assert _send(functions.written, writeback).status_code == 200

    assert _get(realtime_database, ref) == enriched
    httpx.post(functions.drain, timeout=30.0)
    assert receiver.requests_for(key) == 1


def test_an_event_of_a_type_the_function_is_not_for_is_acknowledged_and_changes_nothing(
    functions: Functions, realtime_database: Database
) -> None:
    ref = f"tickets/{_key()}"
    _put(realtime_database, ref, TICKET)
    deleted = database_written(
        ref, TICKET, None, event_type="google.firebase.database.ref.v1.deleted"
    )

    reply = _send(functions.written, deleted)

    assert reply.status_code == 200, reply.text  # a retry could not change the outcome
    assert _get(realtime_database, ref) == TICKET

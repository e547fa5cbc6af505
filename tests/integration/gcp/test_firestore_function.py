"""The Firestore-triggered function, served by the Functions Framework, against the emulator:
the test writes a ticket document, sends the binary-mode CloudEvent Eventarc would send for it,
and reads the enrichment back from the emulator."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.integration.gcp.conftest import Emulator, Functions, PubSub, Receiver, wait_until
from tests.unit.gcp.eventarc import firestore_created, firestore_document_event

CREATED, UPDATED, WRITTEN, DELETED = (
    f"google.cloud.firestore.document.v1.{kind}"
    for kind in ("created", "updated", "written", "deleted")
)

TICKET = {
    "subject": "NameNode fails to start after upgrade",
    "description": "All DataNodes are down, the cluster is unusable. Call me: ann@example.com",
    "requester": {"email": "ann@example.com", "name": "Ann"},
    "owner": "uid-ann",
}


@pytest.fixture(scope="module")
def client(firestore_emulator: Emulator) -> Any:
    return firestore_emulator.client()


def _write(client: Any, fields: dict[str, Any]) -> str:
    ticket_id = uuid.uuid4().hex[:20]
    client.collection("tickets").document(ticket_id).set(fields)
    return ticket_id


def _send(url: str, event: tuple[dict[str, str], bytes]) -> httpx.Response:
    headers, body = event
    return httpx.post(url, headers=headers, content=body, timeout=30.0)


def _event(
    emulator: Emulator, ticket_id: str, event_id: str | None = None
) -> tuple[dict[str, str], bytes]:
    return firestore_created(
        emulator.document_pb(f"tickets/{ticket_id}"), emulator.project, event_id
    )


def _doc(client: Any, ticket_id: str) -> dict[str, Any]:
    data: dict[str, Any] = client.collection("tickets").document(ticket_id).get().to_dict()
    return data


def _outbox(client: Any, ticket_id: str) -> dict[str, Any] | None:
    snapshot = client.collection("ticket_outbox").document(ticket_id).get()
    return snapshot.to_dict() if snapshot.exists else None


def test_a_created_ticket_is_enriched_in_place(
    functions: Functions, firestore_emulator: Emulator, client: Any
) -> None:
    ticket_id = _write(client, TICKET)

    reply = _send(functions.created, _event(firestore_emulator, ticket_id))

    assert reply.status_code == 200, reply.text
    doc = _doc(client, ticket_id)
    assert doc["enrichment_state"]["status"] == "enriched"
    enrichment = doc["enrichment"]
    assert enrichment["priority"]["label"] in enrichment["priority"]["probabilities"]
    assert isinstance(enrichment["needs_review"], bool)
    # Redaction applies to what is stored: the e-mail in the description is gone.
    assert "ann@example.com" not in doc["description"]
    assert [r["kind"] for r in enrichment["redactions"]] == ["email"]
    assert doc["owner"] == "uid-ann" and doc["requester"]["email"] == "ann@example.com"
    delivery = _outbox(client, ticket_id)
    assert delivery is not None and delivery["status"] == "pending"


def test_the_same_event_twice_has_one_effect(
    functions: Functions, firestore_emulator: Emulator, client: Any, receiver: Receiver
) -> None:
    ticket_id = _write(client, TICKET)
    event = _event(firestore_emulator, ticket_id)

    assert _send(functions.created, event).status_code == 200
    first = _doc(client, ticket_id)
    assert _send(functions.created, event).status_code == 200
    # The same document with a new event id (a replayed trigger) changes nothing either.
    assert _send(functions.created, _event(firestore_emulator, ticket_id)).status_code == 200

    assert _doc(client, ticket_id) == first
    drained = httpx.post(functions.drain, timeout=30.0)
    assert drained.status_code == 200, drained.text
    assert receiver.requests_for(ticket_id) == 1
    assert _outbox(client, ticket_id)["status"] == "delivered"  # type: ignore[index]
    assert _send(functions.created, event).status_code == 200
    httpx.post(functions.drain, timeout=30.0)
    assert receiver.requests_for(ticket_id) == 1


def test_the_write_back_and_an_agent_edit_do_not_enrich_again(
    functions: Functions, firestore_emulator: Emulator, client: Any, receiver: Receiver
) -> None:
    ticket_id = _write(client, TICKET)
    assert _send(functions.created, _event(firestore_emulator, ticket_id)).status_code == 200
    httpx.post(functions.drain, timeout=30.0)
    enriched = _doc(client, ticket_id)

    # Were the function (mis)deployed on every write, it would see its own write-back...
    assert _send(functions.created, _event(firestore_emulator, ticket_id)).status_code == 200
    # ...and an agent's correction.
    client.collection("tickets").document(ticket_id).update({"corrected_priority": "urgent"})
    assert _send(functions.created, _event(firestore_emulator, ticket_id)).status_code == 200
    httpx.post(functions.drain, timeout=30.0)

    after = _doc(client, ticket_id)
    assert after["corrected_priority"] == "urgent"
    assert after["enrichment"] == enriched["enrichment"]
    assert receiver.requests_for(ticket_id) == 1


def test_a_subject_without_description_is_a_valid_ticket(
    functions: Functions, firestore_emulator: Emulator, client: Any
) -> None:
    ticket_id = _write(
        client, {"subject": "Balancer hangs on rack-aware cluster", "owner": "uid-bob"}
    )

    assert _send(functions.created, _event(firestore_emulator, ticket_id)).status_code == 200

    doc = _doc(client, ticket_id)
    assert doc["enrichment_state"]["status"] == "enriched"
    assert "enrichment_error" not in doc
    assert doc["description"] == ""


@pytest.mark.parametrize(
    ("fields", "bad_fields", "code"),
    [
        (
            {"subject": 42, "severity": "high", "owner": "uid-eve"},
            {"subject", "severity"},
            "invalid_ticket",
        ),
        ({"subject": "  ", "description": "", "owner": "uid-eve"}, {"ticket"}, "invalid_ticket"),
        (
            {"subject": "Disk full", "custom_fields": {"blob": b"\x00\x01"}, "owner": "uid-eve"},
            {"custom_fields.blob"},
            "invalid_ticket",
        ),
        ({"subject": "x" * 1100, "owner": "uid-eve"}, {"subject"}, "ticket_too_large"),
    ],
    ids=["wrong-type-and-unknown-field", "no-text", "bytes-value", "subject-too-long"],
)
def test_a_malformed_ticket_gets_its_error_and_is_acknowledged(
    functions: Functions,
    firestore_emulator: Emulator,
    pubsub_emulator: PubSub,
    client: Any,
    receiver: Receiver,
    fields: dict[str, Any],
    bad_fields: set[str],
    code: str,
) -> None:
    ticket_id = _write(client, fields)
    event = _event(firestore_emulator, ticket_id)

    reply = _send(functions.created, event)

    # 2xx: Eventarc does not retry it; the customer's client shows the error instead, and the
    # dead-letter topic has it with the reason.
    assert reply.status_code == 200, reply.text
    [(letter, attributes)] = pubsub_emulator.dead_letters_for(ticket_id)
    assert letter["source"] == "firestore" and letter["path"] == f"tickets/{ticket_id}"
    assert letter["event_id"] == attributes["event_id"] and letter["event_source"]
    assert letter["error"]["code"] == attributes["code"] == code
    assert {p["field"] for p in letter["error"]["problems"]} == bad_fields
    doc = _doc(client, ticket_id)
    assert "enrichment" not in doc
    assert doc["enrichment_state"]["status"] == "invalid"
    error = doc["enrichment_error"]
    assert error["code"] == code  # the code the HTTP entry points answer with
    assert {p["field"] for p in error["problems"]} == bad_fields
    assert error["message"]
    assert _outbox(client, ticket_id) is None
    # Delivered again, it is still acknowledged and changes nothing; its dead letter may come
    # twice (at least once, as every Pub/Sub message), with the same event id.
    assert _send(functions.created, event).status_code == 200
    assert _doc(client, ticket_id) == doc
    assert receiver.requests_for(ticket_id) == 0
    again = pubsub_emulator.dead_letters_for(ticket_id)
    assert [a["event_id"] for _, a in again] in ([], [attributes["event_id"]])


def test_a_failed_delivery_is_retried_until_the_helpdesk_has_it(
    functions: Functions, firestore_emulator: Emulator, client: Any, receiver: Receiver
) -> None:
    ticket_id = _write(client, TICKET)
    receiver.failing[ticket_id] = 2
    assert _send(functions.created, _event(firestore_emulator, ticket_id)).status_code == 200

    def delivered() -> bool:
        httpx.post(functions.drain, timeout=30.0)
        return _outbox(client, ticket_id)["status"] == "delivered"  # type: ignore[index]

    wait_until(delivered, "the delivery to succeed after the outage")

    delivery = _outbox(client, ticket_id)
    assert delivery is not None
    assert delivery["attempts"] == 3
    assert delivery["helpdesk"]["system"] == "webhook"
    assert receiver.requests_for(ticket_id) == 3
    created = receiver.created[f"ticket-enrich:{ticket_id}"]["body"]
    assert created["id"] == ticket_id
    assert created["enrichment"] == _doc(client, ticket_id)["enrichment"]


def _change(
    emulator: Emulator, kind: str, after: bytes | None, before: bytes | None
) -> tuple[dict[str, str], bytes]:
    return firestore_document_event(kind, after, before, emulator.project)


@pytest.mark.parametrize("first", [WRITTEN, UPDATED, CREATED])
def test_a_new_ticket_is_enriched_once_whichever_event_arrives_first(
    first: str,
    functions: Functions,
    firestore_emulator: Emulator,
    client: Any,
    receiver: Receiver,
) -> None:
    # The customer's client creates the ticket, then adds a field before the function runs:
    # Firestore sends created and written for the first write, updated and written for the
    # second, in any order.
    ticket_id = _write(client, TICKET)
    path = f"tickets/{ticket_id}"
    created = firestore_emulator.document_pb(path)
    client.collection("tickets").document(ticket_id).update({"channel": "web"})
    changed = firestore_emulator.document_pb(path)
    events = {
        CREATED: [_change(firestore_emulator, CREATED, created, None)],
        WRITTEN: [
            _change(firestore_emulator, WRITTEN, created, None),
            _change(firestore_emulator, WRITTEN, changed, created),
        ],
        UPDATED: [_change(firestore_emulator, UPDATED, changed, created)],
    }
    ordered = events.pop(first) + [e for rest in events.values() for e in rest]

    assert _send(functions.created, ordered[0]).status_code == 200
    enriched = _doc(client, ticket_id)
    assert enriched["enrichment_state"]["status"] == "enriched"
    for event in ordered[1:]:
        reply = _send(functions.created, event)
        assert reply.status_code == 200, reply.text

    assert _doc(client, ticket_id) == enriched
    httpx.post(functions.drain, timeout=30.0)
    assert receiver.requests_for(ticket_id) == 1


def test_the_write_back_an_agent_edit_and_a_deletion_as_updated_and_written_events_are_ignored(
    functions: Functions, firestore_emulator: Emulator, client: Any, receiver: Receiver
) -> None:
    ticket_id = _write(client, TICKET)
    path = f"tickets/{ticket_id}"
    new = firestore_emulator.document_pb(path)
    assert _send(functions.created, _event(firestore_emulator, ticket_id)).status_code == 200
    written_back = firestore_emulator.document_pb(path)
    enriched = _doc(client, ticket_id)
    client.collection("tickets").document(ticket_id).update({"corrected_priority": "urgent"})
    edited = firestore_emulator.document_pb(path)
    after_edit = _doc(client, ticket_id)

    for kind in (UPDATED, WRITTEN):
        # The function's own write-back, then the agent's correction.
        assert (
            _send(
                functions.created, _change(firestore_emulator, kind, written_back, new)
            ).status_code
            == 200
        )
        assert (
            _send(
                functions.created, _change(firestore_emulator, kind, edited, written_back)
            ).status_code
            == 200
        )
    assert _doc(client, ticket_id) == after_edit
    assert after_edit["enrichment"] == enriched["enrichment"]

    client.collection("tickets").document(ticket_id).delete()
    for kind, after, before in ((WRITTEN, None, edited), (DELETED, None, edited)):
        reply = _send(functions.created, _change(firestore_emulator, kind, after, before))
        assert reply.status_code == 200, reply.text  # nothing to do: not retried
    assert not client.collection("tickets").document(ticket_id).get().exists
    httpx.post(functions.drain, timeout=30.0)
    assert receiver.requests_for(ticket_id) == 1

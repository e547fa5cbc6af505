"""The recorded events decoded with google-events, and the one code path both routes share,
with an in-memory store."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.gcp.documents import apply_delta, enriched_fields, is_processed, ticket_fields
from adapters.gcp.events import DocumentEvent, UnexpectedEvent, database_event, firestore_event
from adapters.gcp.intake import take_in
from core import Enricher, load_enricher
from core.errors import InvalidTicket
from core.ports import StoredTicket
from tests.unit.gcp.eventarc import cloud_event, recorded

AT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_the_recorded_firestore_event_decodes_to_the_document() -> None:
    event = firestore_event(cloud_event(recorded("firestore_document_created.json")))

    assert event.ticket_id == "Z8kq3xTtV1aQw0mLc2Hd"
    assert event.path == "tickets/Z8kq3xTtV1aQw0mLc2Hd"
    assert event.problem is None
    assert event.document is not None
    assert event.document["subject"] == "NameNode fails to start after upgrade"
    assert event.document["requester"] == {"email": "ann@example.com", "name": "Ann"}
    assert event.document["custom_fields"] == {"component": "HDFS", "nodes": 12}
    assert event.document["created_at"] == datetime(2026, 11, 23, 9, 14, 7, 512000, tzinfo=UTC)


def test_the_recorded_database_events_decode_to_the_value_after_the_write() -> None:
    created = database_event(cloud_event(recorded("database_ref_written_create.json")))
    written_back = database_event(cloud_event(recorded("database_ref_written_writeback.json")))
    edited = database_event(cloud_event(recorded("database_ref_written_agent_edit.json")))

    assert (
        created.ticket_id == "-Nz4aQ8mJ2kLp0XyT7rB"
        and created.path == "tickets/-Nz4aQ8mJ2kLp0XyT7rB"
    )
    assert not is_processed(created.document)
    assert is_processed(written_back.document) and is_processed(edited.document)
    assert edited.document is not None and edited.document["corrected_priority"] == "urgent"


def test_an_event_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(UnexpectedEvent):
        firestore_event(cloud_event(recorded("database_ref_written_create.json")))
    with pytest.raises(UnexpectedEvent):
        database_event(cloud_event(recorded("firestore_document_created.json")))


@pytest.mark.parametrize(
    ("data", "delta", "after"),
    [
        (None, {"a": 1}, {"a": 1}),
        (
            {"a": 1, "b": {"c": 2, "d": 3}},
            {"b": {"c": None, "e": 4}},
            {"a": 1, "b": {"d": 3, "e": 4}},
        ),
        ({"a": 1}, None, None),
        ({"a": 1}, "text", "text"),
    ],
)
def test_a_delta_applies_as_the_platform_describes(data: Any, delta: Any, after: Any) -> None:
    assert apply_delta(data, delta) == after


class FakeDocumentTicketStore:
    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.enqueued: list[str] = []

    def add(self, ticket: StoredTicket) -> tuple[StoredTicket, bool]:
        if is_processed(self.documents.get(ticket.id)):
            return ticket, False
        self.documents.setdefault(ticket.id, {}).update(enriched_fields(ticket))
        return ticket, True

    def add_with_delivery(self, ticket: StoredTicket, now: datetime) -> tuple[StoredTicket, bool]:
        stored, created = self.add(ticket)
        if created:
            self.enqueued.append(ticket.id)
        return stored, created

    def mark_invalid(self, ticket_id: str, error: InvalidTicket, at: datetime) -> bool:
        if is_processed(self.documents.get(ticket_id)):
            return False
        self.documents.setdefault(ticket_id, {}).update(
            {
                "enrichment_state": {"status": "invalid"},
                "problems": [p.field for p in error.problems],
            }
        )
        return True


@pytest.fixture(scope="module")
def enricher(small_model_dir: Path) -> Enricher:
    return load_enricher(small_model_dir)


def _event(document: dict[str, Any] | None) -> DocumentEvent:
    return DocumentEvent(
        "e1",
        "//firestore.googleapis.com/projects/p/databases/(default)",
        "t1",
        "tickets/t1",
        document,
    )


def test_a_ticket_is_enriched_once_and_enqueued_once(enricher: Enricher) -> None:
    store = FakeDocumentTicketStore()
    event = _event({"subject": "Disk full on node 7", "owner": "uid-ann"})

    assert take_in(event, enricher, store, deliver=True, now=lambda: AT) == "enriched"
    assert take_in(event, enricher, store, deliver=True, now=lambda: AT) == "duplicate"

    assert store.enqueued == ["t1"]
    assert store.documents["t1"]["received_at"] == "2026-11-23T10:00:00.000+00:00"


def test_a_processed_document_is_skipped_without_enriching(enricher: Enricher) -> None:
    store = FakeDocumentTicketStore()
    event = _event({"subject": "x", "owner": "u", "enrichment_state": {"status": "enriched"}})

    assert take_in(event, enricher, store, deliver=True) == "already-processed"
    assert store.documents == {} and store.enqueued == []


def test_without_delivery_nothing_is_enqueued(enricher: Enricher) -> None:
    store = FakeDocumentTicketStore()

    assert (
        take_in(_event({"description": "only a description"}), enricher, store, deliver=False)
        == "enriched"
    )
    assert store.enqueued == []


def test_document_fields_are_not_ticket_fields() -> None:
    document = {
        "subject": "s",
        "owner": "u",
        "corrected_priority": "urgent",
        "enrichment": {},
        "received_at": "t",
    }
    assert ticket_fields(document) == {"subject": "s"}


def test_an_invalid_ticket_is_marked_and_a_deleted_one_ignored(enricher: Enricher) -> None:
    store = FakeDocumentTicketStore()

    assert (
        take_in(_event({"subject": "", "owner": "u"}), enricher, store, deliver=True) == "invalid"
    )
    assert store.documents["t1"]["problems"] == ["ticket"]
    assert take_in(replace(_event(None)), enricher, store, deliver=True) == "deleted"
    assert store.enqueued == []


@pytest.mark.parametrize("kind", ["updated", "written"])
def test_firestore_updated_and_written_events_decode_like_created(kind: str) -> None:
    from google.events.cloud.firestore_v1 import DocumentEventData

    record = recorded("firestore_document_created.json")
    created = firestore_event(cloud_event(record))
    record["headers"]["ce-type"] = f"google.cloud.firestore.document.v1.{kind}"

    event = firestore_event(cloud_event(record))

    assert (event.ticket_id, event.path, event.document) == (
        created.ticket_id,
        created.path,
        created.document,
    )
    # A written event for a deletion carries only the document before it.
    data = DocumentEventData.deserialize(base64.b64decode(record["data_base64"]))
    deleted = DocumentEventData(old_value=data.value)
    record["data_base64"] = base64.b64encode(DocumentEventData.serialize(deleted)).decode()
    gone = firestore_event(cloud_event(record))
    assert gone.document is None and gone.path == created.path


@pytest.mark.parametrize("kind", ["created", "updated"])
def test_database_created_and_updated_events_decode_like_written(kind: str) -> None:
    record = recorded("database_ref_written_create.json")
    written = database_event(cloud_event(record))
    record["headers"]["ce-type"] = f"google.firebase.database.ref.v1.{kind}"

    assert database_event(cloud_event(record)) == written

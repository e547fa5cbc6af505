"""The recorded events decoded with google-events, and the one code path both routes share,
with an in-memory store."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cloudevents.http import from_http

from adapters.gcp.documents import apply_delta, enriched_fields, is_processed, ticket_fields
from adapters.gcp.events import DocumentEvent, UnexpectedEvent, database_event, firestore_event
from adapters.gcp.intake import take_in
from core import Enricher, load_enricher
from core.errors import InvalidTicket, StoreError
from core.ports import StoredTicket
from tests.unit.gcp.eventarc import cloud_event, database_raw, firestore_raw, recorded

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


class RecordingRejects:
    """What `take_in` hands to the dead-letter topic, and whether the document was marked then."""

    def __init__(self, store: FakeDocumentTicketStore) -> None:
        self.store = store
        self.rejected: list[tuple[str, str, bool]] = []

    def __call__(self, event: DocumentEvent, error: InvalidTicket, at: datetime) -> None:
        self.rejected.append((event.ticket_id, str(error), event.ticket_id in self.store.documents))


def test_an_invalid_ticket_is_rejected_with_the_reason_before_it_is_marked(
    enricher: Enricher,
) -> None:
    store = FakeDocumentTicketStore()
    reject = RecordingRejects(store)

    outcome = take_in(
        _event({"subject": "", "owner": "u"}), enricher, store, deliver=True, reject=reject
    )

    assert outcome == "invalid"
    [(ticket_id, reason, marked_first)] = reject.rejected
    assert ticket_id == "t1" and "ticket" in reason and not marked_first
    assert store.documents["t1"]["problems"] == ["ticket"]
    # A valid ticket, a processed one and a deletion are not rejected.
    for document in ({"subject": "Disk full", "owner": "u"}, None):
        take_in(
            replace(_event(document), ticket_id="t2"), enricher, store, deliver=True, reject=reject
        )
    assert len(reject.rejected) == 1


def test_a_failed_rejection_leaves_the_document_unmarked_for_the_retry(enricher: Enricher) -> None:
    store = FakeDocumentTicketStore()

    def down(event: DocumentEvent, error: InvalidTicket, at: datetime) -> None:
        raise StoreError("Pub/Sub is down")

    with pytest.raises(StoreError):
        take_in(_event({"subject": "", "owner": "u"}), enricher, store, deliver=True, reject=down)
    assert store.documents == {}


def _as_sent(data: Any) -> Any:
    return data


# The functions read the events' data as it was sent (adapters.gcp.main), as these tests do.
@pytest.mark.parametrize(
    "data", [b"", b"\xff\xfe not protobuf", b'{"subject": "json, not protobuf"}', b"[1, 2]"]
)
def test_undecodable_firestore_data_is_a_problem_naming_the_document(data: bytes) -> None:
    event = firestore_event(
        from_http(*firestore_raw("tickets/bad1", data), data_unmarshaller=_as_sent)
    )

    assert event.ticket_id == "bad1" and event.path == "tickets/bad1"
    assert event.document == {} and event.problem is not None
    assert [p.field for p in event.problem.problems] == ["body"]


@pytest.mark.parametrize(
    ("delta", "field"),
    [
        (b'{"subject": "x", "n": NaN}', "delta.n"),
        (b'{"subject": "caf\xe9"}', "body"),
        (b'{"subject": "x \\ud800 y"}', "delta.subject"),
        (b"[" * 5000, "body"),
        (b'{"subject": "x", "n": ' + b"9" * 5000 + b"}", "body"),
        (b"[1, 2]", "ticket"),
    ],
    ids=["nan", "not-utf8", "lone-surrogate", "unclosed-nesting", "long-integer", "array"],
)
def test_database_data_outside_the_limits_is_a_problem_naming_the_node(
    delta: bytes, field: str
) -> None:
    event = database_event(
        from_http(*database_raw("tickets/-Nbad", delta), data_unmarshaller=_as_sent)
    )

    assert event.ticket_id == "-Nbad" and event.path == "tickets/-Nbad"
    assert event.document == {} and event.problem is not None
    assert [p.field for p in event.problem.problems] == [field]

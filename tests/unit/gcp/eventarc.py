"""The recorded event shapes under tests/events/gcp/, and new events built on them."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloudevents.http import CloudEvent, from_http

EVENTS = Path(__file__).resolve().parents[2] / "events" / "gcp"


def recorded(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return data


def request_of(record: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    """The HTTP headers and body Eventarc sends for a recorded event."""
    if "data_base64" in record:
        return dict(record["headers"]), base64.b64decode(record["data_base64"])
    return dict(record["headers"]), json.dumps(record["data"]).encode()


def cloud_event(record: dict[str, Any]) -> CloudEvent:
    """The event as the Functions Framework hands it to the function (cloudevents' from_http)."""
    headers, body = request_of(record)
    return from_http(headers, body)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def firestore_created(
    document_pb: bytes, project: str, event_id: str | None = None
) -> tuple[dict[str, str], bytes]:
    """A document-created event for a document read from the emulator (its protobuf bytes, as
    Firestore's API returns it: the wire format google-events' Document shares)."""
    return firestore_document_event(
        "google.cloud.firestore.document.v1.created", document_pb, None, project, event_id
    )


def firestore_document_event(
    event_type: str,
    document_pb: bytes | None,
    old_document_pb: bytes | None,
    project: str,
    event_id: str | None = None,
) -> tuple[dict[str, str], bytes]:
    """A created, updated or written event as Eventarc sends it: ``value`` is the document after
    the write (None for a deletion), ``old_value`` the one before (None for a creation)."""
    from google.events.cloud.firestore_v1 import Document, DocumentEventData

    document = Document.deserialize(document_pb) if document_pb is not None else None
    old = Document.deserialize(old_document_pb) if old_document_pb is not None else None
    named = document or old
    assert named is not None, "an event names a document before or after the write"
    path = named.name.split("/documents/", 1)[1]
    headers = dict(recorded("firestore_document_created.json")["headers"])
    headers.update(
        {
            "ce-type": event_type,
            "ce-id": event_id or str(uuid.uuid4()),
            "ce-source": f"//firestore.googleapis.com/projects/{project}/databases/(default)",
            "ce-subject": f"documents/{path}",
            "ce-time": _now(),
            "ce-project": project,
            "ce-document": path,
        }
    )
    data = DocumentEventData()
    if document is not None:
        data.value = document
    if old is not None:
        data.old_value = old
    return headers, DocumentEventData.serialize(data)


def database_written(
    ref: str,
    before: Any,
    delta: Any,
    event_id: str | None = None,
    event_type: str = "google.firebase.database.ref.v1.written",
) -> tuple[dict[str, str], bytes]:
    """A reference-written (or created, or updated) event in the recorded shape, for ``ref``
    (``tickets/<key>``)."""
    headers = dict(recorded("database_ref_written_create.json")["headers"])
    headers.update(
        {
            "ce-type": event_type,
            "ce-id": event_id or base64.b64encode(uuid.uuid4().bytes).decode(),
            "ce-subject": f"refs/{ref}",
            "ce-ref": ref,
            "ce-time": _now(),
        }
    )
    return headers, json.dumps({"data": before, "delta": delta}).encode()


def firestore_raw(
    ref: str, data: bytes, project: str = "demo-ticket-enrich"
) -> tuple[dict[str, str], bytes]:
    """A created event for the document at ``ref`` (``tickets/<id>``) whose data is ``data`` as
    it is, protobuf or not: what a corrupted or hostile delivery would carry."""
    headers = dict(recorded("firestore_document_created.json")["headers"])
    headers.update(
        {
            "ce-id": str(uuid.uuid4()),
            "ce-source": f"//firestore.googleapis.com/projects/{project}/databases/(default)",
            "ce-subject": f"documents/{ref}",
            "ce-time": _now(),
            "ce-project": project,
            "ce-document": ref,
        }
    )
    return headers, data


def database_raw(ref: str, delta: bytes) -> tuple[dict[str, str], bytes]:
    """A written event for a new node whose delta is the JSON text ``delta`` as it is (valid
    JSON or not): what a client that writes hostile JSON, or a corrupted delivery, produces."""
    headers, _ = database_written(ref, None, None)
    return headers, b'{"data": null, "delta": ' + delta + b"}"

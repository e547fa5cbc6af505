"""The two triggers' CloudEvents, decoded with Google's published event types.

Firestore sends ``google.cloud.firestore.document.v1.created``, ``.updated`` or ``.written``
with a protobuf ``DocumentEventData`` body (``value`` is the document after the write, absent
when it was deleted); the Realtime Database sends ``google.firebase.database.ref.v1.created``,
``.updated`` or ``.written`` with a JSON ``ReferenceEventData`` body. Either trigger may be
deployed on any of the three: every one becomes one `DocumentEvent`, which is all the rest of the
adapter sees, and the document's marker (`adapters.gcp.documents`) makes a new ticket enriched
once whichever event arrives first, and the service's write-back and agents' edits ignored.

Data that cannot be decoded at all (not protobuf, not JSON, or JSON outside the core's limits:
nested too deeply, NaN, a 5,000-digit integer, a lone surrogate, too many bytes) is no reason to
fail: every retry would fail alike. It becomes a `DocumentEvent` with a ``problem`` and an empty
document, named by the event's subject, and is rejected like any invalid ticket.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from adapters.gcp.documents import apply_delta
from core.errors import FieldProblem, InvalidTicket
from core.schema import Limits, decode_json

if TYPE_CHECKING:
    from cloudevents.http import CloudEvent
    from google.protobuf.struct_pb2 import Value as StructValue

FIRESTORE_CREATED = "google.cloud.firestore.document.v1.created"
FIRESTORE_UPDATED = "google.cloud.firestore.document.v1.updated"
FIRESTORE_WRITTEN = "google.cloud.firestore.document.v1.written"
FIRESTORE_TYPES = frozenset({FIRESTORE_CREATED, FIRESTORE_UPDATED, FIRESTORE_WRITTEN})
DATABASE_CREATED = "google.firebase.database.ref.v1.created"
DATABASE_UPDATED = "google.firebase.database.ref.v1.updated"
DATABASE_WRITTEN = "google.firebase.database.ref.v1.written"
DATABASE_TYPES = frozenset({DATABASE_CREATED, DATABASE_UPDATED, DATABASE_WRITTEN})


class UnexpectedEvent(ValueError):
    """The function received an event it is not deployed for (a wrong trigger filter)."""


@dataclass(frozen=True)
class DocumentEvent:
    """A ticket document as one trigger delivered it.

    ``document`` is the document's content after the write (None when it was deleted);
    ``problem`` is set instead when a value cannot be represented as a ticket field.
    """

    event_id: str
    source: str
    ticket_id: str
    path: str
    document: dict[str, Any] | None
    problem: InvalidTicket | None = None


def _decode_value(value: Any, path: str) -> Any:
    """One Firestore ``Value`` (a raw protobuf message) as a Python value."""
    kind = value.WhichOneof("value_type")
    if kind == "null_value" or kind is None:
        return None
    if kind == "map_value":
        return {k: _decode_value(v, f"{path}.{k}") for k, v in value.map_value.fields.items()}
    if kind == "array_value":
        return [_decode_value(v, f"{path}.{i}") for i, v in enumerate(value.array_value.values)]
    if kind == "timestamp_value":
        stamp: datetime = value.timestamp_value.ToDatetime(tzinfo=UTC)
        return stamp
    if kind in ("string_value", "boolean_value", "integer_value", "double_value"):
        return getattr(value, kind)
    # bytes, references and geo points have no place in a ticket.
    raise InvalidTicket([FieldProblem(path, f"is a Firestore {kind.removesuffix('_value')}")])


def _undecodable(event: CloudEvent, path: str, problem: InvalidTicket) -> DocumentEvent:
    path = path.strip("/")
    return DocumentEvent(
        str(event["id"]), str(event["source"]), path.rsplit("/", 1)[-1], path, {}, problem
    )


def _subject_path(event: CloudEvent, prefix: str) -> str:
    return str(event.get("subject") or "").removeprefix(prefix)


def firestore_event(event: CloudEvent) -> DocumentEvent:
    """Decode a Firestore document created, updated or written event (binary mode, protobuf
    data); a deleted document's ``document`` is None."""
    from google.events.cloud.firestore_v1 import DocumentEventData
    from google.protobuf.message import DecodeError

    if event["type"] not in FIRESTORE_TYPES:
        raise UnexpectedEvent(f"expected one of {sorted(FIRESTORE_TYPES)}, got {event['type']}")
    data = event.get_data()
    try:
        if not isinstance(data, bytes):
            # The Functions Framework parses data that looks like JSON before the function runs.
            raise DecodeError(f"the data is {type(data).__name__}, not protobuf bytes")
        message = DocumentEventData.pb(DocumentEventData.deserialize(data))
    except DecodeError as exc:
        refused = InvalidTicket([FieldProblem("body", f"is not a Firestore document event: {exc}")])
        return _undecodable(event, _subject_path(event, "documents/"), refused)
    # A written event for a deletion has only the old value; the subject names the document.
    name = message.value.name or message.old_value.name or str(event.get("subject") or "")
    path = name.split("/documents/", 1)[1] if "/documents/" in name else name
    path = path.removeprefix("documents/")
    problem = None
    document: dict[str, Any] | None = None
    if message.HasField("value"):
        try:
            document = {k: _decode_value(v, k) for k, v in message.value.fields.items()}
        except InvalidTicket as exc:
            problem, document = exc, {}
    return DocumentEvent(
        event_id=str(event["id"]),
        source=str(event["source"]),
        ticket_id=path.rsplit("/", 1)[-1],
        path=path,
        document=document,
        problem=problem,
    )


def _struct_value(value: StructValue) -> Any:
    from google.protobuf.json_format import MessageToDict

    kind = value.WhichOneof("kind")
    if kind is None or kind == "null_value":
        return None
    return MessageToDict(value)


def _database_json(data: Any, limits: Limits | None) -> str:
    """The event's JSON text, checked against the core's limits (`core.schema.decode_json`);
    `InvalidTicket` if it is outside them."""
    if not isinstance(data, bytes | str):
        # The Functions Framework has parsed it already (with Python's lenient json module).
        try:
            data = json.dumps(data, allow_nan=False)
        except (ValueError, RecursionError) as exc:
            raise InvalidTicket([FieldProblem("body", f"is not valid JSON: {exc}")]) from None
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    limits = limits or Limits()
    # The envelope carries the value before the write besides the ticket.
    decode_json(raw, limits, max_bytes=2 * limits.ticket_bytes)
    return raw.decode("utf-8")


def database_event(event: CloudEvent, limits: Limits | None = None) -> DocumentEvent:
    """Decode a Realtime Database reference created, updated or written event (JSON data)."""
    from google.events.firebase.database_v1 import ReferenceEventData
    from google.protobuf.json_format import ParseError

    if event["type"] not in DATABASE_TYPES:
        raise UnexpectedEvent(f"expected one of {sorted(DATABASE_TYPES)}, got {event['type']}")
    ref = str(event.get("ref") or _subject_path(event, "refs/")).strip("/")
    try:
        text = _database_json(event.get_data(), limits)
        message = ReferenceEventData.pb(ReferenceEventData.from_json(text))
    except InvalidTicket as exc:
        return _undecodable(event, ref, exc)
    except ParseError as exc:  # JSON, but not a ReferenceEventData
        problem = InvalidTicket([FieldProblem("body", f"is not a database event: {exc}")])
        return _undecodable(event, ref, problem)
    before = _struct_value(message.data) if message.HasField("data") else None
    delta = _struct_value(message.delta) if message.HasField("delta") else None
    after = apply_delta(before, delta)
    if after is not None and not isinstance(after, dict):
        problem = InvalidTicket([FieldProblem("ticket", "must be a JSON object")])
        return DocumentEvent(
            str(event["id"]), str(event["source"]), ref.rsplit("/", 1)[-1], ref, {}, problem
        )
    return DocumentEvent(
        event_id=str(event["id"]),
        source=str(event["source"]),
        ticket_id=ref.rsplit("/", 1)[-1],
        path=ref,
        document=after,
    )

"""A row of a closed-ticket export read as a ticket, the same way by every batch entry point.

A row is a decoded record: a CSV row, a JSONL line, a Parquet row. A model's artifact records,
in ``metadata["training_data"]["spec"]``, which export columns it was trained on (the subject,
description, form-field, id and creation-time columns, and the time format, whether given on
the command line or by a preset). A row that carries those text columns instead of the
ticket's own ``subject``/``description`` is read with them, so a helpdesk export enriches as
it was exported; any other row is read as ticket fields, its other non-empty keys becoming
custom fields. The ticket that comes out is not yet validated: `Enricher.enrich` does that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.errors import FieldProblem, InvalidTicket
from core.schema import Ticket

# The ticket schema's own fields: a ticket-shaped row's other keys become custom fields.
TICKET_KEYS: tuple[str, ...] = tuple(Ticket.model_fields)
_EMPTY = (None, "")


@dataclass(frozen=True)
class ExportColumns:
    """Which columns of a helpdesk export carry which part of a ticket, as training read them."""

    subject_column: str | None = None
    description_column: str | None = None
    field_columns: tuple[str, ...] = ()
    id_column: str | None = None
    time_column: str | None = None
    time_format: str | None = None

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> ExportColumns:
        """The columns of a training-data spec as an artifact records it (None: no export)."""
        spec = spec or {}
        return cls(
            subject_column=spec.get("subject_column") or None,
            description_column=spec.get("description_column") or None,
            field_columns=tuple(spec.get("field_columns") or ()),
            id_column=spec.get("id_column") or None,
            time_column=spec.get("time_column") or None,
            time_format=spec.get("time_format") or None,
        )

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> ExportColumns:
        """The export columns a model was trained on, from its artifact's metadata."""
        training_data = metadata.get("training_data") or {}
        return cls.from_spec(training_data.get("spec"))

    def is_export_row(self, row: Mapping[str, Any]) -> bool:
        """Whether a row carries the export's text columns rather than the ticket's own."""
        if "subject" in row or "description" in row:
            return False
        return any(
            c is not None and c in row for c in (self.subject_column, self.description_column)
        )

    def ticket(self, row: Any) -> dict[str, Any]:
        """The ticket a row stands for, not yet validated.

        Raises `InvalidTicket` when the row is not an object, or when its creation time cannot
        be read in the export's time format (the problem names the column).
        """
        if not isinstance(row, Mapping):
            raise InvalidTicket([FieldProblem("ticket", "must be a JSON object")])
        if self.is_export_row(row):
            return self._export_ticket(row)
        ticket = {k: v for k, v in row.items() if k in TICKET_KEYS and v not in _EMPTY}
        extra = {k: v for k, v in row.items() if k not in TICKET_KEYS and v not in _EMPTY}
        if extra and "custom_fields" not in ticket:
            ticket["custom_fields"] = extra
        return ticket

    def _export_ticket(self, row: Mapping[str, Any]) -> dict[str, Any]:
        ticket: dict[str, Any] = {
            "subject": _cell(row, self.subject_column) or "",
            "description": _cell(row, self.description_column) or "",
            "custom_fields": {f: row[f] for f in self.field_columns if row.get(f) not in _EMPTY},
        }
        external_id = _cell(row, self.id_column)
        if external_id not in _EMPTY:
            ticket["external_id"] = str(external_id)
        if self.time_column is not None:
            created = row.get(self.time_column)
            # A blank time is a missing one: the ticket then has no creation time.
            if created is not None and str(created).strip():
                ticket["created_at"] = export_time(str(created), self.time_format, self.time_column)
        return ticket


def _cell(row: Mapping[str, Any], column: str | None) -> Any:
    return row.get(column) if column is not None else None


def parse_export_time(text: str, time_format: str | None) -> datetime:
    """A time from an export, read with the given `datetime.strptime` format, else as ISO 8601;
    a time without a zone is UTC. The one reading of export times, for training and serving.

    Raises `ValueError` saying what was expected.
    """
    text = text.strip()
    try:
        parsed = (
            datetime.strptime(text, time_format)
            if time_format
            else datetime.fromisoformat(text.replace("Z", "+00:00"))
        )
    except ValueError:
        expected = f"format {time_format!r}" if time_format else "ISO 8601"
        raise ValueError(f"cannot read {text!r} as a time in {expected}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def export_time(text: str, time_format: str | None, column: str) -> str:
    """A creation time from an export as ISO 8601 (`parse_export_time`).

    Raises `InvalidTicket` naming the column and the expected format.
    """
    try:
        return parse_export_time(text, time_format).isoformat()
    except ValueError as exc:
        raise InvalidTicket([FieldProblem(column, str(exc))]) from None

"""One input record in, one output row out: the part of the batch job both engines share.

A record is a JSON object (a JSONL line, a CSV row, a Parquet row), read as a ticket by the
core's `core.export.ExportColumns`, exactly as `ticket-enrich enrich` and the AWS S3 batch read
it: a helpdesk export's row with the columns the model was trained on, so history enriches as
it was exported; anything else as ticket fields. The row is then validated and enriched by the
core. Whatever goes wrong with one record (invalid
JSON, a failed validation, an unreadable creation time) becomes an error row with its reason:
one bad record never stops a batch.

Nothing here imports Spark, pandas or pyarrow: the same code runs in a Spark Python worker and
in the single-process engine.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from core.enricher import Enricher
from core.errors import InvalidTicket, TicketEnrichError
from core.export import ExportColumns
from core.schema import decode_json

# The start of a rejected record kept in the errors output, enough to find and fix it.
RAW_MAX_CHARS = 16 * 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC) - _EPOCH

# Output columns, in order; `created_at_us` is microseconds since the epoch (UTC), which each
# engine stores as a UTC timestamp named `created_at`.
ENRICHED_COLUMNS = (
    "row",
    "source",
    "external_id",
    "created_at_us",
    "created_date",
    "priority",
    "priority_confidence",
    "priority_band",
    "needs_review",
    "language",
    "sentiment",
    "resolution_hours",
    "tags",
    "model_version",
    "ticket",
    "enrichment",
)
ERROR_COLUMNS = ("row", "source", "reason", "raw")
# Every row the record function returns has all of these; `reason` is None when enriched.
ALL_COLUMNS = (*ENRICHED_COLUMNS, "reason", "raw")

FORMATS = ("csv", "jsonl", "parquet")
SUFFIXES = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
MALFORMED_CSV = "malformed CSV record: its fields do not match the header"


@dataclass(frozen=True)
class BatchSummary:
    """What one batch run wrote."""

    enriched: int
    rejected: int
    output: str
    errors: str

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON."""
        return {
            "enriched": self.enriched,
            "rejected": self.rejected,
            "output": self.output,
            "errors": self.errors,
        }


def input_format(location: str, given: str | None = None) -> str:
    """The input's format: as given, else from the file name's suffix."""
    if given:
        if given not in FORMATS:
            raise TicketEnrichError(f"unknown input format {given!r}; use {', '.join(FORMATS)}")
        return given
    suffix = Path(location.rstrip("/")).suffix.lower()
    if suffix not in SUFFIXES:
        raise TicketEnrichError(
            f"{location}: cannot tell the format from the name; pass --format "
            f"({', '.join(FORMATS)})"
        )
    return SUFFIXES[suffix]


def errors_location(output: str, errors: str | None = None) -> str:
    """Where rejected records go: as given, else `OUTPUT/_errors`, which readers of the
    enriched dataset skip (Spark and pyarrow ignore names starting with an underscore)."""
    return errors or f"{output.rstrip('/')}/_errors"


class RecordMapper:
    """Turns records into output rows with one loaded enricher.

    ``load_date`` is the creation date given to tickets that carry no creation time: the date
    the batch was loaded, the same for every record of one run.
    """

    def __init__(self, enricher: Enricher, load_date: date) -> None:
        self.enricher = enricher
        self.load_date = load_date.isoformat()
        self.columns = ExportColumns.from_metadata(enricher.metadata)

    def ticket(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The ticket a record stands for (not yet validated); see `ExportColumns.ticket`."""
        return self.columns.ticket(record)

    def map_text(self, row: int, source: str, text: str) -> dict[str, Any]:
        """One output row from a record given as JSON text (a JSONL line)."""
        try:
            record = decode_json(text, max_bytes=len(text.encode("utf-8", "surrogatepass")))
        except InvalidTicket as exc:
            return error_row(row, source, "; ".join(p.message for p in exc.problems), text)
        return self.map_record(row, source, record)

    def map_record(self, row: int, source: str, record: Any) -> dict[str, Any]:
        """One output row from a decoded record: enriched, or rejected with the reason (and
        the record, as JSON)."""
        try:
            return self._enriched_row(row, source, self.enricher.enrich(self.ticket(record)))
        except InvalidTicket as exc:
            return error_row(row, source, str(exc), record)
        except Exception as exc:  # one record must never stop a batch of millions
            reason = f"enrichment failed: {type(exc).__name__}: {exc}"
            return error_row(row, source, reason, record)

    def _enriched_row(self, row: int, source: str, enriched: dict[str, Any]) -> dict[str, Any]:
        ticket, enrichment = enriched["ticket"], enriched["enrichment"]
        created_us, created_date = None, self.load_date
        if ticket.get("created_at"):
            created = datetime.fromisoformat(ticket["created_at"])
            created = (created if created.tzinfo else created.replace(tzinfo=UTC)).astimezone(UTC)
            created_us = (created - _EPOCH) // _MICROSECOND
            created_date = created.date().isoformat()
        priority = enrichment["priority"]
        resolution = enrichment.get("resolution_time")
        return {
            "row": row,
            "source": source,
            "external_id": ticket.get("external_id"),
            "created_at_us": created_us,
            "created_date": created_date,
            "priority": priority["label"],
            "priority_confidence": priority["confidence"],
            "priority_band": priority["band"],
            "needs_review": enrichment["needs_review"],
            "language": (enrichment.get("language") or {}).get("code"),
            "sentiment": (enrichment.get("sentiment") or {}).get("score"),
            "resolution_hours": resolution["hours"] if resolution else None,
            "tags": enrichment.get("tags"),
            "model_version": enrichment["model"]["version"],
            "ticket": json.dumps(ticket, ensure_ascii=False),
            "enrichment": json.dumps(enrichment, ensure_ascii=False),
            "reason": None,
            "raw": None,
        }


def error_row(row: int, source: str, reason: str, raw: Any) -> dict[str, Any]:
    """An output row for a rejected record: its position, the reason, and its start."""
    if not isinstance(raw, str):
        try:
            raw = json.dumps(raw, ensure_ascii=False, default=str)
        except ValueError:
            raw = repr(raw)
    # A lone surrogate cannot be written as UTF-8; keep the rest of the record readable.
    raw = raw[:RAW_MAX_CHARS].encode("utf-8", "backslashreplace").decode("utf-8")
    empty = dict.fromkeys(ALL_COLUMNS)
    return {**empty, "row": row, "source": source, "reason": reason, "raw": raw}

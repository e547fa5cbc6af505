"""The output rows as Arrow batches: one schema for both engines, so their Parquet agrees."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from adapters.spark.records import ALL_COLUMNS, ENRICHED_COLUMNS, ERROR_COLUMNS

# What the record function returns, column by column (Spark's mapInArrow output is the same).
ROWS = pa.schema(
    [
        ("row", pa.int64()),
        ("source", pa.string()),
        ("external_id", pa.string()),
        ("created_at_us", pa.int64()),
        ("created_date", pa.string()),
        ("priority", pa.string()),
        ("priority_confidence", pa.float64()),
        ("priority_band", pa.string()),
        ("needs_review", pa.bool_()),
        ("language", pa.string()),
        ("sentiment", pa.float64()),
        ("resolution_hours", pa.float64()),
        ("tags", pa.list_(pa.string())),
        ("model_version", pa.string()),
        ("ticket", pa.string()),
        ("enrichment", pa.string()),
        ("reason", pa.string()),
        ("raw", pa.string()),
    ]
)
assert tuple(ROWS.names) == ALL_COLUMNS

CREATED_AT = pa.timestamp("us", tz="UTC")
# The enriched dataset as written: `created_at_us` becomes a UTC timestamp `created_at`, and
# `created_date` becomes the partition directory.
ENRICHED = pa.schema(
    [
        ("created_at", CREATED_AT) if name == "created_at_us" else ROWS.field(name)
        for name in ENRICHED_COLUMNS
    ]
)
ERRORS = pa.schema([ROWS.field(name) for name in ERROR_COLUMNS])


def rows_batch(rows: Sequence[dict[str, Any]]) -> pa.RecordBatch:
    """The record function's rows as one Arrow batch of `ROWS`."""
    return pa.RecordBatch.from_pylist(list(rows), schema=ROWS)


def _table(rows: pa.RecordBatch | pa.Table) -> pa.Table:
    return pa.Table.from_batches([rows]) if isinstance(rows, pa.RecordBatch) else rows


def enriched_table(rows: pa.RecordBatch | pa.Table) -> pa.Table:
    """The enriched rows of a batch, with `created_at` as a timestamp."""
    table = _table(rows)
    table = table.filter(pc.is_null(table.column("reason")))
    created = table.column("created_at_us").cast(CREATED_AT)
    columns = [
        created if name == "created_at_us" else table.column(name) for name in ENRICHED_COLUMNS
    ]
    return pa.Table.from_arrays(columns, schema=ENRICHED)


def errors_table(rows: pa.RecordBatch | pa.Table) -> pa.Table:
    """The rejected rows of a batch."""
    table = _table(rows)
    table = table.filter(pc.is_valid(table.column("reason")))
    return table.select(list(ERROR_COLUMNS)).cast(ERRORS)

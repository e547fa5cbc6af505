"""The batch job in one process, for files that one machine handles: `--engine local`.

It streams: records are read one at a time (CSV and JSONL line by line, Parquet a row group at
a time), enriched, and written `WRITE_ROWS` at a time, so memory does not grow with the
input. The output is what the Spark engine writes: Parquet partitioned by creation date, and
the rejected records with their reason beside it.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from adapters.spark.arrow import ENRICHED, ERRORS, enriched_table, errors_table, rows_batch
from adapters.spark.records import (
    MALFORMED_CSV,
    SUFFIXES,
    BatchSummary,
    RecordMapper,
    error_row,
    errors_location,
    input_format,
)
from core.enricher import Enricher
from core.errors import TicketEnrichError

BATCH_ROWS = 1000
# Rows written at a time: each write adds one row group to every date it touches, and history
# spreads over thousands of dates, so small writes mean tiny row groups and a bloated output.
WRITE_ROWS = 25_000


def _files(path: Path, fmt: str) -> list[Path]:
    if path.is_dir():
        suffixes = {s for s, f in SUFFIXES.items() if f == fmt}
        return sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith(("_", "."))
        )
    if not path.exists():
        raise TicketEnrichError(f"{path}: no such file or directory")
    return [path]


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _records(path: Path, fmt: str, mapper: RecordMapper) -> Iterator[dict[str, Any]]:
    """Output rows, one per record, numbered across the input's files from 1 (JSONL: by
    line, blank lines counted but skipped, as `ticket-enrich enrich` numbers them)."""
    row = 0
    for file in _files(path, fmt):
        source = file.resolve().as_uri()
        if fmt == "jsonl":
            with file.open(encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    row += 1
                    text = line.rstrip("\r\n")
                    if text.strip():
                        yield mapper.map_text(row, source, text)
        elif fmt == "csv":
            with file.open(encoding="utf-8", newline="") as handle:
                for record in csv.DictReader(handle):
                    row += 1
                    if None in record or None in record.values():
                        yield error_row(row, source, MALFORMED_CSV, record)
                    else:
                        yield mapper.map_record(row, source, record)
        else:
            for batch in pq.ParquetFile(file).iter_batches(batch_size=BATCH_ROWS):
                for record in batch.to_pylist():
                    row += 1
                    # As Spark hands them over: JSON values, times as ISO 8601 text.
                    plain = json.loads(json.dumps(record, default=_jsonable))
                    yield mapper.map_record(row, source, plain)


def run_local_batch(
    enricher: Enricher,
    input_path: str,
    output: str,
    *,
    fmt: str | None = None,
    errors: str | None = None,
    load_date: date,
    overwrite: bool = False,
) -> BatchSummary:
    """Enrich a file (or a directory of files) into a Parquet dataset partitioned by
    `created_date`, and the rejected records into a Parquet file of their own."""
    fmt = input_format(input_path, fmt)
    out, errors_dir = Path(output), Path(errors_location(output, errors))
    for target in (out, errors_dir):
        if target.exists() and any(target.iterdir()):
            if not overwrite:
                raise TicketEnrichError(f"{target} exists; pass --overwrite to replace it")
            shutil.rmtree(target)
    errors_dir.mkdir(parents=True, exist_ok=True)
    mapper = RecordMapper(enricher, load_date)
    counts = {"enriched": 0, "rejected": 0}

    with pq.ParquetWriter(errors_dir / "part-0.parquet", ERRORS) as rejected:

        def enriched_batches() -> Iterator[pa.RecordBatch]:
            # Rows become Arrow every BATCH_ROWS (compact), and are written WRITE_ROWS at a time.
            pending: list[dict[str, Any]] = []
            batches: list[pa.RecordBatch] = []
            queued = 0
            for output_row in _records(Path(input_path), fmt, mapper):
                pending.append(output_row)
                if len(pending) == BATCH_ROWS:
                    batches.append(rows_batch(pending))
                    queued, pending = queued + len(pending), []
                    if queued >= WRITE_ROWS:
                        yield from _split(pa.Table.from_batches(batches), rejected, counts)
                        batches, queued = [], 0
            if pending:
                batches.append(rows_batch(pending))
            if batches:
                yield from _split(pa.Table.from_batches(batches), rejected, counts)

        pads.write_dataset(
            enriched_batches(),
            out,
            schema=ENRICHED,
            format="parquet",
            partitioning=pads.partitioning(
                pa.schema([ENRICHED.field("created_date")]), flavor="hive"
            ),
            basename_template="part-{i}.parquet",
            # One file per date as long as the dates fit (each open file costs a little memory).
            max_open_files=8192,
            max_partitions=1_000_000,
            existing_data_behavior="overwrite_or_ignore",
        )
    return BatchSummary(counts["enriched"], counts["rejected"], str(out), str(errors_dir))


def _split(
    rows: pa.Table, rejected: pq.ParquetWriter, counts: dict[str, int]
) -> Iterator[pa.RecordBatch]:
    bad = errors_table(rows)
    if bad.num_rows:
        rejected.write_table(bad)
        counts["rejected"] += bad.num_rows
    good = enriched_table(rows)
    counts["enriched"] += good.num_rows
    yield from good.combine_chunks().to_batches()

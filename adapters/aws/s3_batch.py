"""A CSV or JSONL batch dropped under the input prefix becomes enriched JSONL under the output
prefix, streamed both ways: rows are read from the object's body as they arrive and written out
through a multipart upload, so memory holds one part (8 MiB by default), whatever the file's
size. Each row is read as a ticket by the core's `core.export.ExportColumns`, as
``ticket-enrich enrich`` and the Spark batch read it: a helpdesk export's row with the columns
the model was trained on, any other row as ticket fields. Rows that fail go to a sidecar
``<name>.errors.jsonl`` (line number and problems), never failing the batch: a JSONL line that
is not UTF-8 is one failed row, since lines are split on the byte ``\n`` and each is decoded
alone (a CSV file is text as a whole: past bytes that are not UTF-8, the rest of it is one
error). Output keys
derive from the input key, so a retried event rewrites the same objects: one effect.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from adapters.aws.telemetry import logger
from core.enricher import Enricher
from core.errors import InvalidTicket
from core.export import ExportColumns
from core.schema import decode_json

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord

_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
_READ_BYTES = 64 * 1024


@dataclass
class BatchReport:
    """What one batch object produced."""

    source: str
    output: str
    errors: str | None
    rows: int = 0
    enriched: int = 0
    failed: int = 0


class MultipartWriter:
    """Bytes written to one S3 object through a multipart upload, one part in memory at a time.

    Closing completes the upload; aborting (or an exception inside ``with``) abandons it, so a
    failed batch leaves no half-written output.
    """

    def __init__(
        self, client: Any, bucket: str, key: str, part_bytes: int, *, write_empty: bool = True
    ) -> None:
        self._client = client
        self._write_empty = write_empty
        self.bucket = bucket
        self.key = key
        self._part_bytes = part_bytes
        self._buffer = io.BytesIO()
        self._parts: list[dict[str, Any]] = []
        self._upload_id: str | None = None
        self.bytes_written = 0

    def write(self, data: bytes) -> None:
        self._buffer.write(data)
        self.bytes_written += len(data)
        if self._buffer.tell() >= self._part_bytes:
            self._flush_part()

    def _flush_part(self) -> None:
        if self._upload_id is None:
            created = self._client.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType="application/x-ndjson"
            )
            self._upload_id = created["UploadId"]
        number = len(self._parts) + 1
        part = self._client.upload_part(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=self._buffer.getvalue(),
        )
        self._parts.append({"PartNumber": number, "ETag": part["ETag"]})
        self._buffer = io.BytesIO()

    def close(self) -> None:
        if self._upload_id is None and not self.bytes_written and not self._write_empty:
            return
        if self._upload_id is None:
            # Small enough for one part: a plain PUT is cheaper than a multipart upload.
            self._client.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=self._buffer.getvalue(),
                ContentType="application/x-ndjson",
            )
            return
        if self._buffer.tell():
            self._flush_part()
        self._client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )

    def abort(self) -> None:
        if self._upload_id is not None:
            self._client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self._upload_id
            )

    def __enter__(self) -> MultipartWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def object_key(record: S3EventRecord) -> str:
    """The object's key as stored. S3 notifications carry it URL-encoded as a form value
    (``date%3D2026-12-04/my+batch.jsonl`` for ``date=2026-12-04/my batch.jsonl``)."""
    return unquote_plus(record.s3.get_object.key)


def batch_format(key: str) -> str | None:
    """ "jsonl" or "csv" from the key's extension, or None for anything else."""
    dot = key.rfind(".")
    return _FORMATS.get(key[dot:].lower()) if dot >= 0 else None


def output_key(key: str, input_prefix: str, output_prefix: str, suffix: str = ".jsonl") -> str:
    """``incoming/a/b.csv`` → ``enriched/a/b.jsonl`` (and ``….errors.jsonl`` for errors)."""
    relative = key[len(input_prefix) :] if key.startswith(input_prefix) else key
    dot = relative.rfind(".")
    stem = relative[:dot] if dot > relative.rfind("/") else relative
    return f"{output_prefix}{stem}{suffix}"


def _csv_record(row: dict[str, Any]) -> dict[str, Any]:
    """A CSV row whose cells match the header."""
    if None in row:
        raise ValueError("the row has more cells than the header has columns")
    return row


def _byte_lines(body: Any) -> Iterator[bytes]:
    """The body's lines as bytes, split on ``\n`` as they arrive (one line in memory)."""
    pending = bytearray()
    while chunk := body.read(_READ_BYTES):
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            pending += chunk[start:end]
            yield bytes(pending)
            pending.clear()
            start = end + 1
        pending += chunk[start:]
    if pending:
        yield bytes(pending)


def _rows(body: Any, fmt: str) -> Iterator[tuple[int, Any, str | None]]:
    """(line, decoded record, error) per row, read from a streaming body."""
    if fmt == "jsonl":
        for number, line in enumerate(_byte_lines(body), start=1):
            if not line.strip():
                continue
            try:
                value = decode_json(line, max_bytes=len(line))
            except InvalidTicket as exc:
                yield number, None, "; ".join(p.message for p in exc.problems)
                continue
            yield number, value, None
        return
    reader = csv.DictReader(codecs.getreader("utf-8")(body, "strict"))
    for row in reader:
        try:
            yield reader.line_num, _csv_record(row), None
        except ValueError as exc:
            yield reader.line_num, None, str(exc)


def enrich_object(
    s3: Any,
    enricher: Enricher,
    bucket: str,
    key: str,
    *,
    output_bucket: str,
    input_prefix: str,
    output_prefix: str,
    part_bytes: int,
) -> BatchReport:
    """Enrich every row of ``s3://bucket/key`` into JSONL under the output prefix."""
    fmt = batch_format(key)
    if fmt is None:
        raise ValueError(f"{key}: unknown batch format; use .csv, .jsonl or .ndjson")
    out_key = output_key(key, input_prefix, output_prefix)
    errors_key = output_key(key, input_prefix, output_prefix, ".errors.jsonl")
    report = BatchReport(f"s3://{bucket}/{key}", f"s3://{output_bucket}/{out_key}", None)
    columns = ExportColumns.from_metadata(enricher.metadata)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    with (
        MultipartWriter(s3, output_bucket, out_key, part_bytes) as out,
        MultipartWriter(s3, output_bucket, errors_key, part_bytes, write_empty=False) as errors,
    ):
        try:
            for line, record, error in _rows(body, fmt):
                report.rows += 1
                problems: list[dict[str, str]]
                if error is None:
                    try:
                        enriched = enricher.enrich(columns.ticket(record))
                    except InvalidTicket as exc:
                        problems = [p.as_dict() for p in exc.problems]
                    else:
                        out.write(json.dumps(enriched, ensure_ascii=False).encode() + b"\n")
                        report.enriched += 1
                        continue
                else:
                    problems = [{"field": "row", "message": error}]
                report.failed += 1
                errors.write(json.dumps({"line": line, "problems": problems}).encode() + b"\n")
        except UnicodeDecodeError as exc:
            # The rest of the file cannot be read as text: say where, keep what was enriched.
            report.failed += 1
            problem = {"field": "body", "message": f"is not UTF-8 after row {report.rows}: {exc}"}
            errors.write(json.dumps({"line": None, "problems": [problem]}).encode() + b"\n")
    if report.failed:
        report.errors = f"s3://{output_bucket}/{errors_key}"
    else:
        # A batch rewritten without errors must not keep the errors of an earlier version.
        s3.delete_object(Bucket=output_bucket, Key=errors_key)
    logger.info("batch enriched", **vars(report))
    return report

"""The event functions' Lambda entry points (the SAM template names them): each parses its
event with Powertools, calls the core and maps the outcome back. Clients and the model are built
before Lambda's snapshot (SnapStart) or on the first invocation (`adapters.aws.runtime`), never
at import. The API functions' entry points are `adapters.aws.api.rest_api` and `http_api`.

- `s3_batch`: S3 ``ObjectCreated`` under the input prefix → enriched JSONL under the output one.
- `kinesis_batch`: Kinesis records → stored tickets; failures reported per record.

What can never succeed (a Kinesis record that is not a valid ticket; an S3 object that is gone
or of an unknown format, or a batch with rejected rows) goes to the dead-letter queue with the
reason (`adapters.aws.dead_letters`) and is not retried; what may succeed later (the store or S3
unavailable) fails, so that Lambda retries it and then hands it to the on-failure destination.
- `outbox_deliver`: the DynamoDB stream of new deliveries, or the schedule, → the helpdesk.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from adapters.aws.dead_letters import kinesis_record_fields, rejection
from adapters.aws.runtime import Runtime, helpdesk, register_snapstart_hooks, runtime
from adapters.aws.s3_batch import batch_format, enrich_object, object_key
from adapters.aws.telemetry import logger, metrics, record_enrichment
from core.delivery import deliver_due
from core.errors import InvalidTicket, StoreError, error_body
from core.intake import submit_ticket
from core.schema import parse_ticket_json

_kinesis = BatchProcessor(event_type=EventType.KinesisDataStreams)
# Only registers (on Lambda); the hooks do their work when Lambda takes or restores a snapshot.
register_snapstart_hooks()

# Leave this much of the invocation's time when starting another delivery pass: one helpdesk
# call may take the whole client timeout.
_PASS_MARGIN_MS = 5_000


def _dead_letter(rt: Runtime, source: str, error: dict[str, Any], record: dict[str, Any]) -> bool:
    """Send a record that can never succeed to the dead-letter queue; False when none is set
    (the caller then fails it, to be retried and handed to the on-failure destination)."""
    queue = rt.dead_letters
    if queue is None:
        return False
    queue.send(source, error, record)
    metrics.add_metric(name=f"DeadLetters_{source}", unit="Count", value=1)
    return True


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@event_source(data_class=S3Event)
def s3_batch(event: S3Event, context: LambdaContext) -> dict[str, Any]:
    """Each new batch object under the input prefix → enriched JSONL (+ errors) under output.

    Every record is tried; if any failed for a reason that may pass (S3 or the model
    unavailable), the invocation fails after the others are done, and Lambda retries the event
    (S3 sends one object per event; a retried object is rewritten, with the same result)."""
    rt = runtime()
    settings = rt.settings
    done, failures = [], []
    for record in event.records:
        bucket, key = record.s3.bucket.name, object_key(record)
        named = {"bucket": bucket, "key": key}
        if not key.startswith(settings.input_prefix):
            logger.warning("object skipped: not under the input prefix", key=key)
            continue
        if batch_format(key) is None:
            message = f"{key}: unknown batch format; use .csv, .jsonl or .ndjson"
            if not _dead_letter(rt, "s3", error_body("unknown_format", message)["error"], named):
                logger.warning("object skipped: not a batch", key=key)
            continue
        try:
            report = enrich_object(
                rt.s3,
                rt.enricher,
                bucket,
                key,
                output_bucket=settings.output_bucket or bucket,
                input_prefix=settings.input_prefix,
                output_prefix=settings.output_prefix,
                part_bytes=settings.s3_part_bytes,
            )
        except (ClientError, BotoCoreError) as exc:
            code = (
                exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
            )
            gone = error_body("object_not_found", f"s3://{bucket}/{key}: {exc}")["error"]
            if code in ("NoSuchKey", "404") and _dead_letter(rt, "s3", gone, named):
                continue
            logger.exception("batch failed", key=key)
            failures.append(exc)
            continue
        metrics.add_metric(name="BatchRowsEnriched", unit="Count", value=report.enriched)
        metrics.add_metric(name="BatchRowsFailed", unit="Count", value=report.failed)
        if report.failed:
            message = f"{report.failed} of {report.rows} rows rejected; why is in {report.errors}"
            rows = error_body("rows_rejected", message)["error"]
            counts = {"rows": report.rows, "failed": report.failed, "errors": report.errors}
            _dead_letter(rt, "s3", rows, {**named, **counts})
        done.append(vars(report))
    if failures:
        raise StoreError(f"{len(failures)} batches failed, the first: {failures[0]}")
    return {"batches": done}


def _kinesis_record(record: KinesisStreamRecord) -> None:
    rt = runtime()
    try:
        ticket = parse_ticket_json(record.kinesis.data_as_bytes(), rt.settings.limits)
    except InvalidTicket as exc:
        if _dead_letter(rt, "kinesis", rejection(exc), kinesis_record_fields(record.raw_event)):
            return
        raise
    if ticket.external_id is None:
        # A record is redelivered with the same event id (shard and sequence number): as the
        # ticket's identity it makes a retried batch store each ticket once.
        ticket = ticket.model_copy(update={"external_id": f"kinesis:{record.event_id}"})
    started = time.perf_counter()
    stored, created = submit_ticket(ticket, rt.enricher, rt.store, outbox=rt.outbox)
    record_enrichment(stored, created, time.perf_counter() - started)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def kinesis_batch(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Enrich and store each record. A record that is not a valid ticket goes to the
    dead-letter queue with the reason; one that fails otherwise (a store error) is reported as
    a batch item failure, so only it (and what follows it in its shard) is retried."""
    runtime()  # a model or configuration failure fails the whole batch, not each record
    return process_partial_response(
        event=event, record_handler=_kinesis_record, processor=_kinesis, context=context
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def outbox_deliver(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Deliver what is due, pass after pass, while there is work and time. The event (a stream
    batch of new deliveries, or the schedule's tick) only says that there may be work."""
    rt = runtime()
    settings = rt.settings
    client = helpdesk()
    totals = {"delivered": 0, "retrying": 0, "dead": 0}
    margin_ms = settings.helpdesk_timeout_s * 1000 + _PASS_MARGIN_MS
    for _ in range(settings.outbox_max_passes):
        if context.get_remaining_time_in_millis() < margin_ms:
            break
        report = deliver_due(
            rt.store, client, policy=settings.retry_policy, limit=settings.delivery_batch_size
        )
        for status in totals:
            totals[status] += len(getattr(report, status))
        if report.claimed == 0:
            break
    for status, count in totals.items():
        metrics.add_metric(name=f"Deliveries_{status}", unit="Count", value=count)
    logger.info("outbox pass done", extra=totals)
    return totals

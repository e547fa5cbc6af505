"""The event functions' Lambda entry points (the SAM template names them): each parses its
event with Powertools, calls the core and maps the outcome back. Clients and the model are built
before Lambda's snapshot (SnapStart) or on the first invocation (`adapters.aws.runtime`), never
at import. The API functions' entry points are `adapters.aws.api.rest_api` and `http_api`.

- `s3_batch`: S3 ``ObjectCreated`` under the input prefix → enriched JSONL under the output one.
- `kinesis_batch`: Kinesis records → stored tickets; failures reported per record.
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

from adapters.aws.runtime import helpdesk, register_snapstart_hooks, runtime
from adapters.aws.s3_batch import batch_format, enrich_object, object_key
from adapters.aws.telemetry import logger, metrics, record_enrichment
from core.delivery import deliver_due
from core.intake import submit_ticket

_kinesis = BatchProcessor(event_type=EventType.KinesisDataStreams)
# Only registers (on Lambda); the hooks do their work when Lambda takes or restores a snapshot.
register_snapstart_hooks()

# Leave this much of the invocation's time when starting another delivery pass: one helpdesk
# call may take the whole client timeout.
_PASS_MARGIN_MS = 5_000


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@event_source(data_class=S3Event)
def s3_batch(event: S3Event, context: LambdaContext) -> dict[str, Any]:
    """Each new batch object under the input prefix → enriched JSONL (+ errors) under output."""
    rt = runtime()
    settings = rt.settings
    done = []
    for record in event.records:
        bucket, key = record.s3.bucket.name, object_key(record)
        if not key.startswith(settings.input_prefix) or batch_format(key) is None:
            logger.warning("object skipped: not a batch under the input prefix", key=key)
            continue
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
        metrics.add_metric(name="BatchRowsEnriched", unit="Count", value=report.enriched)
        metrics.add_metric(name="BatchRowsFailed", unit="Count", value=report.failed)
        done.append(vars(report))
    return {"batches": done}


def _kinesis_record(record: KinesisStreamRecord) -> None:
    rt = runtime()
    raw = record.kinesis.data_as_json()
    if isinstance(raw, dict) and raw.get("external_id") is None:
        # A record is redelivered with the same event id (shard and sequence number): as the
        # ticket's identity it makes a retried batch store each ticket once.
        raw = {**raw, "external_id": f"kinesis:{record.event_id}"}
    started = time.perf_counter()
    stored, created = submit_ticket(raw, rt.enricher, rt.store, outbox=rt.outbox)
    record_enrichment(stored, created, time.perf_counter() - started)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def kinesis_batch(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Enrich and store each record; a record that fails (a poison ticket, a store error) is
    reported as a batch item failure, so only it is retried."""
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

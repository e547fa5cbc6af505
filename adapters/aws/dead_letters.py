"""Records that can never succeed, sent to the dead-letter queue (SQS) with the reason.

A Kinesis record that is not a valid ticket, or an S3 object under the input prefix that can
never be read as a batch (gone, or of an unknown format), is not retried: retries would only
hold up the good records behind it, and then Lambda's on-failure destination would get the
batch's shard and sequence numbers without the reason. Each message body is JSON: ``source``
(``kinesis`` or ``s3``), ``error`` (``{"code", "message", "problems"}``, the codes the HTTP
entry points answer with) and what names the record (the Kinesis record as the event carried
it, the S3 object's bucket and key). The code is also a message attribute, for filtering.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from adapters.aws.telemetry import logger
from core.errors import InvalidTicket, StoreError, error_body, refusal

# SQS's largest message is 256 KiB; a bigger Kinesis record is named, not copied (it stays in
# the stream for its retention, and the message says where).
_MAX_BODY_BYTES = 250 * 1024


def rejection(exc: InvalidTicket) -> dict[str, Any]:
    """The ``error`` of a refused ticket, with the code the HTTP entry points answer."""
    error: dict[str, Any] = error_body(refusal(exc)[1], str(exc), exc.problems)["error"]
    return error


def kinesis_record_fields(record: dict[str, Any]) -> dict[str, Any]:
    """What names a Kinesis record (and carries its data) in a dead letter."""
    kinesis = record.get("kinesis", {})
    return {
        "eventSourceARN": record.get("eventSourceARN"),
        "eventID": record.get("eventID"),
        "partitionKey": kinesis.get("partitionKey"),
        "sequenceNumber": kinesis.get("sequenceNumber"),
        "approximateArrivalTimestamp": kinesis.get("approximateArrivalTimestamp"),
        "data": kinesis.get("data"),
    }


class DeadLetterQueue:
    """Sends each record that can never succeed to one SQS queue."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self.queue_url = queue_url

    def send(self, source: str, error: dict[str, Any], record: dict[str, Any]) -> None:
        """Send one dead letter; a StoreError if SQS does not take it (the record is then
        retried rather than lost)."""
        body = json.dumps({"source": source, "error": error, **record}, ensure_ascii=False)
        if len(body.encode()) > _MAX_BODY_BYTES and isinstance(record.get("data"), str):
            data = base64.b64decode(record["data"])
            named = {k: v for k, v in record.items() if k != "data"}
            named.update(data_bytes=len(data), data_sha256=hashlib.sha256(data).hexdigest())
            body = json.dumps({"source": source, "error": error, **named}, ensure_ascii=False)
        try:
            self._sqs.send_message(
                QueueUrl=self.queue_url,
                MessageBody=body,
                MessageAttributes={
                    "code": {"DataType": "String", "StringValue": str(error["code"])},
                    "source": {"DataType": "String", "StringValue": source},
                },
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"cannot send a dead letter to {self.queue_url}: {exc}") from exc
        logger.warning("record sent to the dead-letter queue", source=source, code=error["code"])

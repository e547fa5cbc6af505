"""The bad-input corpus (tests/corpus/bad_inputs.jsonl, the hostile ticket bodies every entry
point is replayed with) against the two batch triggers, through the handlers into moto: each
body as one Kinesis record, and as one line of a JSONL object landing in S3. Each bad record is
a per-record error (a dead letter with the reason; for S3, a line of ``<name>.errors.jsonl``),
never a crash of the batch: the good record beside them is stored, nothing is left for Lambda to
retry, and nothing logged carries a traceback."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from typing import Any

import pytest

from adapters.aws import handlers
from tests.integration.aws.conftest import FakeLambdaContext, client, load_event
from tests.support import bad_ticket_bodies

BODIES = bad_ticket_bodies()
CODES = {"malformed_body", "invalid_ticket", "ticket_too_large"}
BUCKET = "ticket-batches"  # as recorded in s3_put_batch.json
GOOD = {"subject": "Disk full on node 7", "external_id": "GOOD-1"}


def _kinesis_batch(payloads: list[bytes]) -> dict[str, Any]:
    event = load_event("kinesis_get_records.json")
    (template,) = event["Records"]
    first = int(template["kinesis"]["sequenceNumber"])
    shard = template["eventID"].split(":")[0]
    records = []
    for offset, payload in enumerate(payloads):
        record = copy.deepcopy(template)
        sequence = str(first + offset)
        record["kinesis"]["sequenceNumber"] = sequence
        record["kinesis"]["data"] = base64.b64encode(payload).decode()
        record["eventID"] = f"{shard}:{sequence}"
        records.append(record)
    event["Records"] = records
    return event


def test_each_hostile_kinesis_record_is_one_dead_letter_and_the_good_one_is_stored(
    configure: Any,
    aws_env: str,
    table: str,
    dead_letters: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(TICKET_ENRICH_DEAD_LETTER_QUEUE_URL=dead_letters.url)
    event = _kinesis_batch([body for _, body in BODIES] + [json.dumps(GOOD).encode()])
    records = event["Records"]

    response = handlers.kinesis_batch(event, FakeLambdaContext())

    # Nothing for Lambda to retry: every bad record can never succeed, the good one did.
    assert response == {"batchItemFailures": []}
    items = client("dynamodb", aws_env).scan(TableName=table)["Items"]
    stored = [json.loads(i["ticket"]["S"]) for i in items if i["kind"]["S"] == "ticket"]
    assert [t["external_id"] for t in stored] == ["GOOD-1"]
    letters = {m["sequenceNumber"]: m for m in dead_letters.read()}
    expected = {
        r["kinesis"]["sequenceNumber"]: name for (name, _), r in zip(BODIES, records, strict=False)
    }
    assert set(letters) == set(expected)
    for sequence, letter in letters.items():
        assert letter["source"] == "kinesis", expected[sequence]
        assert letter["error"]["code"] in CODES, expected[sequence]
        assert letter["code_attribute"] == letter["error"]["code"]
        assert letter["error"]["message"] and letter["error"]["problems"], expected[sequence]
    assert "Traceback" not in capsys.readouterr().out


def test_each_hostile_line_of_an_s3_batch_is_one_error_row_and_the_good_one_is_enriched(
    configure: Any,
    aws_env: str,
    dead_letters: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(TICKET_ENRICH_DEAD_LETTER_QUEUE_URL=dead_letters.url)
    s3 = client("s3", aws_env)
    if BUCKET not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=BUCKET)
    stem = uuid.uuid4().hex
    lines = [body for _, body in BODIES if b"\n" not in body]
    assert len(lines) == len(BODIES)  # every hostile body is one line
    s3.put_object(
        Bucket=BUCKET,
        Key=f"incoming/{stem}.jsonl",
        Body=b"\n".join([*lines, json.dumps(GOOD).encode()]) + b"\n",
    )
    event = load_event("s3_put_batch.json")
    event["Records"][0]["s3"]["object"]["key"] = f"incoming/{stem}.jsonl"

    result = handlers.s3_batch(event, FakeLambdaContext())

    (report,) = result["batches"]
    # An empty line is no row; every other hostile line is one failed row, named by its number.
    hostile = [n for n, body in enumerate(lines, start=1) if body.strip()]
    assert (report["enriched"], report["failed"]) == (1, len(hostile))
    body = s3.get_object(Bucket=BUCKET, Key=f"enriched/{stem}.errors.jsonl")["Body"].read()
    errors = [json.loads(line) for line in body.decode().splitlines()]
    assert [e["line"] for e in errors] == hostile
    assert all(e["problems"] for e in errors)
    enriched = s3.get_object(Bucket=BUCKET, Key=f"enriched/{stem}.jsonl")["Body"].read()
    assert [json.loads(line)["ticket"]["external_id"] for line in enriched.splitlines()] == [
        "GOOD-1"
    ]
    [letter] = dead_letters.read()
    assert letter["key"] == f"incoming/{stem}.jsonl"
    assert letter["error"]["code"] == "rows_rejected" and letter["failed"] == len(hostile)
    assert "Traceback" not in capsys.readouterr().out

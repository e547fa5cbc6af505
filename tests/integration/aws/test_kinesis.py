"""A Kinesis batch (the recorded get-records event, its record repeated with the tickets under
test) through the handler into moto's DynamoDB: a poison record is the only failure reported,
and a retried batch stores nothing twice."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from typing import Any

from adapters.aws import handlers
from tests.integration.aws.conftest import FakeLambdaContext, client, load_event


def _batch(*payloads: bytes) -> dict[str, Any]:
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


def _tickets(endpoint: str, table: str) -> dict[str, dict[str, Any]]:
    items = client("dynamodb", endpoint).scan(TableName=table)["Items"]
    return {i["pk"]["S"]: json.loads(i["ticket"]["S"]) for i in items if i["kind"]["S"] == "ticket"}


def test_the_recorded_event_stores_its_ticket(configure: Any, aws_env: str, table: str) -> None:
    configure()
    response = handlers.kinesis_batch(load_event("kinesis_get_records.json"), FakeLambdaContext())

    assert response == {"batchItemFailures": []}
    (ticket,) = _tickets(aws_env, table).values()
    assert ticket["external_id"] == "KIN-1"
    assert ticket["subject"] == "Disk full on node 7"


def test_one_poison_record_is_the_only_failure_and_a_retry_stores_nothing_twice(
    configure: Any, aws_env: str, table: str
) -> None:
    configure(TICKET_ENRICH_DELIVER="true")
    event = _batch(
        json.dumps({"subject": "Cluster down", "external_id": "K-1"}).encode(),
        b'{"subject": "half a record',
        json.dumps({"subject": "", "description": "   "}).encode(),
        json.dumps({"subject": "Slow namenode UI"}).encode(),
    )
    poison = [r["kinesis"]["sequenceNumber"] for r in event["Records"][1:3]]

    response = handlers.kinesis_batch(event, FakeLambdaContext())

    assert response == {"batchItemFailures": [{"itemIdentifier": s} for s in poison]}
    stored = _tickets(aws_env, table)
    assert sorted(t["subject"] for t in stored.values()) == ["Cluster down", "Slow namenode UI"]
    # The record without an external id is known by its shard and sequence number.
    last = event["Records"][3]["eventID"]
    assert {t.get("external_id") for t in stored.values()} == {"K-1", f"kinesis:{last}"}

    # Lambda retries the batch (as it does after a timeout): nothing is stored or queued twice.
    again = handlers.kinesis_batch(event, FakeLambdaContext())
    assert again == response
    assert _tickets(aws_env, table) == stored
    items = client("dynamodb", aws_env).scan(TableName=table)["Items"]
    assert sum(1 for i in items if i["kind"]["S"] == "delivery") == 2


def test_records_read_from_a_stream_are_enriched_and_the_poison_one_named(
    configure: Any, aws_env: str, table: str
) -> None:
    """What Lambda's event source mapping does, against moto's Kinesis: read the shard, wrap
    each record as the recorded event wraps its record, invoke the function."""
    configure()
    kinesis = client("kinesis", aws_env)
    stream = f"tickets-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    arn = kinesis.describe_stream(StreamName=stream)["StreamDescription"]["StreamARN"]
    payloads = [
        json.dumps({"subject": "Replication stuck", "external_id": "S-1"}).encode(),
        json.dumps({"subject": 42}).encode(),
        json.dumps({"subject": "Balancer too slow", "external_id": "S-3"}).encode(),
    ]
    put = kinesis.put_records(
        StreamName=stream, Records=[{"Data": p, "PartitionKey": "tickets"} for p in payloads]
    )
    assert put["FailedRecordCount"] == 0
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    read = kinesis.get_records(ShardIterator=iterator)["Records"]
    assert [r["Data"] for r in read] == payloads

    event = load_event("kinesis_get_records.json")
    (template,) = event["Records"]
    event["Records"] = []
    for record in read:
        wrapped = copy.deepcopy(template)
        wrapped["kinesis"].update(
            sequenceNumber=record["SequenceNumber"],
            partitionKey=record["PartitionKey"],
            data=base64.b64encode(record["Data"]).decode(),
            approximateArrivalTimestamp=record["ApproximateArrivalTimestamp"].timestamp(),
        )
        wrapped["eventID"] = f"{shard}:{record['SequenceNumber']}"
        wrapped["eventSourceARN"] = arn
        event["Records"].append(wrapped)

    response = handlers.kinesis_batch(event, FakeLambdaContext())

    assert response == {"batchItemFailures": [{"itemIdentifier": read[1]["SequenceNumber"]}]}
    stored = _tickets(aws_env, table)
    assert sorted(t["external_id"] for t in stored.values()) == ["S-1", "S-3"]


def test_records_that_can_never_succeed_go_to_the_dead_letter_queue_with_the_reason(
    configure: Any, aws_env: str, table: str, dead_letters: Any
) -> None:
    configure(TICKET_ENRICH_DEAD_LETTER_QUEUE_URL=dead_letters.url)
    event = _batch(
        json.dumps({"subject": "Cluster down", "external_id": "K-1"}).encode(),
        b'{"subject": "half a record',
        json.dumps({"subject": "", "description": "   "}).encode(),
        b"\xff\xfe not text",
        json.dumps({"subject": "Slow namenode UI", "external_id": "K-5"}).encode(),
    )
    records = event["Records"]

    response = handlers.kinesis_batch(event, FakeLambdaContext())

    # Nothing to retry: the good records are stored, the others are in the queue.
    assert response == {"batchItemFailures": []}
    stored = _tickets(aws_env, table)
    assert sorted(t["external_id"] for t in stored.values()) == ["K-1", "K-5"]
    letters = sorted(dead_letters.read(), key=lambda m: m["sequenceNumber"])
    assert [m["sequenceNumber"] for m in letters] == [
        r["kinesis"]["sequenceNumber"] for r in records[1:4]
    ]
    assert [m["error"]["code"] for m in letters] == [
        "malformed_body",
        "invalid_ticket",
        "malformed_body",
    ]
    assert [m["code_attribute"] for m in letters] == [m["error"]["code"] for m in letters]
    assert letters[1]["error"]["problems"][0]["field"] == "ticket"
    for letter, record in zip(letters, records[1:4], strict=True):
        assert letter["source"] == "kinesis"
        assert letter["eventID"] == record["eventID"]
        assert letter["eventSourceARN"] == record["eventSourceARN"]
        assert letter["data"] == record["kinesis"]["data"]  # the record itself, to replay


def test_a_store_outage_is_retried_not_dead_lettered(configure: Any, dead_letters: Any) -> None:
    configure(
        TICKET_ENRICH_DEAD_LETTER_QUEUE_URL=dead_letters.url,
        TICKET_ENRICH_TICKETS_TABLE="no-such-table",
    )
    event = _batch(
        json.dumps({"subject": "Cluster down", "external_id": "K-1"}).encode(),
        b"not json",
        json.dumps({"subject": "Slow namenode UI", "external_id": "K-3"}).encode(),
    )
    records = event["Records"]

    response = handlers.kinesis_batch(event, FakeLambdaContext())

    # The valid records may succeed later: Lambda retries them (and then hands them to the
    # on-failure destination); the invalid one never can, and is not retried.
    failed = [r["kinesis"]["sequenceNumber"] for r in (records[0], records[2])]
    assert response == {"batchItemFailures": [{"itemIdentifier": s} for s in failed]}
    assert [m["sequenceNumber"] for m in dead_letters.read()] == [
        records[1]["kinesis"]["sequenceNumber"]
    ]

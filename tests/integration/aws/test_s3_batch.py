"""S3 batches through the handler against moto's S3: JSONL and CSV with broken rows (reported
in a sidecar errors file, the rest enriched), a raw helpdesk export enriched as `ticket-enrich
enrich` enriches it, and a batch large enough to stream out in parts."""

from __future__ import annotations

import csv
import io
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from adapters.aws import handlers
from core.errors import StoreError
from tests.integration.aws.conftest import FakeLambdaContext, client, load_event
from tests.support import SMALL_CONFIG, run_cli, write_tickets
from training.data import DataSpec, load_dataset
from training.train import train_model

BUCKET = "ticket-batches"  # as recorded in s3_put_batch.json
# A helpdesk export whose columns are not the ticket's own, with its own time format.
EXPORT_SPEC = DataSpec(
    subject_column="Title",
    description_column="Body",
    field_columns=("Product",),
    label_column="Priority",
    time_column="Opened",
    time_format="%d.%m.%Y %H:%M",
    id_column="Ticket #",
)
EXPORT_HEADER = ("Ticket #", "Title", "Body", "Product", "Priority", "Status", "Opened")


def _export_row(number: int, ticket: dict[str, Any]) -> dict[str, str]:
    day, hour = ticket["created_at"][8:10], ticket["created_at"][11:13]
    return {
        "Ticket #": f"HD-{number}",
        "Title": ticket["subject"],
        "Body": ticket["description"],
        "Product": ticket["product"],
        "Priority": ticket["priority"],
        "Status": "Closed",
        "Opened": f"{day}.01.2024 {hour}:00",
    }


def _export_csv(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_HEADER, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


@pytest.fixture(scope="module")
def export_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model trained on a helpdesk export with its own column names."""
    root = tmp_path_factory.mktemp("export-model")
    generated = write_tickets(root / "generated.jsonl")
    tickets = [json.loads(line) for line in generated.read_text().splitlines()]
    export = root / "closed.csv"
    export.write_text(_export_csv([_export_row(n, t) for n, t in enumerate(tickets, start=1)]))
    dataset = load_dataset(export, EXPORT_SPEC)
    return train_model(dataset, models_dir=root / "models", config=SMALL_CONFIG).artifact_dir


def _bucket(endpoint: str) -> Any:
    s3 = client("s3", endpoint)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if BUCKET not in existing:
        s3.create_bucket(Bucket=BUCKET)
    return s3


def _event(key: str) -> dict[str, Any]:
    event = load_event("s3_put_batch.json")
    event["Records"][0]["s3"]["object"]["key"] = key
    return event


def _lines(s3: Any, key: str) -> list[Any]:
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines()]


def test_the_recorded_event_enriches_jsonl_and_reports_broken_rows_aside(
    configure: Any, aws_env: str
) -> None:
    configure()
    s3 = _bucket(aws_env)
    rows = [
        json.dumps({"subject": "Disk full on node 7", "external_id": "B-1"}),
        '{"subject": "broken',
        json.dumps({"subject": "ok", "requester": {"email": "nope"}}),
        "",
        json.dumps({"subject": "DataNode lost", "description": "after upgrade"}),
    ]
    s3.put_object(Bucket=BUCKET, Key="incoming/2026/tickets.jsonl", Body="\n".join(rows) + "\n")

    result = handlers.s3_batch(load_event("s3_put_batch.json"), FakeLambdaContext())

    (report,) = result["batches"]
    assert (report["rows"], report["enriched"], report["failed"]) == (4, 2, 2)
    enriched = _lines(s3, "enriched/2026/tickets.jsonl")
    assert [e["ticket"]["subject"] for e in enriched] == ["Disk full on node 7", "DataNode lost"]
    assert all("priority" in e["enrichment"] for e in enriched)
    errors = _lines(s3, "enriched/2026/tickets.errors.jsonl")
    assert [e["line"] for e in errors] == [2, 3]
    assert errors[0]["problems"][0]["field"] == "row"
    assert errors[1]["problems"] == [
        {"field": "requester.email", "message": "is not an e-mail address"}
    ]


def test_csv_rows_become_tickets_and_a_ragged_row_is_reported(configure: Any, aws_env: str) -> None:
    configure()
    s3 = _bucket(aws_env)
    key = f"incoming/{uuid.uuid4().hex}.csv"
    csv_text = (
        "subject,description,external_id,product\n"
        "NameNode down,cluster unusable,C-1,hdfs\n"
        "too,many,cells,here,extra\n"
        '"Quoted, subject","multi\nline description",C-3,yarn\n'
    )
    s3.put_object(Bucket=BUCKET, Key=key, Body=csv_text.encode())

    result = handlers.s3_batch(_event(key), FakeLambdaContext())

    (report,) = result["batches"]
    assert (report["enriched"], report["failed"]) == (2, 1)
    out = key.replace("incoming/", "enriched/").replace(".csv", ".jsonl")
    enriched = _lines(s3, out)
    assert [e["ticket"]["external_id"] for e in enriched] == ["C-1", "C-3"]
    assert enriched[0]["ticket"]["custom_fields"] == {"product": "hdfs"}
    assert enriched[1]["ticket"]["description"] == "multi\nline description"
    (error,) = _lines(s3, out.replace(".jsonl", ".errors.jsonl"))
    assert error["line"] == 3
    assert "more cells" in error["problems"][0]["message"]


def test_a_raw_helpdesk_export_enriches_as_the_cli_enriches_it(
    configure: Any, aws_env: str, export_model_dir: Path, tmp_path: Path
) -> None:
    configure(TICKET_ENRICH_MODEL_DIR=str(export_model_dir))
    s3 = _bucket(aws_env)
    rows = [
        {
            "Ticket #": "HD-901",
            "Title": "outage in cluster 3",
            "Body": "production is down, data loss",
            "Product": "hdfs",
            "Priority": "",
            "Status": "Open",
            "Opened": "29.02.2024 23:30",
        },
        {
            "Ticket #": "HD-902",
            "Title": "yesterday's ticket",
            "Body": "slow upgrade",
            "Product": "yarn",
            "Priority": "",
            "Status": "Open",
            "Opened": "yesterday",
        },
        {
            "Ticket #": "",
            "Title": "",
            "Body": "configuration question about the upgrade",
            "Product": "",
            "Priority": "",
            "Status": "New",
            "Opened": "",
        },
    ]
    text = _export_csv(rows)
    key = f"incoming/{uuid.uuid4().hex}.csv"
    s3.put_object(Bucket=BUCKET, Key=key, Body=text.encode())

    (report,) = handlers.s3_batch(_event(key), FakeLambdaContext())["batches"]

    assert (report["rows"], report["enriched"], report["failed"]) == (3, 2, 1)
    out = key.replace("incoming/", "enriched/").replace(".csv", ".jsonl")
    enriched = _lines(s3, out)
    assert [e["ticket"] for e in enriched] == [
        {
            "subject": "outage in cluster 3",
            "description": "production is down, data loss",
            "custom_fields": {"Product": "hdfs"},
            "created_at": "2024-02-29T23:30:00Z",
            "external_id": "HD-901",
        },
        {
            "subject": "",
            "description": "configuration question about the upgrade",
            "custom_fields": {},
        },
    ]
    (error,) = _lines(s3, out.replace(".jsonl", ".errors.jsonl"))
    assert error == {
        "line": 3,
        "problems": [
            {
                "field": "Opened",
                "message": "cannot read 'yesterday' as a time in format '%d.%m.%Y %H:%M'",
            }
        ],
    }

    # The same export through `ticket-enrich enrich`: the same tickets, the same enrichment.
    export = tmp_path / "export.csv"
    export.write_text(text)
    done = run_cli("enrich", "--model", str(export_model_dir), str(export), cwd=tmp_path)
    assert done.returncode == 1, done.stderr  # one row rejected
    by_cli = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r.pop("row") for r in by_cli] == [1, 3]
    for record in (*by_cli, *enriched):
        assert record["enrichment"].pop("enriched_at")
    assert by_cli == enriched
    rejected = [json.loads(x) for x in done.stderr.splitlines() if x.startswith('{"row"')]
    assert rejected == [{"row": 2, "problems": error["problems"]}]


def test_a_batch_larger_than_one_part_streams_out_as_a_multipart_upload(
    configure: Any, aws_env: str
) -> None:
    # Priority only keeps the test fast; the output is still several 5 MiB parts.
    configure(
        TICKET_ENRICH_S3_PART_BYTES=str(5 * 1024 * 1024),
        TICKET_ENRICH_ENRICH_SIMILAR="false",
        TICKET_ENRICH_ENRICH_LANGUAGE="false",
        TICKET_ENRICH_ENRICH_SENTIMENT="false",
    )
    s3 = _bucket(aws_env)
    key = f"incoming/{uuid.uuid4().hex}.jsonl"
    filler = "the datanode reports a corrupt block on the volume and stops. " * 30
    rows = [
        json.dumps({"subject": f"corrupt block {n}", "description": filler}) for n in range(3000)
    ]
    body = ("\n".join(rows) + "\n").encode()
    assert len(body) > 5 * 1024 * 1024
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)

    (report,) = handlers.s3_batch(_event(key), FakeLambdaContext())["batches"]

    assert (report["enriched"], report["failed"], report["errors"]) == (3000, 0, None)
    out = key.replace("incoming/", "enriched/")
    head = s3.head_object(Bucket=BUCKET, Key=out, PartNumber=1)
    assert head["PartsCount"] >= 2
    enriched = _lines(s3, out)
    assert [e["ticket"]["subject"] for e in enriched] == [f"corrupt block {n}" for n in range(3000)]
    uploads = s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    assert [u for u in uploads if u["Key"] == out] == []


def test_objects_outside_the_input_prefix_are_left_alone(configure: Any, aws_env: str) -> None:
    configure()
    s3 = _bucket(aws_env)
    s3.put_object(Bucket=BUCKET, Key="enriched/x.jsonl", Body=b'{"subject": "x"}\n')

    assert handlers.s3_batch(_event("enriched/x.jsonl"), FakeLambdaContext()) == {"batches": []}


# Keys S3 sends URL-encoded in its notifications: a space, "+", "=", non-ASCII letters.
AWKWARD_KEYS = [
    "incoming/date=2026-12-04/my batch +1 été.jsonl",
    "incoming/a+b=c/Überweisung 50%.jsonl",
]


def test_the_generated_event_with_an_encoded_key_reads_the_object_it_names(
    configure: Any, aws_env: str
) -> None:
    configure()
    s3 = _bucket(aws_env)
    event = load_event("s3_put_batch_encoded_key.json")
    # As S3 sends it: the key URL-encoded, so the raw key names no object.
    encoded = event["Records"][0]["s3"]["object"]["key"]
    assert encoded == "incoming/date%3D2026-12-04/my%20batch%20%2B1%20%C3%A9t%C3%A9.jsonl"
    s3.put_object(
        Bucket=BUCKET,
        Key=AWKWARD_KEYS[0],
        Body=json.dumps({"subject": "Disk full on node 7", "external_id": "E-1"}) + "\n",
    )

    (report,) = handlers.s3_batch(event, FakeLambdaContext())["batches"]

    assert report["source"] == f"s3://{BUCKET}/{AWKWARD_KEYS[0]}"
    assert (report["enriched"], report["failed"]) == (1, 0)
    (enriched,) = _lines(s3, "enriched/date=2026-12-04/my batch +1 été.jsonl")
    assert enriched["ticket"]["external_id"] == "E-1"


def test_the_notifications_s3_sends_for_awkward_keys_are_enriched(
    configure: Any, aws_env: str
) -> None:
    """moto's S3 sends its own notification for each upload to an SQS queue, as S3 does to a
    queue or a function: the handler gets exactly the event S3 built."""
    configure()
    s3 = _bucket(aws_env)
    sqs = client("sqs", aws_env)
    queue = sqs.create_queue(QueueName=f"notifications-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    bucket = f"awkward-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    for number, key in enumerate(AWKWARD_KEYS):
        body = json.dumps({"subject": f"Ticket in {key}", "external_id": f"A-{number}"})
        s3.put_object(Bucket=bucket, Key=key, Body=body + "\n")
    events = []
    while len(events) < len(AWKWARD_KEYS):
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages")
        assert messages, f"S3 sent {len(events)} of {len(AWKWARD_KEYS)} notifications"
        for message in messages:
            body = json.loads(message["Body"])
            if "Records" in body:  # not the test event S3 sends when a queue is configured
                events.append(body)
    assert all("%" in e["Records"][0]["s3"]["object"]["key"] for e in events)

    reports = [handlers.s3_batch(e, FakeLambdaContext())["batches"][0] for e in events]

    assert sorted(r["source"] for r in reports) == sorted(
        f"s3://{bucket}/{k}" for k in AWKWARD_KEYS
    )
    for number, key in enumerate(AWKWARD_KEYS):
        out = key.replace("incoming/", "enriched/")
        body = s3.get_object(Bucket=bucket, Key=out)["Body"].read().decode()
        assert json.loads(body)["ticket"]["external_id"] == f"A-{number}"


def test_objects_and_rows_that_can_never_succeed_are_dead_lettered_with_the_reason(
    configure: Any, aws_env: str, dead_letters: Any
) -> None:
    configure(TICKET_ENRICH_DEAD_LETTER_QUEUE_URL=dead_letters.url)
    s3 = _bucket(aws_env)
    stem = f"incoming/{uuid.uuid4().hex}"
    s3.put_object(
        Bucket=BUCKET,
        Key=f"{stem}-rows.jsonl",
        Body=json.dumps({"subject": "Disk full"}) + "\n" + '{"subject": "broken\n',
    )
    s3.put_object(Bucket=BUCKET, Key=f"{stem}-notes.txt", Body=b"not a batch")
    event = _event(f"{stem}-rows.jsonl")
    (template,) = event["Records"]
    for key in (f"{stem}-notes.txt", f"{stem}-gone.jsonl"):
        record = json.loads(json.dumps(template))
        record["s3"]["object"]["key"] = key
        event["Records"].append(record)

    result = handlers.s3_batch(event, FakeLambdaContext())

    (report,) = result["batches"]
    assert (report["enriched"], report["failed"]) == (1, 1)
    letters = {m["key"]: m for m in dead_letters.read()}
    assert {k: m["error"]["code"] for k, m in letters.items()} == {
        f"{stem}-rows.jsonl": "rows_rejected",
        f"{stem}-notes.txt": "unknown_format",
        f"{stem}-gone.jsonl": "object_not_found",
    }
    rows = letters[f"{stem}-rows.jsonl"]
    assert rows["errors"] == report["errors"] and rows["failed"] == 1
    assert all(m["source"] == "s3" and m["bucket"] == BUCKET for m in letters.values())


def test_an_output_bucket_that_cannot_be_written_fails_the_invocation_for_a_retry(
    configure: Any, aws_env: str, dead_letters: Any
) -> None:
    configure(
        TICKET_ENRICH_DEAD_LETTER_QUEUE_URL=dead_letters.url,
        TICKET_ENRICH_OUTPUT_BUCKET="no-such-output-bucket",
    )
    s3 = _bucket(aws_env)
    key = f"incoming/{uuid.uuid4().hex}.jsonl"
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({"subject": "Disk full"}) + "\n")

    with pytest.raises(StoreError, match="NoSuchBucket"):
        handlers.s3_batch(_event(key), FakeLambdaContext())

    # It may succeed once the bucket is there: Lambda retries it, then the on-failure queue.
    assert dead_letters.read() == []

"""The record function both batch engines share: one record in, one enriched or rejected row out."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from adapters.spark.records import (
    ALL_COLUMNS,
    RAW_MAX_CHARS,
    RecordMapper,
    errors_location,
    input_format,
)
from core import load_enricher
from core.errors import TicketEnrichError

LOAD_DATE = date(2030, 5, 17)


@pytest.fixture(scope="module")
def mapper(small_model_dir: Path) -> RecordMapper:
    return RecordMapper(load_enricher(small_model_dir), LOAD_DATE)


@pytest.fixture(scope="module")
def hadoop_mapper(model_dir: Path) -> RecordMapper:
    return RecordMapper(load_enricher(model_dir), LOAD_DATE)


def test_a_jsonl_ticket_is_enriched_with_flat_columns_and_full_json(mapper: RecordMapper) -> None:
    text = json.dumps(
        {
            "subject": "outage in cluster 3",
            "description": "production is down",
            "created_at": "2024-03-01T23:30:00-05:00",
            "external_id": "ZD-1",
            "product": "hdfs",
        }
    )
    row = mapper.map_text(7, "file:///in.jsonl", text)
    assert set(row) == set(ALL_COLUMNS)
    assert row["reason"] is None and row["raw"] is None
    assert (row["row"], row["source"], row["external_id"]) == (7, "file:///in.jsonl", "ZD-1")
    # 23:30 at UTC-5 is 04:30 UTC the next day: partitions follow UTC dates.
    assert row["created_date"] == "2024-03-02"
    assert row["created_at_us"] == 1709353800 * 1_000_000
    enrichment = json.loads(row["enrichment"])
    assert row["priority"] == enrichment["priority"]["label"]
    assert row["priority_confidence"] == enrichment["priority"]["confidence"]
    assert row["needs_review"] is enrichment["needs_review"]
    assert row["tags"] == enrichment["tags"]
    assert json.loads(row["ticket"])["custom_fields"] == {"product": "hdfs"}


def test_a_ticket_without_creation_time_goes_to_the_load_date(mapper: RecordMapper) -> None:
    row = mapper.map_text(1, "s", json.dumps({"subject": "slow upgrade"}))
    assert row["reason"] is None
    assert row["created_date"] == "2030-05-17" and row["created_at_us"] is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "ticket: must be a JSON object"),
        (json.dumps({"subject": "", "description": " "}), "a non-empty subject or description"),
        (json.dumps({"subject": "x" * 2000}), "subject: is longer than 1024 bytes"),
        (json.dumps({"subject": "a", "created_at": "yesterday"}), "created_at"),
        (json.dumps({"subject": "a", "requester": {"email": "nope"}}), "requester.email"),
        ("[" * 1000 + "]" * 1000, "nests deeper than 32 levels"),
        ("[" * 100_000, "nests deeper than 32 levels"),
        ('{"subject": "a", "custom_fields": {"n": ' + "9" * 5000 + "}}", "integer longer"),
    ],
)
def test_a_bad_record_becomes_an_error_row_with_its_reason(
    mapper: RecordMapper, text: str, reason: str
) -> None:
    row = mapper.map_text(3, "s", text)
    assert reason in row["reason"]
    # The raw record is kept, cut to a bounded length.
    assert text.startswith(row["raw"][:RAW_MAX_CHARS])
    assert row["raw"] == text or len(text) > RAW_MAX_CHARS
    assert row["priority"] is None and row["enrichment"] is None


def test_the_raw_record_kept_for_an_error_is_bounded_and_writable(mapper: RecordMapper) -> None:
    text = json.dumps({"subject": "\ud800" + "y" * (2 * RAW_MAX_CHARS)})
    row = mapper.map_text(1, "s", text)
    assert "surrogate" in row["reason"] or "longer" in row["reason"]
    assert len(row["raw"]) <= RAW_MAX_CHARS + 16
    row["raw"].encode("utf-8")


def test_a_helpdesk_export_row_is_read_with_the_training_columns(
    hadoop_mapper: RecordMapper,
) -> None:
    record = {
        "Summary": "NameNode fails to start",
        "Issue id": "13277068",
        "Status": "Open",
        "Priority": "Major",
        "Created": "30/Sep/21 17:20",
        "Description": None,
    }
    ticket = hadoop_mapper.ticket(record)
    assert ticket == {
        "subject": "NameNode fails to start",
        "description": "",
        "custom_fields": {},
        "external_id": "13277068",
        "created_at": "2021-09-30T17:20:00+00:00",
    }
    row = hadoop_mapper.map_record(1, "s", record)
    assert row["created_date"] == "2021-09-30" and row["external_id"] == "13277068"


def test_an_unreadable_export_time_rejects_the_row(hadoop_mapper: RecordMapper) -> None:
    row = hadoop_mapper.map_record(4, "s", {"Summary": "x", "Created": "tomorrow"})
    assert row["reason"] == "Created: cannot read 'tomorrow' as a time in format '%d/%b/%y %H:%M'"


def test_formats_and_the_errors_location() -> None:
    assert input_format("s3a://bucket/history/tickets.PARQUET") == "parquet"
    assert input_format("in.ndjson") == "jsonl"
    assert input_format("gs://bucket/dir/", "csv") == "csv"
    with pytest.raises(TicketEnrichError, match="--format"):
        input_format("gs://bucket/dir/")
    with pytest.raises(TicketEnrichError, match="unknown input format"):
        input_format("a.csv", "xml")
    assert errors_location("s3a://b/out/") == "s3a://b/out/_errors"
    assert errors_location("out", "elsewhere") == "elsewhere"

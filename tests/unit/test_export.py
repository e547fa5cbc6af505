"""One helpdesk export row (or ticket-shaped row) read as a ticket, as every batch reads it."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import InvalidTicket
from core.export import TICKET_KEYS, ExportColumns, export_time
from core.schema import parse_ticket

# As the hadoop preset records it in an artifact's metadata.
HADOOP_SPEC: dict[str, Any] = {
    "subject_column": "Summary",
    "description_column": "Description",
    "field_columns": ["Component/s"],
    "label_column": "Priority",
    "label_map": {"Blocker": "urgent"},
    "urgent_labels": ["urgent"],
    "time_column": "Created",
    "time_format": "%d/%b/%y %H:%M",
    "resolved_column": "Resolved",
    "where": {},
    "id_column": "Issue id",
    "target_columns": {"resolution": "Resolution"},
    "duplicate_where": {},
}
HADOOP = ExportColumns.from_spec(HADOOP_SPEC)


def test_the_columns_come_from_the_artifacts_recorded_spec() -> None:
    metadata = {"name": "m", "training_data": {"rows": 3, "spec": HADOOP_SPEC}}
    columns = ExportColumns.from_metadata(metadata)
    assert columns == HADOOP
    assert (columns.subject_column, columns.field_columns) == ("Summary", ("Component/s",))
    assert (columns.time_column, columns.time_format) == ("Created", "%d/%b/%y %H:%M")
    # An artifact that recorded no spec reads every row as ticket fields.
    assert ExportColumns.from_metadata({}) == ExportColumns()
    assert ExportColumns.from_metadata({"training_data": {"spec": None}}) == ExportColumns()


def test_the_ticket_keys_are_the_schemas_fields() -> None:
    assert set(TICKET_KEYS) == {
        "subject",
        "description",
        "requester",
        "channel",
        "custom_fields",
        "created_at",
        "external_id",
    }


def test_a_ticket_shaped_row_keeps_its_fields_and_the_rest_become_custom_fields() -> None:
    row = {
        "subject": "Disk full",
        "description": "",
        "external_id": "ZD-1",
        "requester": {"email": "ann@example.com"},
        "created_at": "2024-03-01T08:00:00Z",
        "product": "hdfs",
        "team": "",
        "Summary": None,
    }
    ticket = HADOOP.ticket(row)
    assert ticket == {
        "subject": "Disk full",
        "external_id": "ZD-1",
        "requester": {"email": "ann@example.com"},
        "created_at": "2024-03-01T08:00:00Z",
        "custom_fields": {"product": "hdfs"},
    }
    parse_ticket(ticket)


def test_a_ticket_shaped_rows_own_custom_fields_win_over_its_other_keys() -> None:
    row = {"subject": "s", "custom_fields": {"product": "yarn"}, "team": "storage"}
    assert ExportColumns().ticket(row) == {"subject": "s", "custom_fields": {"product": "yarn"}}


def test_an_export_row_is_read_with_the_training_columns() -> None:
    row = {
        "Summary": "NameNode fails to start",
        "Description": "after the upgrade",
        "Component/s": "hdfs",
        "Issue id": 13277068,
        "Created": "30/Sep/21 17:20",
        "Priority": "Major",
        "Status": "Open",
    }
    ticket = HADOOP.ticket(row)
    assert ticket == {
        "subject": "NameNode fails to start",
        "description": "after the upgrade",
        "custom_fields": {"Component/s": "hdfs"},
        "external_id": "13277068",
        "created_at": "2021-09-30T17:20:00+00:00",
    }
    assert parse_ticket(ticket).created_at is not None


def test_an_export_row_missing_columns_gets_what_it_has() -> None:
    # A JSONL or Parquet export may leave out empty columns; a CSV one has them blank.
    assert HADOOP.ticket({"Summary": "only a subject"}) == {
        "subject": "only a subject",
        "description": "",
        "custom_fields": {},
    }
    blank = {"Summary": "s", "Description": None, "Component/s": "", "Issue id": "", "Created": " "}
    assert HADOOP.ticket(blank) == {"subject": "s", "description": "", "custom_fields": {}}
    # The description column alone is enough to tell an export row.
    assert HADOOP.ticket({"Description": "body only", "Issue id": "7"}) == {
        "subject": "",
        "description": "body only",
        "custom_fields": {},
        "external_id": "7",
    }


def test_a_row_with_the_tickets_own_text_fields_is_ticket_shaped_even_with_export_columns() -> None:
    row = {"subject": "s", "Summary": "other", "Created": "not a time"}
    assert HADOOP.ticket(row) == {
        "subject": "s",
        "custom_fields": {"Summary": "other", "Created": "not a time"},
    }


def test_without_a_spec_every_row_is_ticket_shaped() -> None:
    assert ExportColumns().ticket({"Summary": "x", "Created": "30/Sep/21 17:20"}) == {
        "custom_fields": {"Summary": "x", "Created": "30/Sep/21 17:20"}
    }


def test_the_creation_time_is_read_with_the_specs_format_and_a_zone_is_kept() -> None:
    assert export_time(" 01/Feb/24 09:05 ", "%d/%b/%y %H:%M", "Created") == (
        "2024-02-01T09:05:00+00:00"
    )
    assert export_time("2024-02-01 09:05 +0100", "%Y-%m-%d %H:%M %z", "Opened") == (
        "2024-02-01T09:05:00+01:00"
    )
    # Without a format, ISO 8601 as training reads it: a trailing Z is UTC, no zone is UTC.
    assert export_time("2024-02-01T09:05:00Z", None, "created") == "2024-02-01T09:05:00+00:00"
    assert export_time("2024-02-01T09:05:00", None, "created") == "2024-02-01T09:05:00+00:00"
    columns = ExportColumns(subject_column="Title", time_column="Opened", time_format="%Y%m%d")
    assert columns.ticket({"Title": "t", "Opened": "20240201"})["created_at"] == (
        "2024-02-01T00:00:00+00:00"
    )


@pytest.mark.parametrize(
    ("columns", "row", "message"),
    [
        (
            HADOOP,
            {"Summary": "x", "Created": "tomorrow"},
            "Created: cannot read 'tomorrow' as a time in format '%d/%b/%y %H:%M'",
        ),
        (
            HADOOP,
            {"Summary": "x", "Created": "2021-09-30T17:20:00"},
            "Created: cannot read '2021-09-30T17:20:00' as a time in format '%d/%b/%y %H:%M'",
        ),
        (
            ExportColumns(subject_column="Title", time_column="Opened"),
            {"Title": "x", "Opened": "30/Sep/21"},
            "Opened: cannot read '30/Sep/21' as a time in ISO 8601",
        ),
    ],
)
def test_an_unreadable_creation_time_is_a_problem_naming_the_column(
    columns: ExportColumns, row: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidTicket) as raised:
        columns.ticket(row)
    assert str(raised.value) == message
    (problem,) = raised.value.problems
    assert problem.field in row and message == f"{problem.field}: {problem.message}"


@pytest.mark.parametrize("row", [["a", "list"], "text", 5, None])
def test_a_row_that_is_not_an_object_is_a_problem(row: Any) -> None:
    with pytest.raises(InvalidTicket, match=r"^ticket: must be a JSON object$"):
        HADOOP.ticket(row)

"""Helpdesks' own exports are recognised by their columns and read with a named preset.

The samples under tests/corpus/exports/ follow each vendor's documented export columns: Jira
Cloud's CSV (all fields, trimmed), Zendesk's CSV and JSON exports, Freshdesk's CSV export and
Request Tracker 5's search results as a spreadsheet (its default result format).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from core.errors import TrainingDataError
from training.data import (
    PRESETS,
    DataSpec,
    load_dataset,
    recognise_export,
    vendored_data_path,
)

EXPORTS = Path(__file__).parents[1] / "corpus" / "exports"


def _column(path: Path, column: str) -> list[str]:
    delimiter = "\t" if path.suffix == ".tsv" else ","
    with path.open(newline="", encoding="utf-8") as handle:
        return [row[column] for row in csv.DictReader(handle, delimiter=delimiter)]


@pytest.mark.parametrize(
    ("sample", "preset"),
    [
        ("jira.csv", "jira"),
        ("zendesk.csv", "zendesk-csv"),
        ("zendesk.json", "zendesk-json"),
        ("freshdesk.csv", "freshdesk-csv"),
        ("rt.tsv", "rt-tsv"),
    ],
)
def test_each_sample_export_is_recognised_as_its_preset(sample: str, preset: str) -> None:
    name, spec = recognise_export(EXPORTS / sample)
    assert name == preset
    assert spec.label_column == PRESETS[preset].label_column
    data = load_dataset(EXPORTS / sample, spec)
    assert set(data.labels) <= {"urgent", "high", "normal", "low"}
    assert "urgent" in data.labels and "low" in data.labels


def test_the_vendored_hadoop_export_keeps_its_own_preset() -> None:
    assert recognise_export(vendored_data_path()) == ("hadoop", PRESETS["hadoop"])


def test_a_jira_export_keeps_only_closed_issues_and_reads_its_time_format() -> None:
    path = EXPORTS / "jira.csv"
    name, spec = recognise_export(path)
    assert name == "jira" and spec.time_format == "%d/%b/%y %I:%M %p"
    data = load_dataset(path, spec)
    statuses = _column(path, "Status")
    closed = [s for s in statuses if s in ("Done", "Closed", "Resolved")]
    assert len(data.examples) == len(closed) < len(statuses)
    keys = {e.source_id for e in data.examples}
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    open_keys = {r["Issue key"] for r in rows if r["Status"] == "In Progress"}
    assert open_keys and not keys & open_keys
    # 3:45 PM is read as 15:45, in the file's own order of day, month and year.
    first = min(rows, key=lambda r: int(r["Issue id"]))
    example = next(e for e in data.examples if e.source_id == first["Issue key"])
    assert example.created is not None
    assert example.created.strftime("%d/%b/%y %-I:%M %p") == first["Created"]


def test_both_jira_priority_schemes_map_onto_the_products_labels(tmp_path: Path) -> None:
    header = "Summary,Issue key,Status,Priority,Created,Resolved,Description\n"
    schemes = ["Blocker", "Critical", "Major", "Minor", "Trivial"]
    schemes += ["Highest", "High", "Medium", "Low", "Lowest"]
    body = "".join(
        f"s{i},K-{i},Done,{p},2024-05-0{1 + i % 9} 1{i % 10}:00,,d{i}\n"
        for i, p in enumerate(schemes * 3)
    )
    path = tmp_path / "jira.csv"
    path.write_text(header + body)
    name, spec = recognise_export(path)
    # An ISO-like time needs no format; the columns Jira lets the exporter leave out are not asked.
    assert name == "jira" and spec.time_format is None
    assert spec.duplicate_where == {} and spec.description_column == "Description"
    data = load_dataset(path, spec)
    by_raw = {
        p: e.label
        for p, e in zip(schemes * 3, sorted(data.examples, key=lambda e: e.row), strict=True)
    }
    assert by_raw == {
        "Blocker": "urgent",
        "Critical": "urgent",
        "Major": "normal",
        "Minor": "low",
        "Trivial": "low",
        "Highest": "urgent",
        "High": "high",
        "Medium": "normal",
        "Low": "low",
        "Lowest": "low",
    }


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        ("12/Mar/24 3:45 PM", "%d/%b/%y %I:%M %p"),
        ("12/Mar/24 15:45", "%d/%b/%y %H:%M"),
        ("2024-03-12T15:45:00.000+0100", None),
        ("12.03.2024 15:45", "%d.%m.%Y %H:%M"),
    ],
)
def test_jira_time_formats_are_read_from_the_file(
    tmp_path: Path, created: str, expected: str | None
) -> None:
    path = tmp_path / "jira.csv"
    path.write_text(
        "Summary,Issue key,Status,Priority,Created\n"
        + "".join(f"s{i},K-{i},Done,{'High' if i % 2 else 'Low'},{created}\n" for i in range(25))
    )
    _, spec = recognise_export(path)
    assert spec.time_format == expected
    data = load_dataset(path, spec)
    assert {(e.created.hour, e.created.minute) for e in data.examples if e.created} == {(15, 45)}


def test_zendesk_tickets_without_a_priority_are_skipped_and_counted() -> None:
    path = EXPORTS / "zendesk.csv"
    data = load_dataset(path, recognise_export(path)[1])
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    solved = [r for r in rows if r["Status"] in ("Solved", "Closed")]
    without = [r for r in solved if not r["Priority"]]
    assert without and data.unlabelled == len(without)
    assert len(data.examples) == len(solved) - len(without)
    assert all(e.resolved is not None for e in data.examples)


def test_zendesk_json_export_reads_lines_lists_and_api_pages(tmp_path: Path) -> None:
    lines = (EXPORTS / "zendesk.json").read_text().splitlines()
    tickets = [json.loads(line) for line in lines]
    expected = len(load_dataset(EXPORTS / "zendesk.json", PRESETS["zendesk-json"]).examples)
    as_list = tmp_path / "list.json"
    as_list.write_text(json.dumps(tickets))
    as_page = tmp_path / "page.json"
    as_page.write_text(json.dumps({"tickets": tickets, "next_page": None}))
    for path in (as_list, as_page):
        name, spec = recognise_export(path)
        assert name == "zendesk-json"
        assert len(load_dataset(path, spec).examples) == expected


def test_freshdesk_medium_is_the_products_normal() -> None:
    path = EXPORTS / "freshdesk.csv"
    data = load_dataset(path, recognise_export(path)[1])
    with path.open(newline="") as handle:
        medium = {r["Ticket ID"] for r in csv.DictReader(handle) if r["Priority"] == "Medium"}
    read = {e.source_id: e.label for e in data.examples}
    assert medium & set(read) and all(read[i] == "normal" for i in medium & set(read))


def test_rt_spreadsheet_without_times_keeps_row_order_and_reads_numbers(tmp_path: Path) -> None:
    data = load_dataset(EXPORTS / "rt.tsv", recognise_export(EXPORTS / "rt.tsv")[1])
    assert not data.time_ordered
    assert [e.source_id for e in data.examples] == sorted(
        (e.source_id for e in data.examples), key=lambda i: int(i or 0)
    )
    # RT without PriorityAsString writes numbers, and a Created column when it is in the format.
    path = tmp_path / "Results.tsv"
    priorities = ["95", "90", "75", "50", "20", "5", "0"]
    path.write_text(
        "id\tSubject\tStatus\tPriority\tCreated\n"
        + "".join(
            f"{i}\ts{i}\tresolved\t{p}\tFri Dec 0{1 + i % 4} 10:39:43 2026\n"
            for i, p in enumerate(priorities * 4)
        )
    )
    name, spec = recognise_export(path)
    assert name == "rt-tsv" and spec.time_column == "Created"
    assert spec.time_format == "%a %b %d %H:%M:%S %Y"
    data = load_dataset(path, spec)
    priority_of = {str(i): p for i, p in enumerate(priorities * 4)}
    labels = {priority_of[e.source_id or ""]: e.label for e in data.examples}
    assert labels == {
        "95": "urgent",
        "90": "urgent",
        "75": "high",
        "50": "normal",
        "20": "low",
        "5": "low",
    }
    assert len(data.examples) == 24
    assert data.unlabelled == 4


def test_an_rt_priority_of_zero_is_unset_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "Results.tsv"
    path.write_text(
        "id\tSubject\tStatus\tPriority\n"
        + "".join(f"{i}\ts{i}\tresolved\t{[90, 0, 20][i % 3]}\n" for i in range(30))
    )
    data = load_dataset(path, recognise_export(path)[1])
    assert data.unlabelled == 10
    assert {e.label for e in data.examples} == {"urgent", "low"}


def test_an_unknown_export_is_not_guessed_and_the_message_lists_every_preset(
    tmp_path: Path,
) -> None:
    path = tmp_path / "x.csv"
    path.write_text("Title,Body,Urgency\n" + "a,b,c\n" * 30)
    assert recognise_export(path) == (None, DataSpec())
    with pytest.raises(TrainingDataError) as caught:
        load_dataset(path, DataSpec())
    message = str(caught.value)
    assert "\n" not in message and "'Title', 'Body', 'Urgency'" in message
    for preset in PRESETS:
        assert preset in message


def test_a_spec_with_closed_statuses_survives_the_artifact_round_trip() -> None:
    spec = PRESETS["jira"]
    assert DataSpec.from_dict(json.loads(json.dumps(spec.as_dict()))) == spec


def test_a_dash_for_no_priority_is_skipped_like_an_empty_one(tmp_path: Path) -> None:
    source = EXPORTS / "zendesk.csv"
    path = tmp_path / "zendesk.csv"
    with source.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows
    for row in rows:
        row["Priority"] = row["Priority"] or "-"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    before = load_dataset(source, recognise_export(source)[1])
    after = load_dataset(path, recognise_export(path)[1])
    assert after.unlabelled == before.unlabelled > 0
    assert len(after.examples) == len(before.examples)

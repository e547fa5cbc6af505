import json
from pathlib import Path

import pytest

from core.errors import TrainingDataError
from tests.support import write_tickets
from training.data import (
    PRESETS,
    DataSpec,
    load_dataset,
    recognise_export,
    time_split,
    vendored_data_path,
)

HEADER = "subject,description,priority,created_at\n"


def csv_file(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "t.csv"
    path.write_text(header + body)
    return path


def rows(n: int, label: str = "high", time: str = "2024-01-01T00:00:00") -> str:
    return "".join(f"s{i},d{i},{label if i % 2 else 'low'},{time}\n" for i in range(n))


def test_the_vendored_data_reads_with_its_preset() -> None:
    data = load_dataset(vendored_data_path(), PRESETS["hadoop"])
    assert len(data.examples) == 1733
    assert data.labels == ["low", "normal", "urgent"]
    created = [e.created for e in data.examples]
    assert created == sorted(created)
    split = time_split(data.examples)
    assert (len(split.fit) + len(split.validation), len(split.test)) == (1386, 347)
    assert max(e.created for e in split.validation) <= min(e.created for e in split.test)


def test_jsonl_exports_are_read(tmp_path: Path) -> None:
    data = load_dataset(write_tickets(tmp_path / "t.jsonl"), DataSpec(field_columns=("product",)))
    assert data.labels == ["normal", "urgent"]
    assert data.examples[0].doc["custom_fields"]["product"] in ("hdfs", "yarn")


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    with pytest.raises(TrainingDataError, match="column 'priority'.*is missing"):
        load_dataset(csv_file(tmp_path, "a,b,c\n", "subject,description,created_at\n"), DataSpec())


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TrainingDataError, match="empty"):
        load_dataset(csv_file(tmp_path, "", ""), DataSpec())


def test_a_header_without_rows_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TrainingDataError, match="no rows"):
        load_dataset(csv_file(tmp_path, ""), DataSpec())


def test_one_class_only_is_refused(tmp_path: Path) -> None:
    body = "".join(f"s{i},d{i},high,2024-01-01T00:00:00\n" for i in range(30))
    with pytest.raises(TrainingDataError, match="column 'priority'.*only one class"):
        load_dataset(csv_file(tmp_path, body), DataSpec())


def test_an_unparseable_date_names_column_and_row(tmp_path: Path) -> None:
    body = rows(30) + "late,row,high,yesterday\n"
    with pytest.raises(
        TrainingDataError, match=r"column 'created_at', row 31: cannot read 'yesterday'"
    ):
        load_dataset(csv_file(tmp_path, body), DataSpec())


def test_a_label_outside_the_mapping_names_column_and_row(tmp_path: Path) -> None:
    spec = DataSpec(label_map={"high": "urgent", "low": "low"})
    body = rows(30) + "x,y,medium,2024-01-01T00:00:00\n"
    with pytest.raises(TrainingDataError, match=r"column 'priority', row 31: label 'medium'"):
        load_dataset(csv_file(tmp_path, body), spec)


def test_an_empty_label_names_the_row(tmp_path: Path) -> None:
    body = rows(30) + "x,y,,2024-01-01T00:00:00\n"
    with pytest.raises(TrainingDataError, match="row 31: has no label"):
        load_dataset(csv_file(tmp_path, body), DataSpec())


def test_too_few_rows_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TrainingDataError, match="at least 20"):
        load_dataset(csv_file(tmp_path, rows(5)), DataSpec())


def test_bad_json_lines_name_the_row(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    good = {"subject": "a", "description": "b", "priority": "low", "created_at": "2024-01-01"}
    path.write_text(json.dumps(good) + "\n{oops\n")
    with pytest.raises(TrainingDataError, match="row 2: is not valid JSON"):
        load_dataset(path, DataSpec())


def test_unknown_file_types_and_missing_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "t.xlsx").write_bytes(b"PK")
    with pytest.raises(TrainingDataError, match="unknown file type"):
        load_dataset(tmp_path / "t.xlsx", DataSpec())
    with pytest.raises(TrainingDataError, match="no such file"):
        load_dataset(tmp_path / "absent.csv", DataSpec())


def test_where_filters_rows(tmp_path: Path) -> None:
    header = "subject,description,priority,created_at,status\n"
    body = "".join(
        f"s{i},d{i},{'high' if i % 2 else 'low'},2024-01-01T00:00:00,{'Open' if i < 10 else 'Resolved'}\n"
        for i in range(40)
    )
    data = load_dataset(csv_file(tmp_path, body, header), DataSpec(where={"status": "Resolved"}))
    assert len(data.examples) == 30


def test_an_export_without_a_time_column_keeps_its_row_order(tmp_path: Path) -> None:
    body = "".join(f"s{i},d{i},{'high' if i % 3 else 'low'}\n" for i in range(30))
    data = load_dataset(csv_file(tmp_path, body, "subject,description,priority\n"), DataSpec())
    assert not data.time_ordered
    assert [e.row for e in data.examples] == list(range(1, 31))
    assert all(e.created is None and e.resolution_hours is None for e in data.examples)
    assert data.spec.time_column is None
    split = time_split(data.examples)
    assert split.test[-1].row == 30


def test_a_named_time_column_must_exist(tmp_path: Path) -> None:
    body = "".join(f"s{i},d{i},{'high' if i % 3 else 'low'}\n" for i in range(30))
    path = csv_file(tmp_path, body, "subject,description,priority\n")
    with pytest.raises(TrainingDataError, match="column 'opened'.*is missing.*--time-column"):
        load_dataset(path, DataSpec(time_column="opened"))


def test_an_unknown_export_gets_its_columns_and_the_options_in_one_line(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "a,b,c\n" * 30, "Title,Body,Urgency\n")
    with pytest.raises(TrainingDataError) as caught:
        load_dataset(path, DataSpec())
    message = str(caught.value)
    assert "\n" not in message
    assert "'Title', 'Body', 'Urgency'" in message
    assert "--subject-column" in message and "--label-column" in message
    assert "--preset (hadoop, hadoop-5, jira," in message


def test_a_jira_export_is_recognised_without_a_preset(tmp_path: Path) -> None:
    name, spec = recognise_export(vendored_data_path())
    assert name == "hadoop" and spec == PRESETS["hadoop"]
    own = write_tickets(tmp_path / "own.jsonl")
    assert recognise_export(own) == (None, DataSpec())
    unknown = csv_file(tmp_path, "a,b,c\n", "Title,Body,Urgency\n")
    assert recognise_export(unknown) == (None, DataSpec())


def test_a_ticket_without_a_secondary_target_is_no_example_of_it(tmp_path: Path) -> None:
    # JSON records that lack the key and a blank value: the ticket still trains priority, and
    # the category learns only from the tickets that have one.
    lines = write_tickets(tmp_path / "t.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    for i, record in enumerate(records):
        record["category"] = ["billing", "access"][i % 2]
    del records[1]["category"]
    records[2]["category"] = "  "
    path = tmp_path / "some.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    data = load_dataset(path, DataSpec(target_columns={"category": "category"}))
    assert len(data.examples) == len(records)
    targets = [e.targets for e in data.examples]
    assert targets.count({}) == 2
    assert {t["category"] for t in targets if t} == {"billing", "access"}

"""A CSV export read on Spark field for field as Python's csv module reads it, whichever line
ending the export uses."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from training.spark_csv import read_csv

RECORDS = [
    ["Summary", "Description", "Priority"],
    ["crash on start", "line one\r\nline two\nline three", "Major"],
    ["trailing break", "ends with a break\r\n", "Minor"],
    ["", "", ""],
    ["tab\there", 'a "quoted" word', "Blocker"],
]


def python_reads(path: Path, sep: str) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [dict(row) for row in csv.DictReader(handle, delimiter=sep)]


def spark_reads(spark: SparkSession, path: Path, sep: str) -> list[dict[str, str]]:
    df, record = read_csv(spark, str(path), sep=sep)
    return [json.loads(r["text"]) for r in df.select(F.to_json(record).alias("text")).collect()]


@pytest.mark.parametrize("ending", ["\r\n", "\n"])
@pytest.mark.parametrize("sep", [",", "\t"])
def test_fields_are_read_as_written_whatever_the_line_ending(
    spark: SparkSession, tmp_path: Path, ending: str, sep: str
) -> None:
    path = tmp_path / "export.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, delimiter=sep, lineterminator=ending).writerows(RECORDS)

    expected = python_reads(path, sep)
    assert expected[0]["Description"] == "line one\r\nline two\nline three"
    assert list(expected[0]) == ["Summary", "Description", "Priority"]
    assert spark_reads(spark, path, sep) == expected


def test_a_malformed_record_lands_in_the_corrupt_column(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(b"a,b\r\none,two\r\nthree,four,five\r\n")
    df, record = read_csv(spark, str(path), corrupt_column="_bad")
    rows = df.select(F.to_json(record).alias("text"), "_bad").collect()
    assert json.loads(rows[0]["text"]) == {"a": "one", "b": "two"}
    assert rows[0]["_bad"] is None and rows[1]["_bad"].startswith("three,four,five")

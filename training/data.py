"""Reading closed-ticket exports (CSV or JSONL) into training examples, with clear errors."""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from core.errors import TrainingDataError
from core.export import parse_export_time
from core.text import ticket_document

THREE_LEVEL = {
    "Blocker": "urgent",
    "Critical": "urgent",
    "Major": "normal",
    "Minor": "low",
    "Trivial": "low",
}
# Jira's newer default scheme beside the classic one: the inverse of what the Jira connector
# pushes (urgent → Highest, high → High, normal → Medium, low → Low), Lowest read as low.
JIRA_PRIORITIES = {
    **THREE_LEVEL,
    "Highest": "urgent",
    "High": "high",
    "Medium": "normal",
    "Low": "low",
    "Lowest": "low",
}
# Zendesk's and Freshdesk's four priorities, as their exports spell them in either case: the
# inverse of what their connectors push, so a model trained on them pushes the same values back.
FOUR_LEVEL = {
    **{name: name.lower() for name in ("Urgent", "High", "Normal", "Low")},
    **{name.lower(): name.lower() for name in ("Urgent", "High", "Normal", "Low")},
    "Medium": "normal",
    "medium": "normal",
    # What a report shows for "no priority": such tickets are skipped and counted.
    "-": "",
}
# Request Tracker 5 shows a priority by name (its default PriorityAsString: Low from 0, Medium
# from 50, High from 100) or as a number; a number gets the label of the highest floor it
# reaches, the floors being the values the RT connector pushes. 0, RT's "not set", has none:
# such tickets are skipped and counted, as tickets without a priority are.
RT_NAMES = {"Low": "low", "Medium": "normal", "High": "urgent"}
RT_FLOORS: tuple[tuple[int, str], ...] = ((90, "urgent"), (70, "high"), (50, "normal"), (1, "low"))
MIN_ROWS = 20
# The time column of the product's own export format. An export without it is split by row
# order; any other time column must exist.
DEFAULT_TIME_COLUMN = "created_at"


@dataclass(frozen=True)
class DataSpec:
    """Which columns of an export mean what, and which rows are closed tickets."""

    subject_column: str = "subject"
    description_column: str | None = "description"
    field_columns: tuple[str, ...] = ()
    label_column: str = "priority"
    label_map: Mapping[str, str] | None = None
    urgent_labels: tuple[str, ...] = ("urgent",)
    # None: the export has no creation time, and its row order stands for time order.
    time_column: str | None = DEFAULT_TIME_COLUMN
    time_format: str | None = None
    resolved_column: str | None = None
    where: Mapping[str, str] = field(default_factory=dict)
    id_column: str | None = None
    # Categorical targets besides priority: target name → column (category, queue, resolution…).
    target_columns: Mapping[str, str] = field(default_factory=dict)
    # Which column value marks a ticket closed as a duplicate of another, e.g. Resolution=Duplicate.
    duplicate_where: Mapping[str, str] = field(default_factory=dict)
    # Keep only rows whose column holds one of the values (closed tickets under any of the
    # statuses a helpdesk closes with, e.g. Status in Done, Closed, Resolved).
    where_in: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Rows without a label are skipped and counted instead of refused: helpdesk exports hold
    # tickets nobody gave a priority.
    skip_unlabelled: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The spec as recorded in an artifact's metadata, so evaluation can read data alike."""
        return {
            "subject_column": self.subject_column,
            "description_column": self.description_column,
            "field_columns": list(self.field_columns),
            "label_column": self.label_column,
            "label_map": dict(self.label_map) if self.label_map is not None else None,
            "urgent_labels": list(self.urgent_labels),
            "time_column": self.time_column,
            "time_format": self.time_format,
            "resolved_column": self.resolved_column,
            "where": dict(self.where),
            "id_column": self.id_column,
            "target_columns": dict(self.target_columns),
            "duplicate_where": dict(self.duplicate_where),
            "where_in": {c: list(v) for c, v in self.where_in.items()},
            "skip_unlabelled": self.skip_unlabelled,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataSpec:
        """Rebuild a spec recorded by `as_dict`."""
        return cls(
            subject_column=data["subject_column"],
            description_column=data.get("description_column"),
            field_columns=tuple(data.get("field_columns", ())),
            label_column=data["label_column"],
            label_map=data.get("label_map"),
            urgent_labels=tuple(data.get("urgent_labels", ())),
            time_column=data.get("time_column"),
            time_format=data.get("time_format"),
            resolved_column=data.get("resolved_column"),
            where=dict(data.get("where", {})),
            id_column=data.get("id_column"),
            target_columns=dict(data.get("target_columns", {})),
            duplicate_where=dict(data.get("duplicate_where", {})),
            where_in={c: tuple(v) for c, v in data.get("where_in", {}).items()},
            skip_unlabelled=bool(data.get("skip_unlabelled", False)),
        )


_HADOOP = DataSpec(
    subject_column="Summary",
    description_column="Description",
    # `Affects Version/s` is a real form field, but new releases make its values unseen by
    # training, and every validation run scored lower with it: it is left out of the preset.
    field_columns=(),
    label_column="Priority",
    label_map=THREE_LEVEL,
    urgent_labels=("urgent",),
    time_column="Created",
    time_format="%d/%b/%y %H:%M",
    resolved_column="Resolved",
    where={"Status": "Resolved"},
    id_column="Issue id",
    target_columns={"resolution": "Resolution"},
    duplicate_where={"Resolution": "Duplicate"},
)
# The file `ticket-enrich train --from HELPDESK` writes (adapters/helpdesk/pull.py): the
# product's own columns, the priority already mapped onto its labels, and the solved time.
PULL_COLUMNS = ("id", "subject", "description", "priority", "created_at", "solved_at")
PRESETS: dict[str, DataSpec] = {
    # The vendored Apache Hadoop export with the three-level priority of the product.
    "hadoop": _HADOOP,
    # The same export with Jira's own five priorities.
    "hadoop-5": replace(_HADOOP, label_map=None, urgent_labels=("Blocker", "Critical")),
    # Any Jira (or Jira Service Management) CSV export: closed under Done, Closed or Resolved,
    # either priority scheme; the time format is read from the file when recognised.
    "jira": replace(
        _HADOOP,
        label_map=JIRA_PRIORITIES,
        where={},
        where_in={"Status": ("Done", "Closed", "Resolved")},
        time_format="%d/%b/%y %I:%M %p",
        id_column="Issue key",
        skip_unlabelled=True,
    ),
    # Zendesk's CSV export (Admin Center > Account > Tools > Reports > Export): no description.
    "zendesk-csv": DataSpec(
        subject_column="Subject",
        description_column=None,
        label_column="Priority",
        label_map=FOUR_LEVEL,
        time_column="Created at",
        time_format="%Y-%m-%d %H:%M:%S",
        resolved_column="Solved at",
        where_in={"Status": ("Solved", "Closed", "solved", "closed")},
        id_column="Id",
        skip_unlabelled=True,
    ),
    # Zendesk's JSON export (one ticket object a line) and the Tickets API's {"tickets": [...]}.
    "zendesk-json": DataSpec(
        label_map=FOUR_LEVEL,
        where_in={"status": ("solved", "closed")},
        id_column="id",
        skip_unlabelled=True,
    ),
    # Freshdesk's CSV export (Tickets > Export), Description among the fields chosen.
    "freshdesk-csv": DataSpec(
        subject_column="Subject",
        description_column="Description",
        label_column="Priority",
        label_map=FOUR_LEVEL,
        time_column="Created time",
        time_format="%Y-%m-%d %H:%M:%S",
        resolved_column="Resolved time",
        where_in={"Status": ("Resolved", "Closed")},
        id_column="Ticket ID",
        skip_unlabelled=True,
    ),
    # Request Tracker's search results as a spreadsheet (Search > Results > Feeds > Spreadsheet,
    # /Search/Results.tsv): RT's default result format has no description and only relative
    # times, so without a Created column the rows (in id order) stand for time order.
    "rt-tsv": DataSpec(
        subject_column="Subject",
        description_column=None,
        label_column="Priority",
        label_map=RT_NAMES,
        time_column=None,
        where_in={"Status": ("resolved",)},
        id_column="id",
        skip_unlabelled=True,
    ),
    "helpdesk-pull": DataSpec(
        resolved_column="solved_at", id_column="id", label_map=None, skip_unlabelled=True
    ),
}
# What each preset reads, as the terminal names it when an export is recognised.
PRESET_FORMATS = {
    "hadoop": "the vendored Hadoop Jira CSV export",
    "hadoop-5": "the vendored Hadoop Jira CSV export",
    "jira": "a Jira CSV export",
    "zendesk-csv": "a Zendesk CSV export",
    "zendesk-json": "a Zendesk JSON export",
    "freshdesk-csv": "a Freshdesk CSV export",
    "rt-tsv": "a Request Tracker search-result TSV",
    "helpdesk-pull": "closed tickets pulled from a helpdesk",
}


def vendored_data_path() -> Path:
    """The closed-ticket export shipped with the package (Apache Hadoop Jira, CC BY 4.0)."""
    return Path(str(resources.files("training") / "data" / "hadoop_bugs.csv"))


@dataclass(frozen=True)
class Example:
    """One closed ticket: the document the model reads, its label and its times."""

    row: int
    doc: dict[str, Any]
    label: str
    # None when the export records no creation time (the dataset is then in row order).
    created: datetime | None
    resolved: datetime | None
    source_id: str | None
    targets: dict[str, str] = field(default_factory=dict)
    is_duplicate: bool = False

    @property
    def resolution_hours(self) -> float | None:
        """Hours from creation to resolution, when the ticket records both."""
        if self.resolved is None or self.created is None:
            return None
        return (self.resolved - self.created).total_seconds() / 3600.0


@dataclass(frozen=True)
class Dataset:
    """Closed tickets in time order (row order when the export has no time column), with the
    hash and name of the file they came from."""

    examples: list[Example]
    spec: DataSpec
    path: Path
    sha256: str
    skipped_targets: tuple[str, ...] = ()
    # Closed tickets left out because they have no label (only when the spec skips them).
    unlabelled: int = 0

    @property
    def time_ordered(self) -> bool:
        """Whether the examples are ordered by their creation time rather than by row."""
        return self.spec.time_column is not None

    @property
    def labels(self) -> list[str]:
        """The distinct labels, sorted (scikit-learn's class order)."""
        return sorted({e.label for e in self.examples})


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    raise TrainingDataError(f"is not valid JSON: {exc}", row=number) from None
                if not isinstance(record, dict):
                    raise TrainingDataError("is not a JSON object", row=number)
                yield number, record
    elif suffix == ".json":
        yield from _json_records(path)
    elif suffix in (".csv", ".tsv"):
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ",")
            if reader.fieldnames is None:
                return
            for number, record in enumerate(reader, start=1):
                yield number, dict(record)
    else:
        raise TrainingDataError(f"{path.name}: unknown file type; use .csv, .tsv, .json or .jsonl")


def _json_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """A .json export: a list of objects, an API page (``{"tickets": [...]}``) or, as Zendesk's
    JSON export writes it despite the name, one object a line."""
    text = path.read_text(encoding="utf-8")
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, dict) and isinstance(whole.get("tickets"), list):
        whole = whole["tickets"]
    if isinstance(whole, list):
        for number, record in enumerate(whole, start=1):
            if not isinstance(record, dict):
                raise TrainingDataError("is not a JSON object", row=number)
            yield number, record
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise TrainingDataError(f"is not valid JSON: {exc}", row=number) from None
        if not isinstance(record, dict):
            raise TrainingDataError("is not a JSON object", row=number)
        yield number, record


def _parse_time(value: Any, spec_format: str | None, column: str, row: int) -> datetime:
    try:
        return parse_export_time("" if value is None else str(value), spec_format)
    except ValueError as exc:
        raise TrainingDataError(str(exc), column=column, row=row) from None


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _row_targets(record: Mapping[str, Any], columns: Mapping[str, str]) -> dict[str, str]:
    # A ticket closed without a category (a blank cell, or a JSON record without the key) is
    # not an example of a blank category: that target just does not learn from it.
    values = {name: _text(record.get(col)).strip() for name, col in columns.items()}
    return {name: value for name, value in values.items() if value}


def load_dataset(path: str | Path, spec: DataSpec) -> Dataset:
    """Read and check a closed-ticket export; every problem names its column and row."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise TrainingDataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise TrainingDataError(f"{path}: is a directory, not a file") from None
    if not raw.strip():
        raise TrainingDataError(f"{path}: the file is empty")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TrainingDataError(f"{path}: not UTF-8 text (byte {exc.start})") from None

    required = [spec.subject_column, spec.label_column, *spec.field_columns]
    required += [c for c in (spec.description_column, spec.resolved_column) if c]
    required += list(spec.where) + list(spec.duplicate_where) + list(spec.where_in)
    examples: list[Example] = []
    unlabelled = 0
    seen_any = False
    targets = dict(spec.target_columns)
    for row, record in _records(path):
        if not seen_any:
            seen_any = True
            # A target the export lacks is simply not trained.
            targets = {name: col for name, col in targets.items() if col in record}
            if spec.time_column == DEFAULT_TIME_COLUMN and spec.time_column not in record:
                spec = replace(spec, time_column=None)
            if spec.time_column is not None:
                required.append(spec.time_column)
        missing = [c for c in dict.fromkeys(required) if c not in record]
        if missing:
            raise TrainingDataError(
                _missing_column_help(missing[0], spec, list(record)),
                column=missing[0],
                row=row if examples else None,
            )
        if any(_text(record[c]).strip() != v for c, v in spec.where.items()):
            continue
        if any(_text(record[c]).strip() not in v for c, v in spec.where_in.items()):
            continue
        raw_label = _text(record[spec.label_column]).strip()
        if not raw_label:
            if spec.skip_unlabelled:
                unlabelled += 1
                continue
            raise TrainingDataError("has no label", column=spec.label_column, row=row)
        label = raw_label
        if spec.label_map is not None:
            if raw_label not in spec.label_map:
                known = ", ".join(sorted(spec.label_map))
                raise TrainingDataError(
                    f"label {raw_label!r} is not in the label mapping ({known})",
                    column=spec.label_column,
                    row=row,
                )
            label = spec.label_map[raw_label]
            if not label and spec.skip_unlabelled:
                # A raw value mapped to no label, such as RT's 0 ("not set").
                unlabelled += 1
                continue
        created = None
        if spec.time_column is not None:
            created = _parse_time(record[spec.time_column], spec.time_format, spec.time_column, row)
        resolved = None
        if spec.resolved_column and _text(record[spec.resolved_column]).strip():
            resolved = _parse_time(
                record[spec.resolved_column], spec.time_format, spec.resolved_column, row
            )
        fields = {c: _text(record[c]).strip() or None for c in spec.field_columns}
        description = _text(record[spec.description_column]) if spec.description_column else ""
        examples.append(
            Example(
                row=row,
                doc=ticket_document(_text(record[spec.subject_column]), description, fields),
                label=label,
                created=created,
                resolved=resolved,
                source_id=_text(record[spec.id_column]) if spec.id_column else None,
                targets=_row_targets(record, targets),
                is_duplicate=bool(spec.duplicate_where)
                and all(_text(record[c]).strip() == v for c, v in spec.duplicate_where.items()),
            )
        )
    if not seen_any:
        raise TrainingDataError(f"{path}: the file has a header but no rows")
    if len(examples) < MIN_ROWS:
        where = f" matching {dict(spec.where)}" if spec.where else ""
        if spec.where_in:
            where += " with " + " and ".join(
                f"{c} in {', '.join(v)}" for c, v in spec.where_in.items()
            )
        if unlabelled:
            where += f" and a label ({unlabelled} without one skipped)"
        raise TrainingDataError(
            f"{path}: {len(examples)} rows{where}; at least {MIN_ROWS} closed tickets are needed"
        )
    counts = Counter(e.label for e in examples)
    if len(counts) < 2:
        raise TrainingDataError(
            f"has only one class ({next(iter(counts))!r}); at least two are needed",
            column=spec.label_column,
        )
    if spec.time_column is not None:
        examples.sort(key=lambda e: (e.created, e.row))
    skipped = tuple(sorted(set(spec.target_columns) - set(targets)))
    spec = replace(spec, target_columns=targets)
    return Dataset(examples, spec, path, hashlib.sha256(raw).hexdigest(), skipped, unlabelled)


_COLUMN_OPTIONS = {
    "subject_column": "--subject-column",
    "description_column": "--description-column",
    "label_column": "--label-column",
    "time_column": "--time-column",
    "resolved_column": "--resolved-column",
    "id_column": "--id-column",
}


def _missing_column_help(column: str, spec: DataSpec, found: list[str]) -> str:
    """One line for a column the export lacks: the columns it has, and how to map them."""
    shown = ", ".join(repr(k) for k in found[:20]) + (", …" if len(found) > 20 else "")
    option = next(
        (flag for name, flag in _COLUMN_OPTIONS.items() if getattr(spec, name) == column),
        "--field-column" if column in spec.field_columns else "--where",
    )
    presets = ", ".join(PRESETS)
    return (
        f"is missing; the export has {shown}: name the column to use with {option} "
        f"(and the others with --subject-column, --description-column, --label-column, "
        f"--time-column), or pass --preset ({presets})"
    )


def _header(path: Path) -> list[str]:
    """The column names of an export: its CSV/TSV header, or the keys of its first JSON line."""
    for _row, record in _records(path):
        return list(record)
    return []


_SNIFF_ROWS = 200
# Jira writes times in the user's date format (default "12/Mar/24 3:45 PM"; the Hadoop export
# "30/Sep/21 17:20"); Zendesk and Freshdesk exports in ISO-like forms, sometimes with a zone.
_TIME_FORMATS = (
    "%d/%b/%y %I:%M %p",
    "%d/%b/%y %H:%M",
    "%d/%b/%Y %I:%M %p",
    "%d/%b/%Y %H:%M",
    "%Y-%m-%d %H:%M:%S %z",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M",
    "%d.%m.%Y %H:%M",
    "%a %b %d %H:%M:%S %Y",
)


def _values(path: Path, column: str) -> list[str]:
    """The first non-empty values of a column, to read its format from."""
    found: list[str] = []
    for _row, record in _records(path):
        value = _text(record.get(column)).strip()
        if value:
            found.append(value)
        if len(found) >= _SNIFF_ROWS:
            break
    return found


def _time_format(values: list[str], default: str | None) -> str | None:
    """The first format that reads every sampled time (None: ISO 8601), else ``default``."""
    if not values:
        return default
    for candidate in (None, *_TIME_FORMATS):
        try:
            for value in values:
                parse_export_time(value, candidate)
        except ValueError:
            continue
        return candidate
    return default


def _rt_labels(values: list[str]) -> dict[str, str]:
    """RT's priority names, and each number in the export mapped by `RT_FLOORS`."""
    labels = dict(RT_NAMES)
    for value in values:
        if value.isdigit():
            labels[value] = next((name for floor, name in RT_FLOORS if int(value) >= floor), "")
    return labels


def _fitted(name: str, path: Path, columns: set[str]) -> DataSpec:
    """A recognised preset, with what only the file can tell: its time format, and for RT the
    numbers its priorities are written as."""
    spec = PRESETS[name]
    if name == "rt-tsv":
        spec = replace(spec, label_map=_rt_labels(_values(path, "Priority")))
        if "Created" in columns:
            created = _values(path, "Created")
            spec = replace(spec, time_column="Created", time_format=_time_format(created, None))
        return spec
    if name in ("jira", "zendesk-csv", "freshdesk-csv") and spec.time_column in columns:
        assert spec.time_column is not None
        fmt = _time_format(_values(path, spec.time_column), spec.time_format)
        spec = replace(spec, time_format=fmt)
    # Columns a helpdesk lets the exporter leave out are read when they are there.
    if spec.description_column is not None and spec.description_column not in columns:
        spec = replace(spec, description_column=None)
    if spec.resolved_column is not None and spec.resolved_column not in columns:
        spec = replace(spec, resolved_column=None)
    if not set(spec.duplicate_where) <= columns:
        spec = replace(spec, duplicate_where={})
    return spec


# The vendored file's header exactly; any other Jira export is read with preset `jira`.
_HADOOP_HEADER = {
    "Summary",
    "Issue id",
    "Status",
    "Priority",
    "Resolution",
    "Created",
    "Resolved",
    "Affects Version/s",
    "Description",
}


def _recognised(path: Path, columns: set[str]) -> str | None:
    """Which preset's export this is, by its columns."""
    if set(PULL_COLUMNS) <= columns and "helpdesk_priority" in columns:
        return "helpdesk-pull"
    if columns == _HADOOP_HEADER:
        return "hadoop"
    if {"Summary", "Issue key", "Priority", "Status", "Created"} <= columns:
        return "jira"
    if {"Subject", "Priority", "Status", "Created at", "Requester"} <= columns:
        return "zendesk-csv"
    if {"subject", "description", "priority", "status", "created_at", "requester_id"} <= columns:
        return "zendesk-json"
    if {"Ticket ID", "Subject", "Priority", "Status", "Created time"} <= columns:
        return "freshdesk-csv"
    if path.suffix.lower() == ".tsv" and {"id", "Subject", "Status", "Priority"} <= columns:
        return "rt-tsv"
    return None


def recognise_export(path: str | Path) -> tuple[str | None, DataSpec]:
    """The spec to read an export with when no preset is given: a preset whose export it is, by
    its columns (the name is then returned, and the spec carries the time format the file
    uses), else the product's own columns, whose absence `load_dataset` explains."""
    path = Path(path)
    try:
        columns = set(_header(path))
        name = _recognised(path, columns)
        if name is not None:
            return name, _fitted(name, path, columns)
    except (OSError, UnicodeDecodeError, TrainingDataError):
        return None, DataSpec()
    return None, DataSpec()


@dataclass(frozen=True)
class Split:
    """A time-ordered split: fit on the oldest, validate on the next, test on the newest (by row
    order when the export has no time column)."""

    fit: list[Example]
    validation: list[Example]
    test: list[Example]


def time_split(
    examples: list[Example], test_fraction: float = 0.2, validation_fraction: float = 0.2
) -> Split:
    """Split time-ordered examples: the newest `test_fraction` is the test set, and the newest
    `validation_fraction` of the rest validates hyper-parameters and calibration."""
    n_train = int(len(examples) * (1 - test_fraction))
    train, test = examples[:n_train], examples[n_train:]
    n_fit = int(len(train) * (1 - validation_fraction))
    return Split(train[:n_fit], train[n_fit:], test)

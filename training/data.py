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
PRESETS: dict[str, DataSpec] = {
    # The vendored Apache Hadoop export with the three-level priority of the product.
    "hadoop": _HADOOP,
    # The same export with Jira's own five priorities.
    "hadoop-5": replace(_HADOOP, label_map=None, urgent_labels=("Blocker", "Critical")),
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
    elif suffix in (".csv", ".tsv"):
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ",")
            if reader.fieldnames is None:
                return
            for number, record in enumerate(reader, start=1):
                yield number, dict(record)
    else:
        raise TrainingDataError(f"{path.name}: unknown file type; use .csv, .tsv or .jsonl")


def _parse_time(value: Any, spec_format: str | None, column: str, row: int) -> datetime:
    try:
        return parse_export_time("" if value is None else str(value), spec_format)
    except ValueError as exc:
        raise TrainingDataError(str(exc), column=column, row=row) from None


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


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
    required += list(spec.where) + list(spec.duplicate_where)
    examples: list[Example] = []
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
        raw_label = _text(record[spec.label_column]).strip()
        if not raw_label:
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
                targets={name: _text(record[col]).strip() for name, col in targets.items()},
                is_duplicate=bool(spec.duplicate_where)
                and all(_text(record[c]).strip() == v for c, v in spec.duplicate_where.items()),
            )
        )
    if not seen_any:
        raise TrainingDataError(f"{path}: the file has a header but no rows")
    if len(examples) < MIN_ROWS:
        where = f" matching {dict(spec.where)}" if spec.where else ""
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
    return Dataset(examples, spec, path, hashlib.sha256(raw).hexdigest(), skipped)


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


def recognise_export(path: str | Path) -> tuple[str | None, DataSpec]:
    """The spec to read an export with when no preset is given: the product's own columns if
    the export has them, else a preset whose columns it has (the name is then returned), else
    the product's own columns, whose absence `load_dataset` explains."""
    path = Path(path)
    try:
        columns = set(_header(path))
    except (OSError, UnicodeDecodeError, TrainingDataError):
        return None, DataSpec()
    own = DataSpec()
    if {own.subject_column, own.label_column} <= columns:
        return None, own
    for name, spec in PRESETS.items():
        wanted = {spec.subject_column, spec.label_column, *spec.where}
        wanted |= {c for c in (spec.time_column, spec.description_column) if c}
        if wanted <= columns:
            return name, spec
    return None, own


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

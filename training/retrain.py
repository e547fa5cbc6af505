"""Retraining with a safety net: train a challenger on closed tickets plus agents' corrections,
judge it against the model in production on the same held-out recent window, and promote it only
if it is not worse beyond a tolerance. The registry records both sets of figures and why."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.enricher import load_enricher
from core.errors import RegistryError, TicketEnrichError, TrainingDataError
from core.ports import Correction, StoredTicket
from core.redaction import redact
from core.registry import ModelRegistry, ModelVersion, label_change
from training.data import PRESETS, Dataset, DataSpec, Example, load_dataset, recognise_export
from training.evaluate import score_rows
from training.model import ModelConfig, Progress
from training.train import train_model

_JUDGED = ("macro_f1", "urgent_recall")


@dataclass(frozen=True)
class RetrainDecision:
    """What a retraining run did and why."""

    challenger: ModelVersion
    champion: ModelVersion | None
    promoted: bool
    reason: str
    window: dict[str, Any]
    metrics: dict[str, dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        """The decision as JSON (what the registry records)."""
        return {
            "promoted": self.promoted,
            "reason": self.reason,
            "challenger": self.challenger.version,
            "champion": self.champion.version if self.champion else None,
            "window": self.window,
            "metrics": self.metrics,
        }


def _when(value: Any, fallback: str) -> datetime:
    text = str(value or fallback)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def corrections_as_examples(
    corrected: Sequence[tuple[StoredTicket, Correction]], target: str = "priority"
) -> list[Example]:
    """Agents' corrections of one target as labelled examples, dated when the ticket arrived."""
    examples = []
    for ticket, correction in corrected:
        if correction.target != target:
            continue
        body = ticket.ticket
        examples.append(
            Example(
                row=-1,
                doc={
                    "subject": str(body.get("subject") or ""),
                    "description": str(body.get("description") or ""),
                    "custom_fields": dict(body.get("custom_fields") or {}),
                },
                label=correction.label,
                created=_when(body.get("created_at"), ticket.received_at),
                resolved=None,
                source_id=ticket.external_id or ticket.id,
            )
        )
    return examples


def with_corrections(dataset: Dataset, corrections: Sequence[Example]) -> Dataset:
    """The closed tickets plus corrections, in time order; a correction of a ticket the export
    also holds replaces its label."""
    by_source = {c.source_id: c for c in corrections if c.source_id is not None}
    examples = [
        replace(e, label=by_source.pop(e.source_id).label)
        if e.source_id is not None and e.source_id in by_source
        else e
        for e in dataset.examples
    ]
    examples += [c for c in corrections if c.source_id is None or c.source_id in by_source]
    if dataset.time_ordered:
        examples.sort(key=_created)
    # An export without times is in row order; the corrections, the newest labels, follow it.
    digest = hashlib.sha256(dataset.sha256.encode())
    for c in corrections:
        digest.update(json.dumps([c.source_id, c.label, c.doc["subject"]]).encode())
    sha = dataset.sha256 if not corrections else digest.hexdigest()
    return replace(dataset, examples=examples, sha256=sha)


def _judge(
    champion: dict[str, Any], challenger: dict[str, Any], tolerance: float
) -> tuple[bool, str]:
    worse = []
    for key in _JUDGED:
        old, new = champion.get(key), challenger.get(key)
        if old is None or new is None:
            continue
        if new < old - tolerance:
            worse.append(f"{key} {new:.3f} < champion's {old:.3f} − {tolerance}")
    if worse:
        return False, "refused: " + "; ".join(worse)
    return True, f"promoted: not worse than the champion beyond {tolerance} on " + ", ".join(
        _JUDGED
    )


def retrain_model(
    dataset: Dataset,
    registry: ModelRegistry,
    *,
    work_dir: Path,
    corrections: Sequence[Example] = (),
    tolerance: float = 0.01,
    config: ModelConfig | None = None,
    progress: Progress | None = None,
) -> RetrainDecision:
    """Train a challenger, register it, judge it against production on the challenger's test
    window (the newest tickets, which it never trained on) and promote it or not."""
    say = progress or (lambda _msg: None)
    data = with_corrections(dataset, corrections)
    say(f"{len(corrections)} corrections added to {len(dataset.examples)} closed tickets")
    result = train_model(data, models_dir=work_dir, config=config, progress=say)
    champion = registry.production()
    challenger = registry.register(
        result.artifact_dir, parent=champion.version if champion else None
    )
    if champion is not None and challenger.version == champion.version:
        # Registering an existing version returns its entry: judging it would be judging the
        # champion against itself, and refusing it would take production out of production.
        raise RegistryError(f"the challenger has the production model's version {champion.version}")
    window = result.split.test
    last_seen = None
    metrics: dict[str, dict[str, Any]] = {}
    say(f"judging on the newest {len(window)} tickets")
    metrics["challenger"] = _summary(score_rows(load_enricher(result.artifact_dir), window))
    if champion is None:
        promoted, reason = True, "promoted: no model was in production"
    else:
        champ = load_enricher(registry.fetch(champion.version))
        if list(champ.metadata["labels"]) != list(result.metadata["labels"]):
            promoted, reason = (
                False,
                f"refused: labels {result.metadata['labels']} differ from the champion's "
                f"{champ.metadata['labels']}",
            )
        else:
            metrics["champion"] = _summary(score_rows(champ, window))
            promoted, reason = _judge(metrics["champion"], metrics["challenger"], tolerance)
        last_seen = champ.metadata.get("training_data", {}).get("last_created")
    window_facts: dict[str, Any] = {
        "rows": len(window),
        "first_created": _iso(window[0].created) if window else None,
        "last_created": _iso(window[-1].created) if window else None,
    }
    if last_seen is not None:
        when = _when(last_seen, last_seen)
        seen = sum(1 for e in window if e.created is not None and e.created <= when)
        window_facts["rows_the_champion_trained_on"] = seen
    decision = RetrainDecision(challenger, champion, promoted, reason, window_facts, metrics)
    say(reason)
    moved = registry.set_stage(
        challenger.version, "production" if promoted else "candidate", decision.as_dict()
    )
    return replace(decision, challenger=moved)


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: metrics.get(k) for k in ("rows", "macro_f1", "accuracy", "urgent_recall")}


def _created(example: Example) -> datetime:
    assert example.created is not None, "a time-ordered dataset has every creation time"
    return example.created


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


# --- a challenger for an admin to promote -------------------------------------------------------
# The agent UI trains a challenger beside the model the service is serving and leaves the choice
# to an admin: nothing here moves a version to production.

_SCORED = ("rows", "macro_f1", "accuracy", "urgent_recall", "per_class", "confusion_matrix")


@dataclass(frozen=True)
class Challenge:
    """A challenger judged against the serving model on the challenger's test window, waiting
    for an admin to promote or discard it."""

    challenger: ModelVersion
    champion: ModelVersion
    recommended: bool
    comparable: bool
    reason: str
    window: dict[str, Any]
    metrics: dict[str, dict[str, Any]]
    artifact_dir: Path
    labels: dict[str, list[str]] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The judgement as JSON (what the registry records on the candidate)."""
        return {
            "promoted": False,
            "recommended": self.recommended,
            "comparable": self.comparable,
            "reason": self.reason,
            "challenger": self.challenger.version,
            "champion": self.champion.version,
            "window": self.window,
            "metrics": self.metrics,
            "labels": self.labels,
        }


def own_test_figures(artifact_dir: Path, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """A model's figures on its own test window, as training wrote them (its evaluation report,
    else the metadata's summary), in the shape `challenge_champion` scores a window in."""
    path = Path(artifact_dir) / "report" / "metrics.json"
    report = json.loads(path.read_text()) if path.is_file() else {}
    test = dict(report.get("model") or (metadata.get("metrics") or {}).get("test") or {})
    data = metadata.get("training_data") or {}
    figures = _scored(test)
    if figures.get("rows") is None:
        figures["rows"] = (data.get("split") or {}).get("test")
    figures["window"] = "its own test window"
    figures["trained_until"] = data.get("last_created")
    return figures


def registered_champion(registry: ModelRegistry, serving_dir: Path) -> ModelVersion:
    """The serving artifact's registry entry, registering it first if needed; with no version in
    production yet, the serving one is put there, so that promoting a challenger archives it
    and a rollback can bring it back."""
    entry = registry.register(serving_dir)
    if registry.production() is None:
        entry = registry.set_stage(
            entry.version,
            "production",
            {"promoted": True, "reason": "serving when the first challenger was trained"},
        )
    return entry


def challenge_champion(
    dataset: Dataset,
    registry: ModelRegistry,
    serving_dir: Path,
    *,
    work_dir: Path,
    corrections: Sequence[Example] = (),
    tolerance: float = 0.01,
    config: ModelConfig | None = None,
    progress: Progress | None = None,
) -> Challenge:
    """Train a challenger on the closed tickets plus corrections into ``work_dir``, register it
    as a candidate (child of the serving model) and score both on the challenger's test window
    (the newest tickets, which it never trained on), with the same judge as `retrain_model`.

    Models with other priority labels are not comparable: the challenger is then not
    recommended, its figures on its window stand beside the serving model's on its own test
    window (``champion_own_window``), and ``labels`` lists what it adds and removes. The stage of
    no version changes besides the candidate's judgement."""
    say = progress or (lambda _msg: None)
    champion = registered_champion(registry, serving_dir)
    data = with_corrections(dataset, corrections)
    say(f"{len(corrections)} corrections added to {len(dataset.examples)} closed tickets")
    # out_dir, not models_dir: training must not move models_dir/latest, which a restarted
    # service would serve, to a model nobody has promoted.
    result = train_model(data, out_dir=work_dir, config=config, progress=say)
    challenger = registry.register(result.artifact_dir, parent=champion.version)
    if challenger.version == champion.version:
        raise RegistryError(f"the challenger has the serving model's version {champion.version}")
    window = result.split.test
    say(f"judging the challenger and the serving model on the newest {len(window)} tickets")
    metrics = {"challenger": _scored(score_rows(load_enricher(result.artifact_dir), window))}
    served = load_enricher(serving_dir)
    labels = label_change(served.metadata["labels"], result.metadata["labels"])
    comparable = labels["champion"] == labels["challenger"]
    if comparable:
        metrics["champion"] = _scored(score_rows(served, window))
        recommended, reason = _judge(metrics["champion"], metrics["challenger"], tolerance)
        reason = reason.replace("promoted:", "recommended:", 1)
    else:
        # The champion cannot be scored on labels it does not predict: each model's figures
        # are shown on its own test window instead, and the choice is the admin's alone.
        metrics["champion_own_window"] = own_test_figures(serving_dir, served.metadata)
        recommended, reason = False, _labels_differ(labels)
    window_facts = {
        "rows": len(window),
        "first_created": _iso(window[0].created) if window else None,
        "last_created": _iso(window[-1].created) if window else None,
    }
    say(reason)
    challenge = Challenge(
        challenger,
        champion,
        recommended,
        comparable,
        reason,
        window_facts,
        metrics,
        result.artifact_dir,
        labels,
    )
    moved = registry.set_stage(challenger.version, "candidate", challenge.as_dict())
    return replace(challenge, challenger=moved)


def _labels_differ(labels: Mapping[str, list[str]]) -> str:
    def listed(names: Sequence[str]) -> str:
        return ", ".join(names) or "none"

    return (
        f"no verdict: the challenger predicts {listed(labels['challenger'])}, the serving model "
        f"{listed(labels['champion'])} (added: {listed(labels['added'])}; removed: "
        f"{listed(labels['removed'])}), so they cannot be scored on the same labels; each "
        "model's figures are on its own test window, not like for like. An admin may promote "
        "it by accepting the new labels"
    )


def _scored(metrics: dict[str, Any]) -> dict[str, Any]:
    auto = metrics.get("auto_apply") or {}
    return {
        **{k: metrics.get(k) for k in _SCORED},
        "auto_apply": {"share": auto.get("share"), "precision": auto.get("precision")},
    }


def point_latest(models_dir: Path, artifact_dir: Path) -> None:
    """Point ``models_dir/latest`` (what `ticket-enrich serve` loads by default) at an artifact,
    atomically, so a restarted service serves the promoted model too."""
    models_dir.mkdir(parents=True, exist_ok=True)
    link = models_dir / "latest"
    scratch = models_dir / f".latest.{os.getpid()}.{threading.get_ident()}"
    scratch.unlink(missing_ok=True)
    scratch.symlink_to(Path(artifact_dir).resolve(), target_is_directory=True)
    os.replace(scratch, link)


# --- an uploaded export -------------------------------------------------------------------------
UPLOAD_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".ndjson")


def _structural_columns() -> set[str]:
    """Columns that hold no free text in any preset: labels, times, ids, statuses."""
    names: set[str] = {"helpdesk_priority", "helpdesk"}
    for spec in PRESETS.values():
        names.update(
            c
            for c in (spec.label_column, spec.time_column, spec.resolved_column, spec.id_column)
            if c is not None
        )
        names.update(spec.where, spec.where_in, spec.duplicate_where, spec.target_columns.values())
    return names


def _read_spec_columns(spec: DataSpec) -> set[str]:
    columns = {spec.subject_column, spec.label_column, *spec.field_columns}
    columns.update(
        c
        for c in (spec.description_column, spec.time_column, spec.resolved_column, spec.id_column)
        if c is not None
    )
    columns.update(spec.where, spec.where_in, spec.duplicate_where, spec.target_columns.values())
    return columns


def _upload_records(raw: bytes, suffix: str) -> list[dict[str, Any]]:
    """The records of an uploaded export, read in memory."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TrainingDataError(f"is not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise TrainingDataError("the file is empty")
    records: list[Any]
    if suffix in (".csv", ".tsv"):
        try:
            reader = csv.DictReader(io.StringIO(text), delimiter="\t" if suffix == ".tsv" else ",")
            records = [dict(r) for r in reader]
        except csv.Error as exc:
            raise TrainingDataError(f"is not a readable {suffix[1:].upper()} file: {exc}") from None
        # A short row leaves None under the extra columns and a long one a list under None.
        for number, record in enumerate(records, start=1):
            if None in record:
                raise TrainingDataError("has more values than the header has columns", row=number)
        return records
    try:
        whole = json.loads(text) if suffix == ".json" else None
    except ValueError:
        whole = None  # Zendesk's "JSON" export is one object a line
    if isinstance(whole, dict) and isinstance(whole.get("tickets"), list):
        whole = whole["tickets"]
    if isinstance(whole, list):
        records = whole
    else:
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError as exc:
                raise TrainingDataError(f"is not valid JSON: {exc}", row=number) from None
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise TrainingDataError("is not a JSON object", row=number)
    return records


def _write_records(path: Path, records: Sequence[Mapping[str, Any]], columns: list[str]) -> None:
    if path.suffix in (".csv", ".tsv"):
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(
                handle, columns, delimiter="\t" if path.suffix == ".tsv" else ","
            )
            writer.writeheader()
            writer.writerows(records)
        return
    with path.open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def _redacted_value(value: Any) -> Any:
    return redact(value)[0] if isinstance(value, str) and value else value


def read_upload(raw: bytes, filename: str, work_dir: Path) -> tuple[str | None, Dataset]:
    """An uploaded export (CSV, TSV, JSON or JSONL, in any recognised preset or the product's
    own columns) as a dataset, and the preset's name when one was recognised.

    Nothing of the upload reaches the disk unredacted: the preset is recognised on a copy that
    keeps only the columns no preset reads text from (ids, labels, times, statuses); then only
    the columns the preset reads are written to ``work_dir/export.jsonl``, their text redacted
    with `core.redaction`, as at intake. Raises `TrainingDataError` saying what is wrong."""
    suffix = Path(filename).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise TrainingDataError(
            f"{filename!r}: unknown file type; upload a .csv, .tsv, .json or .jsonl export"
        )
    records = _upload_records(raw, suffix)
    if not records:
        raise TrainingDataError("holds no tickets")
    header = list(records[0])
    structural = _structural_columns()
    work_dir.mkdir(parents=True, exist_ok=True)
    probe = work_dir / f"columns{'.jsonl' if suffix in ('.json', '.ndjson') else suffix}"
    blank = [{c: (r.get(c) if c in structural else "") for c in header} for r in records]
    _write_records(probe, blank, header)
    try:
        name, spec = recognise_export(probe)
    finally:
        probe.unlink(missing_ok=True)
    if name is None:
        absent = [c for c in (spec.subject_column, spec.label_column) if c not in header]
        if absent:
            shown = ", ".join(repr(c) for c in header[:20]) + (", …" if len(header) > 20 else "")
            raise TrainingDataError(
                f"is not an export this service recognises: its columns are {shown}; upload a "
                "Zendesk, Freshdesk, Jira or Request Tracker export as the helpdesk writes it, "
                "or a file with the columns subject, description, priority and created_at"
            )
        if spec.description_column not in header:
            spec = replace(spec, description_column=None)
    read = _read_spec_columns(spec)
    text = read - structural
    kept = [
        {c: (_redacted_value(r.get(c)) if c in text else r.get(c)) for c in r if c in read}
        for r in records
    ]
    export = work_dir / "export.jsonl"
    _write_records(export, kept, [])
    return name, load_dataset(export, spec)


# --- the same, in a process of its own ----------------------------------------------------------
class ChallengeFailed(TicketEnrichError):
    """Training a challenger in its own process failed; the message says why."""


def _challenge_child(queue: Any, args: dict[str, Any]) -> None:
    """The child's side of `challenge_in_subprocess`: progress, then the result or the error."""
    try:
        challenge = challenge_champion(
            **args, progress=lambda message: queue.put(("progress", message))
        )
    except TicketEnrichError as exc:
        queue.put(("error", str(exc)))
    except Exception as exc:  # its class and message are what the parent can report
        queue.put(("crash", f"{type(exc).__name__}: {exc}"))
    else:
        queue.put(("done", challenge))


def challenge_in_subprocess(
    dataset: Dataset,
    registry: ModelRegistry,
    serving_dir: Path,
    *,
    work_dir: Path,
    corrections: Sequence[Example] = (),
    tolerance: float = 0.01,
    config: ModelConfig | None = None,
    progress: Progress | None = None,
    poll_s: float = 0.2,
) -> Challenge:
    """`challenge_champion` in a fresh process (spawned, not forked: the caller may be a threaded
    web server), so the caller keeps its CPU time and its interpreter lock for serving while the
    challenger trains. Progress messages come back to ``progress``; a product error comes back
    as `ChallengeFailed` with its message, and so does a child that dies."""
    import multiprocessing
    import queue as queues

    say = progress or (lambda _msg: None)
    context = multiprocessing.get_context("spawn")
    channel = context.Queue()
    args = {
        "dataset": dataset,
        "registry": registry,
        "serving_dir": serving_dir,
        "work_dir": work_dir,
        "corrections": list(corrections),
        "tolerance": tolerance,
        "config": config,
    }
    # Daemonic: it ends with the service; training starts no processes of its own.
    child = context.Process(target=_challenge_child, args=(channel, args), daemon=True)
    child.start()
    try:
        while True:
            try:
                kind, payload = channel.get(timeout=poll_s)
            except queues.Empty:
                if child.is_alive():
                    continue
                try:  # it may have answered just before it ended
                    kind, payload = channel.get(timeout=poll_s)
                except queues.Empty:
                    raise ChallengeFailed(
                        f"the training process ended without a result (exit code {child.exitcode})"
                    ) from None
            if kind == "progress":
                say(str(payload))
            elif kind == "done":
                assert isinstance(payload, Challenge)
                return payload
            elif kind == "error":
                raise ChallengeFailed(str(payload))
            else:
                raise ChallengeFailed(f"training failed unexpectedly: {payload}")
    finally:
        child.join(5)
        if child.is_alive():
            child.terminate()
            child.join(5)
        channel.close()

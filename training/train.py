"""The training use case: closed tickets in, a versioned, verified model artifact out."""

from __future__ import annotations

import os
import platform
import secrets
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from core.artifact import write_artifact
from core.drift import REFERENCE_FILE
from core.enricher import INDEX_FILE, INDEX_POSTINGS_FILE
from core.model import MODEL_FORMAT
from core.rules import RULES_FILE
from core.schema import Limits
from training.baselines import tune_references, tuned_baselines
from training.data import Dataset, Example, Split, time_split
from training.decisions import decide
from training.default_rules import default_rules_for
from training.metrics import classification_metrics
from training.model import OTHER, ChosenClassifier, FittedModel, ModelConfig, Progress, fit_model
from training.reference import build_reference
from training.report import write_report

MODEL_NAME = "ticket-priority"
SAMPLE_COUNT = 6


@dataclass
class TrainingResult:
    """What training produced: the artifact, the fitted models and the test-window report."""

    artifact_dir: Path
    model: FittedModel
    split: Split
    report: dict[str, Any]
    metadata: dict[str, Any]


def model_version(created: datetime, data_sha256: str) -> str:
    """A new artifact's version: when it was made, the training data's hash, and a random
    part, so that two models trained on the same data within a second (another configuration,
    a retried job) never share a name in a models folder or a registry."""
    return f"{created:%Y%m%d.%H%M%S}-{data_sha256[:8]}-{secrets.token_hex(3)}"


def _library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for dist in ("ticket-enrich", "scikit-learn", "numpy", "scipy"):
        try:
            versions[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            versions[dist] = "unknown"
    return versions


def _target_label(model: FittedModel, name: str) -> Callable[[Example], str]:
    """How a closed ticket's label reads for one target (rare labels as the model merged them)."""
    if name == "priority":
        return lambda e: e.label
    known = set(model.classifiers[name].labels)
    return lambda e: e.targets[name] if e.targets[name] in known else OTHER


def _classification_report(
    model: FittedModel,
    name: str,
    split: Split,
    urgent: Sequence[str],
    tuned: dict[str, Any] | None = None,
) -> dict[str, Any]:
    chosen = model.classifiers[name]
    label_of = _target_label(model, name)
    if name != "priority":
        split = Split(
            *(
                [e for e in w if name in e.targets]
                for w in (split.fit, split.validation, split.test)
            )
        )
    proba = model.predict_proba([e.doc for e in split.test], name)
    chosen_columns = decide(proba, _weights(chosen))
    predicted = [chosen.labels[i] for i in chosen_columns]
    urgent_columns = [i for i, label in enumerate(chosen.labels) if label in urgent]
    metrics = classification_metrics(
        [label_of(e) for e in split.test],
        predicted,
        chosen.labels,
        list(urgent),
        proba[np.arange(len(predicted)), chosen_columns],
        _high_thresholds(chosen),
        proba[:, urgent_columns].sum(axis=1) if urgent_columns else None,
    )
    most_probable = None
    if chosen.classifier.decision_weights is not None:
        # The same model answering its most probable label: what the decision weights changed,
        # and the figure a trainer without them (Spark) is compared with.
        most_probable = classification_metrics(
            [label_of(e) for e in split.test],
            [chosen.labels[i] for i in proba.argmax(axis=1)],
            chosen.labels,
            list(urgent),
        )
    return {
        "model": metrics,
        "most_probable": most_probable,
        "baselines": tuned_baselines(split, label_of, chosen.labels, list(urgent), tuned),
        "decision": chosen.decision,
        "class_bands": chosen.class_bands,
        "validation": {
            "macro_f1": chosen.validation_macro_f1,
            "majority_macro_f1": chosen.validation_majority_macro_f1,
        },
    }


def _weights(chosen: ChosenClassifier) -> np.ndarray | None:
    weights = chosen.classifier.decision_weights
    return None if weights is None else np.asarray(weights, dtype=np.float64)


def _high_thresholds(chosen: ChosenClassifier) -> dict[str, float]:
    """Each label's auto-apply threshold: its own band where training chose one per class."""
    own = chosen.class_bands or {}
    return {label: own.get(label, chosen.bands)["high"] for label in chosen.labels}


def _resolution_report(model: FittedModel, split: Split) -> dict[str, Any] | None:
    if model.resolution is None:
        return None
    hours = np.array([e.resolution_hours for e in split.test], dtype=np.float64)
    train_hours = [e.resolution_hours for e in split.fit + split.validation]
    predicted = model.resolution.predict_hours(
        model.features.transform([e.doc for e in split.test])
    )
    median = float(np.median(np.array(train_hours, dtype=np.float64)))

    def errors(p50: np.ndarray) -> dict[str, float]:
        return {
            "median_abs_error_hours": float(np.median(np.abs(p50 - hours))),
            "mean_abs_error_hours": float(np.mean(np.abs(p50 - hours))),
            "median_abs_log_error": float(np.median(np.abs(np.log1p(p50) - np.log1p(hours)))),
        }

    return {
        "rows": len(hours),
        "model": {
            **errors(predicted["0.5"]),
            "interval_50_coverage": float(
                np.mean((hours >= predicted["0.25"]) & (hours <= predicted["0.75"]))
            ),
            "interval_90_coverage": float(
                np.mean((hours >= predicted["0.05"]) & (hours <= predicted["0.95"]))
            ),
        },
        "baseline_training_median": {"hours": median, **errors(np.full_like(hours, median))},
    }


def _duplicate_report(model: FittedModel, split: Split) -> dict[str, Any] | None:
    if model.index is None:
        return None
    is_dup = np.array([e.is_duplicate for e in split.test])
    scores = model.index.scores(model.text_block([e.doc for e in split.test]))
    flagged = scores.max(axis=1) >= model.index.threshold
    tp = int((flagged & is_dup).sum())
    return {
        "threshold": model.index.threshold,
        "validation": model.index.validation,
        "test": {
            "positives": int(is_dup.sum()),
            "flagged": int(flagged.sum()),
            "precision": tp / int(flagged.sum()) if flagged.any() else None,
            "recall": tp / int(is_dup.sum()) if is_dup.any() else None,
        },
    }


def _samples(model: FittedModel, examples: list[Example], limits: Limits) -> list[dict[str, Any]]:
    """A few test tickets, one per predicted priority where possible, with the outputs the
    scikit-learn models give them; serving must reproduce these to load the artifact."""
    usable = [
        e
        for e in examples
        if len(e.doc["description"].encode()) <= limits.description_bytes
        and len(e.doc["subject"].encode()) <= limits.subject_bytes
        and (e.doc["subject"].strip() or e.doc["description"].strip())
    ]
    if not usable:
        return []
    docs = [e.doc for e in usable]
    proba = {name: model.predict_proba(docs, name) for name in model.classifiers}
    columns = {name: decide(p, _weights(model.classifiers[name])) for name, p in proba.items()}
    predicted = np.asarray(model.labels)[columns["priority"]]
    chosen: list[int] = []
    for label in model.labels:
        chosen += [int(i) for i in np.flatnonzero(predicted == label)[:1]]
    chosen += [i for i in range(len(usable)) if i not in chosen][: SAMPLE_COUNT - len(chosen)]
    hours = (
        model.resolution.predict_hours(model.features.transform(docs)) if model.resolution else {}
    )
    samples = []
    for i in sorted(chosen)[:SAMPLE_COUNT]:
        e = usable[i]
        expected: dict[str, Any] = {
            name: {
                "label": model.classifiers[name].labels[int(columns[name][i])],
                "probabilities": dict(
                    zip(model.classifiers[name].labels, map(float, p[i]), strict=True)
                ),
            }
            for name, p in proba.items()
        }
        if hours:
            expected["resolution_hours"] = {q: float(v[i]) for q, v in hours.items()}
        ticket = {
            "subject": e.doc["subject"],
            "description": e.doc["description"],
            "custom_fields": {k: v for k, v in e.doc["custom_fields"].items() if v is not None},
        }
        samples.append({"ticket": ticket, "expected": expected})
    return samples


def _point_latest(models_dir: Path, artifact_dir: Path) -> None:
    link = models_dir / "latest"
    tmp = models_dir / f".latest.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(artifact_dir.name)
    os.replace(tmp, link)


def _classes_without_validation(split: Split) -> dict[str, list[str]]:
    """The priority classes the fit window has and the validation window lacks."""
    missing = sorted({e.label for e in split.fit} - {e.label for e in split.validation})
    return {"priority": missing} if missing else {}


def metrics_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of one target's test metrics, for the artifact's metadata."""
    keys = ("macro_f1", "accuracy", "urgent_recall", "calibration_error", "auto_apply")
    return {k: metrics[k] for k in keys}


def train_model(
    dataset: Dataset,
    *,
    out_dir: Path | None = None,
    models_dir: Path = Path("models"),
    config: ModelConfig | None = None,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.2,
    name: str = MODEL_NAME,
    progress: Progress | None = None,
) -> TrainingResult:
    """Fit the models on the oldest tickets, report on the newest, write the artifact.

    Without ``out_dir`` the artifact goes to ``models_dir/<version>`` and ``models_dir/latest``
    then points at it.
    """
    say = progress or (lambda _msg: None)
    split = time_split(dataset.examples, test_fraction, validation_fraction)
    if not split.fit or not split.validation or not split.test:
        raise ValueError("the split left a window empty; use more data or other fractions")
    order = "time-ordered" if dataset.time_ordered else "row order"
    say(
        f"{len(dataset.examples)} closed tickets: fit {len(split.fit)}, validation "
        f"{len(split.validation)}, test {len(split.test)} ({order})"
    )
    if not dataset.time_ordered:
        say(
            "the export has no time column: the split follows row order (oldest rows first), "
            "so put the rows in creation order or name the column with --time-column"
        )
    unvalidated = _classes_without_validation(split)
    for target, classes in unvalidated.items():
        say(
            f"{target}: no validation rows for {', '.join(map(repr, classes))}: their "
            "confidence is calibrated on the other classes only"
        )
    for skipped in dataset.skipped_targets:
        say(f"target {skipped!r}: the export has no such column; not trained")
    spec = dataset.spec
    # The references are tuned first: the priority decision must keep validation macro-F1 at
    # or above theirs.
    references = tune_references(split, lambda e: e.label)
    floor = max((p["validation_macro_f1"] for p in references.values()), default=None)
    if floor is not None:
        say(f"tuned references: best validation macro-F1 {floor:.3f}")
    model = fit_model(
        split.fit,
        split.validation,
        spec.field_columns,
        list(spec.target_columns),
        config,
        say,
        urgent=spec.urgent_labels,
        macro_f1_floor=floor,
    )
    labels = model.labels
    urgent = [u for u in spec.urgent_labels if u in labels]
    rules = default_rules_for(labels)
    say(
        f"priority rules: the default set {rules['version']} ({len(rules['rules'])} rules)"
        if rules is not None
        else "priority rules: none (the default set names labels this model does not have)"
    )

    say("evaluating on the test window beside the majority class and TF-IDF + LinearSVC")
    priority = _classification_report(model, "priority", split, urgent, references)
    targets = {
        # A secondary target is held against the majority class and the untuned reference:
        # tuning references for every target would double the training time.
        t: _classification_report(model, t, split, [], {})
        for t in model.classifiers
        if t != "priority"
    }
    resolution = _resolution_report(model, split)
    duplicates = _duplicate_report(model, split)

    created = datetime.now(UTC)
    version = model_version(created, dataset.sha256)
    if out_dir is None:
        out_dir = models_dir / version
    times = [e.created for e in dataset.examples if e.created is not None]
    metadata: dict[str, Any] = {
        "name": name,
        "version": version,
        "created_at": created.isoformat(timespec="seconds"),
        "format": MODEL_FORMAT,
        "target": "priority",
        "labels": labels,
        "urgent_labels": urgent,
        "custom_fields": list(spec.field_columns),
        "targets": {
            t: {
                "labels": c.labels,
                "bands": c.bands,
                "class_bands": c.class_bands,
                "decision": c.decision,
            }
            for t, c in model.classifiers.items()
        },
        "training_data": {
            "file": dataset.path.name,
            "sha256": dataset.sha256,
            "rows": len(dataset.examples),
            "rows_by_label": dict(sorted(Counter(e.label for e in dataset.examples).items())),
            "first_created": min(times).isoformat() if times else None,
            "last_created": max(times).isoformat() if times else None,
            "spec": spec.as_dict(),
            "skipped_targets": list(dataset.skipped_targets),
            "split": {
                "method": order,
                "classes_without_validation": unvalidated,
                "test_fraction": test_fraction,
                "validation_fraction": validation_fraction,
                "fit": len(split.fit),
                "validation": len(split.validation),
                "test": len(split.test),
            },
        },
        "features": model.params,
        "bands": model.bands,
        "rules": None
        if rules is None
        else {
            "file": RULES_FILE,
            "version": rules["version"],
            "names": [r["name"] for r in rules["rules"]],
        },
        "withheld_targets": {
            t: {
                "validation_macro_f1": c.validation_macro_f1,
                "validation_majority_macro_f1": c.validation_majority_macro_f1,
            }
            for t, c in model.classifiers.items()
            if not c.shipped
        },
        "metrics": {
            "test": metrics_summary(priority["model"]),
            "test_most_probable": None
            if priority["most_probable"] is None
            else {k: priority["most_probable"][k] for k in ("macro_f1", "urgent_recall")},
            "validation": {"macro_f1": model.classifiers["priority"].validation_macro_f1},
            "baselines": {
                b: {k: m[k] for k in ("macro_f1", "accuracy", "urgent_recall")}
                for b, m in priority["baselines"].items()
            },
            "targets": {t: metrics_summary(r["model"]) for t, r in targets.items()},
            "resolution_time": resolution,
            "duplicates": duplicates,
        },
        "libraries": _library_versions(),
    }
    report = {
        "title": f"{name} {version}: test window",
        "context": {
            "data": f"{dataset.path.name} (sha256 {dataset.sha256[:12]}…), "
            f"{len(dataset.examples)} rows",
            "split": f"{order}: fit {len(split.fit)}, validation {len(split.validation)}, "
            f"test {len(split.test)}"
            + ("" if dataset.time_ordered else " (the export has no time column)")
            + "".join(
                f"; {t} has no validation rows for {', '.join(c)}" for t, c in unvalidated.items()
            ),
            "chosen": ", ".join(f"{k}={v}" for k, v in model.params.items()),
            "bands": f"high ≥ {model.bands['high']:.3f}, medium ≥ {model.bands['medium']:.3f}",
        },
        **priority,
        "targets": targets,
        "resolution_time": resolution,
        "duplicates": duplicates,
    }
    say(f"writing the artifact to {out_dir}")
    index = model.export_index()
    model_spec, weights = model.export()
    say("profiling the training data and the model's answers for drift monitoring")
    reference = build_reference(
        model_spec,
        weights,
        metadata,
        split.fit + split.validation + split.test,
        split.validation + split.test,
        spec.field_columns,
    )
    extra: dict[str, Any] = {REFERENCE_FILE: reference.to_dict()}
    if rules is not None:
        extra[RULES_FILE] = rules
    if index is not None:
        extra.update({INDEX_FILE: index[0], INDEX_POSTINGS_FILE: index[1]})
    write_artifact(
        out_dir,
        model_spec,
        weights,
        metadata,
        _samples(model, split.test, Limits()),
        extra,
    )
    write_report(out_dir / "report", report)
    if out_dir.parent.resolve() == models_dir.resolve():
        _point_latest(models_dir, out_dir)
    say(
        f"test macro-F1 {priority['model']['macro_f1']:.3f} (TF-IDF + LinearSVC "
        f"{priority['baselines']['tfidf_linearsvc']['macro_f1']:.3f}, "
        f"majority {priority['baselines']['majority']['macro_f1']:.3f})"
    )
    return TrainingResult(out_dir, model, split, report, metadata)

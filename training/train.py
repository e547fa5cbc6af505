"""The training use case: closed tickets in, a versioned, verified model artifact out."""

from __future__ import annotations

import os
import platform
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from core.artifact import write_artifact
from core.model import MODEL_FORMAT
from core.schema import Limits
from training.data import Dataset, Example, Split, time_split
from training.metrics import classification_metrics
from training.model import FittedPriorityModel, ModelConfig, Progress, fit_priority_model
from training.report import write_report

MODEL_NAME = "ticket-priority"
SAMPLE_COUNT = 6


@dataclass
class TrainingResult:
    """What training produced: the artifact, the fitted pipeline and the test-window report."""

    artifact_dir: Path
    model: FittedPriorityModel
    split: Split
    report: dict[str, Any]
    metadata: dict[str, Any]


def _version(created: datetime, data_sha256: str) -> str:
    return f"{created:%Y%m%d.%H%M%S}-{data_sha256[:8]}"


def _library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for dist in ("ticket-enrich", "scikit-learn", "numpy", "scipy"):
        try:
            versions[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            versions[dist] = "unknown"
    return versions


def _text(e: Example) -> str:
    return f"{e.doc['subject']} {e.doc['description']}"


def reference_metrics(split: Split, labels: list[str], urgent: list[str]) -> dict[str, Any]:
    """The baselines every figure is quoted beside, trained on the same training window:
    the majority class, and a plain TF-IDF + LinearSVC with scikit-learn's defaults."""
    train = split.fit + split.validation
    y_train = [e.label for e in train]
    y_test = [e.label for e in split.test]
    majority = DummyClassifier(strategy="most_frequent").fit(np.zeros((len(train), 1)), y_train)
    vectorizer = TfidfVectorizer()
    svc = LinearSVC().fit(vectorizer.fit_transform([_text(e) for e in train]), y_train)
    return {
        "majority": classification_metrics(
            y_test, majority.predict(np.zeros((len(y_test), 1))), labels, urgent
        ),
        "tfidf_linearsvc": classification_metrics(
            y_test,
            svc.predict(vectorizer.transform([_text(e) for e in split.test])),
            labels,
            urgent,
        ),
    }


def _samples(
    model: FittedPriorityModel, examples: list[Example], limits: Limits
) -> list[dict[str, Any]]:
    """A few test tickets, one per predicted label where possible, with the outputs the
    scikit-learn model gives them; serving must reproduce these to load the artifact."""
    usable = [
        e
        for e in examples
        if len(e.doc["description"].encode()) <= limits.description_bytes
        and len(e.doc["subject"].encode()) <= limits.subject_bytes
        and (e.doc["subject"].strip() or e.doc["description"].strip())
    ]
    if not usable:
        return []
    proba = model.predict_proba([e.doc for e in usable])
    predicted = np.asarray(model.labels)[proba.argmax(axis=1)]
    chosen: list[int] = []
    for label in model.labels:
        chosen += [i for i in np.flatnonzero(predicted == label)[:1]]
    chosen += [i for i in range(len(usable)) if i not in chosen][
        : max(0, SAMPLE_COUNT - len(chosen))
    ]
    samples = []
    for i in sorted(chosen)[:SAMPLE_COUNT]:
        e = usable[i]
        ticket = {
            "subject": e.doc["subject"],
            "description": e.doc["description"],
            "custom_fields": {k: v for k, v in e.doc["custom_fields"].items() if v is not None},
        }
        samples.append(
            {
                "ticket": ticket,
                "expected": {
                    "priority": {
                        "label": str(predicted[i]),
                        "probabilities": dict(zip(model.labels, map(float, proba[i]), strict=True)),
                    }
                },
            }
        )
    return samples


def _point_latest(models_dir: Path, artifact_dir: Path) -> None:
    link = models_dir / "latest"
    tmp = models_dir / f".latest.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(artifact_dir.name)
    os.replace(tmp, link)


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
    """Fit the priority model on the oldest tickets, report on the newest, write the artifact.

    Without ``out_dir`` the artifact goes to ``models_dir/<version>`` and ``models_dir/latest``
    then points at it.
    """
    say = progress or (lambda _msg: None)
    split = time_split(dataset.examples, test_fraction, validation_fraction)
    if not split.fit or not split.validation or not split.test:
        raise ValueError("the split left a window empty; use more data or other fractions")
    say(
        f"{len(dataset.examples)} closed tickets: fit {len(split.fit)}, validation "
        f"{len(split.validation)}, test {len(split.test)} (time-ordered)"
    )
    spec = dataset.spec
    model = fit_priority_model(split.fit, split.validation, spec.field_columns, config, say)
    labels, urgent = model.labels, [u for u in spec.urgent_labels if u in model.labels]

    say("evaluating on the test window beside the majority class and TF-IDF + LinearSVC")
    y_test = [e.label for e in split.test]
    proba = model.predict_proba([e.doc for e in split.test])
    predicted = [labels[i] for i in proba.argmax(axis=1)]
    metrics = classification_metrics(
        y_test, predicted, labels, urgent, proba.max(axis=1), model.bands["high"]
    )
    baselines = reference_metrics(split, labels, urgent)

    created = datetime.now(UTC)
    version = _version(created, dataset.sha256)
    if out_dir is None:
        out_dir = models_dir / version
    times = [e.created for e in dataset.examples]
    metadata: dict[str, Any] = {
        "name": name,
        "version": version,
        "created_at": created.isoformat(timespec="seconds"),
        "format": MODEL_FORMAT,
        "target": "priority",
        "labels": labels,
        "urgent_labels": urgent,
        "custom_fields": list(spec.field_columns),
        "training_data": {
            "file": dataset.path.name,
            "sha256": dataset.sha256,
            "rows": len(dataset.examples),
            "rows_by_label": dict(sorted(Counter(e.label for e in dataset.examples).items())),
            "first_created": min(times).isoformat(),
            "last_created": max(times).isoformat(),
            "spec": spec.as_dict(),
            "split": {
                "method": "time-ordered",
                "test_fraction": test_fraction,
                "validation_fraction": validation_fraction,
                "fit": len(split.fit),
                "validation": len(split.validation),
                "test": len(split.test),
            },
        },
        "features": model.params,
        "bands": model.bands,
        "metrics": {
            "test": {
                k: metrics[k]
                for k in (
                    "macro_f1",
                    "accuracy",
                    "urgent_recall",
                    "calibration_error",
                    "auto_apply",
                )
            },
            "validation": model.validation,
            "baselines": {
                name: {k: m[k] for k in ("macro_f1", "accuracy", "urgent_recall")}
                for name, m in baselines.items()
            },
        },
        "libraries": _library_versions(),
    }
    report = {
        "title": f"{name} {version}: test window",
        "context": {
            "data": f"{dataset.path.name} (sha256 {dataset.sha256[:12]}…), "
            f"{len(dataset.examples)} rows",
            "split": f"time-ordered: fit {len(split.fit)}, validation {len(split.validation)}, "
            f"test {len(split.test)}",
            "chosen": f"C={model.params['C']}, class_weight={model.params['class_weight']}, "
            f"temperature {model.temperature:.3f}",
            "bands": f"high ≥ {model.bands['high']:.3f}, medium ≥ {model.bands['medium']:.3f}",
        },
        "model": metrics,
        "baselines": baselines,
    }
    say(f"writing the artifact to {out_dir}")
    write_artifact(out_dir, model.export(), metadata, _samples(model, split.test, Limits()))
    write_report(out_dir / "report", report)
    if out_dir.parent.resolve() == models_dir.resolve():
        _point_latest(models_dir, out_dir)
    say(
        f"test macro-F1 {metrics['macro_f1']:.3f} (TF-IDF + LinearSVC "
        f"{baselines['tfidf_linearsvc']['macro_f1']:.3f}, "
        f"majority {baselines['majority']['macro_f1']:.3f})"
    )
    return TrainingResult(out_dir, model, split, report, metadata)

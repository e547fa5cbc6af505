"""Evaluating a model artifact through the serving code path, on any closed-ticket export."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.enricher import Enricher
from core.errors import TrainingDataError
from core.schema import Ticket
from training.data import Dataset, Example, time_split
from training.metrics import classification_metrics
from training.report import write_report


def choose_rows(enricher: Enricher, dataset: Dataset, split: str) -> tuple[list[Example], str]:
    """The rows to evaluate on: `test` (the artifact's own test window), `all`, or `auto` —
    the test window when the data is the very file the model was trained on, else every row."""
    trained_on = enricher.metadata.get("training_data", {})
    if split == "auto":
        split = "test" if trained_on.get("sha256") == dataset.sha256 else "all"
    if split == "all":
        return dataset.examples, "all rows"
    fractions = trained_on.get("split", {})
    windows = time_split(
        dataset.examples,
        float(fractions.get("test_fraction", 0.2)),
        float(fractions.get("validation_fraction", 0.2)),
    )
    return windows.test, "the test window (newest tickets, never trained on)"


def score_rows(
    enricher: Enricher, rows: Sequence[Example], with_rules: bool = False
) -> dict[str, Any]:
    """The classification metrics of an artifact's priority as served (decision weights and
    per-class bands included): the model's own answer, or with ``with_rules`` the final one
    after the priority rules."""
    labels = list(enricher.metadata["labels"])
    urgent = list(enricher.metadata.get("urgent_labels", []))
    predicted, confidence, urgency = [], [], []
    for e in rows:
        ticket = Ticket.model_construct(
            subject=e.doc["subject"],
            description=e.doc["description"],
            custom_fields={k: v for k, v in e.doc["custom_fields"].items() if v is not None},
        )
        served = enricher.predict(ticket)["priority"]
        priority = served if with_rules else served.get("model_prediction", served)
        predicted.append(priority["label"])
        confidence.append(priority["confidence"])
        probabilities = served["probabilities"]
        urgency.append(sum(probabilities.get(u, 0.0) for u in urgent))
    class_bands = (enricher.metadata.get("targets", {}).get("priority") or {}).get("class_bands")
    high: float | dict[str, float] = (
        {label: float(b["high"]) for label, b in class_bands.items()}
        if class_bands
        else float(enricher.metadata["bands"]["high"])
    )
    return classification_metrics(
        [e.label for e in rows],
        predicted,
        labels,
        urgent,
        np.array(confidence),
        high,
        np.array(urgency) if urgent else None,
    )


def evaluate_model(
    enricher: Enricher, dataset: Dataset, split: str = "auto", out_dir: Path | None = None
) -> dict[str, Any]:
    """Score an artifact as served (pure-Python inference) and optionally write the report."""
    rows, described = choose_rows(enricher, dataset, split)
    truth = [e.label for e in rows]
    labels = list(enricher.metadata["labels"])
    urgent = list(enricher.metadata.get("urgent_labels", []))
    unknown = sorted(set(truth) - set(labels))
    if not set(truth) & set(labels):
        raise TrainingDataError(
            f"has labels {', '.join(sorted(set(truth)))}, none of which the model predicts "
            f"({', '.join(labels)}); read the data with the label mapping the model was "
            "trained with",
            column=dataset.spec.label_column,
        )
    metrics = score_rows(enricher, rows)
    with_rules = score_rows(enricher, rows, with_rules=True) if enricher.rules else None
    majority_label = Counter(enricher.metadata["training_data"]["rows_by_label"]).most_common(1)[0][
        0
    ]
    majority = classification_metrics(truth, [majority_label] * len(truth), labels, urgent)
    report: dict[str, Any] = {
        "title": f"{enricher.model_name} {enricher.model_version}: evaluation",
        "context": {
            "data": f"{dataset.path.name} (sha256 {dataset.sha256[:12]}…)",
            "rows": f"{len(rows)}: {described}",
            "labels not known to the model": ", ".join(unknown) or "none",
        },
        "model": metrics,
        "baselines": {"majority": majority}
        | ({"model_with_rules": with_rules} if with_rules is not None else {}),
    }
    if out_dir is not None:
        write_report(out_dir, report)
    return report

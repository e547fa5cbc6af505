"""The evaluation report: `metrics.json`, `report.md` and a confusion-matrix image."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def confusion_matrix_png(
    path: Path, matrix: list[list[int]], labels: list[str], title: str
) -> None:
    """Draw a confusion matrix (rows: true label, columns: predicted) to a PNG file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2.5, 1.1 * len(labels) + 2))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels=labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels=labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    peak = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            colour = "white" if peak and count > peak / 2 else "black"
            ax.text(j, i, str(count), ha="center", va="center", color=colour)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _decision_lines(report: dict[str, Any]) -> list[str]:
    """How the label and the auto-apply band were chosen on the validation window."""
    lines: list[str] = []
    decision = report.get("decision")
    if decision:
        weights = ", ".join(f"{k} × {v:.3f}" for k, v in decision["weights"].items())
        val, plain = decision["validation"], decision["validation_argmax"]
        lines += [
            "",
            "## Decision",
            "",
            f"- Objective: {decision['objective']}; met on validation: "
            f"{'yes' if decision['objective_met'] else 'no'}.",
            f"- Weights: {weights} (label = largest probability × weight).",
            f"- Validation: macro-F1 {_fmt(val['macro_f1'])}, urgent recall "
            f"{_fmt(val['urgent_recall'])}; most probable label: macro-F1 "
            f"{_fmt(plain['macro_f1'])}, urgent recall {_fmt(plain['urgent_recall'])}.",
        ]
        most = report.get("most_probable")
        if most:
            lines.append(
                f"- Test, most probable label instead: macro-F1 {_fmt(most['macro_f1'])}, "
                f"urgent recall {_fmt(most['urgent_recall'])}."
            )
    class_bands = report.get("class_bands")
    if class_bands:
        per_class = (report["model"].get("auto_apply") or {}).get("per_class") or {}
        lines += [
            "",
            "## Auto-apply per predicted class",
            "",
            "| label | high from | medium from | applied on test | precision |",
            "|---|---|---|---|---|",
        ]
        for label, bands in class_bands.items():
            got = per_class.get(label) or {}
            high = _fmt(bands["high"]) if bands["high"] <= 1 else "never"
            medium = _fmt(bands["medium"]) if bands["medium"] <= 1 else "never"
            lines.append(
                f"| {label} | {high} | {medium} | {got.get('applied', 0)} "
                f"| {_fmt(got.get('precision'))} |"
            )
    return lines


def write_report(out_dir: Path, report: dict[str, Any]) -> list[Path]:
    """Write the report files; `report` holds `title`, `model` metrics and optional
    `baselines` (name → metrics), `context` (free-form facts) and `bands`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model = report["model"]
    baselines: dict[str, dict[str, Any]] = report.get("baselines", {})
    columns = {"model": model, **baselines}
    paths = [out_dir / "metrics.json", out_dir / "report.md", out_dir / "confusion_matrix.png"]
    # The AWS retrain function leaves matplotlib out to fit Lambda's 250 MB package limit.
    draw = importlib.util.find_spec("matplotlib") is not None
    paths[0].write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    auto = {k: (v.get("auto_apply") or {}) for k, v in columns.items()}
    rows = [
        ("macro-F1", {k: v["macro_f1"] for k, v in columns.items()}),
        ("accuracy", {k: v["accuracy"] for k, v in columns.items()}),
        ("urgent recall", {k: v["urgent_recall"] for k, v in columns.items()}),
        (
            "urgent average precision",
            {k: v.get("urgent_average_precision") for k, v in columns.items()},
        ),
        ("calibration error (ECE)", {k: v["calibration_error"] for k, v in columns.items()}),
        ("auto-apply share at high", {k: auto[k].get("share") for k in columns}),
        ("precision at high", {k: auto[k].get("precision") for k in columns}),
    ]
    lines = [f"# {report['title']}", ""]
    for key, value in report.get("context", {}).items():
        lines.append(f"- {key}: {value}")
    lines += ["", "| metric | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, values in rows:
        lines.append(f"| {name} | " + " | ".join(_fmt(values[k]) for k in columns) + " |")
    lines += _decision_lines(report)
    lines += ["", "## Per class (model)", "", "| label | precision | recall | F1 | support |"]
    lines.append("|---|---|---|---|---|")
    for label, m in model["per_class"].items():
        lines.append(
            f"| {label} | {_fmt(m['precision'])} | {_fmt(m['recall'])} | {_fmt(m['f1'])} "
            f"| {m['support']} |"
        )
    lines += [
        "",
        "## Confusion matrix (model)",
        "",
        "![confusion matrix](confusion_matrix.png)" if draw else "(in metrics.json)",
        "",
    ]
    for name, section in report.get("targets", {}).items():
        columns = {"model": section["model"], **section["baselines"]}
        lines += [f"## Target `{name}`", "", "| metric | " + " | ".join(columns) + " |"]
        lines.append("|---" * (len(columns) + 1) + "|")
        for metric in ("macro_f1", "accuracy", "calibration_error"):
            lines.append(
                f"| {metric} | " + " | ".join(_fmt(c.get(metric)) for c in columns.values()) + " |"
            )
        lines.append("")
    resolution = report.get("resolution_time")
    if resolution:
        model_t, base = resolution["model"], resolution["baseline_training_median"]
        lines += [
            "## Resolution time (hours)",
            "",
            f"| metric | model | median of the training set ({base['hours']:.0f} h) |",
            "|---|---|---|",
        ]
        for metric in ("median_abs_error_hours", "mean_abs_error_hours", "median_abs_log_error"):
            lines.append(f"| {metric} | {_fmt(model_t[metric])} | {_fmt(base[metric])} |")
        lines += [
            f"| 50 % interval coverage | {_fmt(model_t['interval_50_coverage'])} | |",
            f"| 90 % interval coverage | {_fmt(model_t['interval_90_coverage'])} | |",
            "",
        ]
    duplicates = report.get("duplicates")
    if duplicates:
        v, t = duplicates["validation"], duplicates["test"]
        lines += [
            "## Possible duplicates",
            "",
            f"Best-match similarity ≥ {duplicates['threshold']:.3f} (chosen for F1 on the "
            "validation window's tickets closed as Duplicate).",
            "",
            "| window | positives | precision | recall |",
            "|---|---|---|---|",
            f"| validation | {v['positives']} | {_fmt(v['precision'])} | {_fmt(v['recall'])} |",
            f"| test | {t['positives']} | {_fmt(t['precision'])} | {_fmt(t['recall'])} |",
            "",
        ]
    paths[1].write_text("\n".join(lines))
    if not draw:
        return paths[:2]
    cm = model["confusion_matrix"]
    confusion_matrix_png(paths[2], cm["matrix"], cm["labels"], report["title"])
    return paths

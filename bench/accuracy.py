"""Accuracy on the reference split: the model beside the majority class and TF-IDF + LinearSVC."""

from __future__ import annotations

from typing import Any

from bench.context import Context, log
from bench.markdown import fmt, table

PRESETS = ("hadoop", "hadoop-5")
SYSTEMS = ("model", "majority", "tfidf_linearsvc")


def _figures(metrics: dict[str, Any]) -> dict[str, Any]:
    auto = metrics.get("auto_apply") or {}
    return {
        "macro_f1": metrics["macro_f1"],
        "urgent_recall": metrics["urgent_recall"],
        "accuracy": metrics["accuracy"],
        "calibration_error": metrics["calibration_error"],
        "auto_apply_threshold": auto.get("threshold"),
        "auto_apply_share": auto.get("share"),
        "auto_apply_precision": auto.get("precision"),
    }


def bench_accuracy(ctx: Context) -> dict[str, Any]:
    """Train each label set with `train_model` and read the test-window report."""
    sets: dict[str, Any] = {}
    for preset in PRESETS:
        result = ctx.trained(preset)
        report = result.report
        systems = {"model": _figures(report["model"])}
        systems |= {name: _figures(m) for name, m in report["baselines"].items()}
        sets[preset] = {
            "labels": result.model.labels,
            "split": {
                "fit": len(result.split.fit),
                "validation": len(result.split.validation),
                "test": len(result.split.test),
            },
            "chosen": result.model.params,
            "bands": result.model.bands,
            "systems": systems,
            "model_macro_f1_ge_reference": (
                systems["model"]["macro_f1"] >= systems["tfidf_linearsvc"]["macro_f1"]
            ),
            "train_seconds_in_process": ctx.train_seconds(preset),
        }
        log(
            f"{preset}: model macro-F1 {systems['model']['macro_f1']:.3f}, "
            f"reference {systems['tfidf_linearsvc']['macro_f1']:.3f}"
        )
    return {"label_sets": sets}


def render_accuracy(result: dict[str, Any]) -> list[str]:
    """Markdown for `bench_accuracy`."""
    rows = []
    verdicts = []
    for preset, data in result["label_sets"].items():
        for system in SYSTEMS:
            f = data["systems"][system]
            rows.append(
                [
                    preset,
                    system,
                    fmt(f["macro_f1"]),
                    fmt(f["urgent_recall"]),
                    fmt(f["accuracy"]),
                    fmt(f["auto_apply_share"]),
                    fmt(f["auto_apply_precision"]),
                    fmt(f["calibration_error"]),
                ]
            )
        split = data["split"]
        verdicts.append(
            f"- `{preset}` ({', '.join(data['labels'])}; fit {split['fit']}, validation "
            f"{split['validation']}, test {split['test']}): model macro-F1 ≥ TF-IDF + LinearSVC: "
            f"**{'yes' if data['model_macro_f1_ge_reference'] else 'no'}**; high band from "
            f"confidence {fmt(data['bands']['high'])}"
            + (
                " (no threshold reached the target precision: nothing auto-applies)"
                if data["bands"]["high"] > 1
                else ""
            )
        )
    return [
        "## Accuracy (test window of the reference split)",
        "",
        *table(
            [
                "label set",
                "system",
                "macro-F1",
                "urgent recall",
                "accuracy",
                "auto-apply share",
                "precision at high",
                "calibration error",
            ],
            rows,
        ),
        "",
        *verdicts,
        "- Baselines give labels without confidences, so they have no auto-apply or calibration.",
    ]

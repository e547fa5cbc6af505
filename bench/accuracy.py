"""Accuracy on the reference split: the model beside the majority class and TF-IDF + LinearSVC."""

from __future__ import annotations

from typing import Any

from bench.context import MAIN_PRESET, Context, log
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


def _classes(report: dict[str, Any]) -> dict[str, Any]:
    """Macro-F1 and accuracy of the model and of each baseline, for one classification target."""
    systems = {"model": report["model"], **report["baselines"]}
    return {
        name: {"macro_f1": m["macro_f1"], "accuracy": m["accuracy"]} for name, m in systems.items()
    }


def _f1(precision: float | None, recall: float | None) -> float | None:
    if precision is None or recall is None:
        return None
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _beyond_priority(preset: str, report: dict[str, Any]) -> dict[str, Any]:
    """Resolution time, possible duplicates and the secondary targets from the test-window report
    (`None` where the model has no such part)."""
    resolution = report.get("resolution_time")
    duplicates = report.get("duplicates")
    if resolution is not None:
        model, baseline = resolution["model"], resolution["baseline_training_median"]
        resolution = resolution | {
            "model_beats_baseline": (
                model["median_abs_error_hours"] < baseline["median_abs_error_hours"]
            ),
        }
    if duplicates is not None:
        test = duplicates["test"]
        duplicates = duplicates | {"test": test | {"f1": _f1(test["precision"], test["recall"])}}
    return {
        "preset": preset,
        "resolution_time": resolution,
        "duplicates": duplicates,
        "targets": {name: _classes(t) for name, t in report.get("targets", {}).items()},
    }


def bench_accuracy(ctx: Context) -> dict[str, Any]:
    """Train each label set with `train_model` and read the test-window report; for the main
    label set, also the enrichments beyond priority."""
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
    beyond = _beyond_priority(MAIN_PRESET, ctx.trained(MAIN_PRESET).report)
    if beyond["resolution_time"] is not None:
        r = beyond["resolution_time"]
        log(
            f"{MAIN_PRESET}: resolution time median abs error "
            f"{r['model']['median_abs_error_hours']:.1f} h, training median "
            f"{r['baseline_training_median']['median_abs_error_hours']:.1f} h"
        )
    return {"label_sets": sets, "beyond_priority": beyond}


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
    lines = [
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
    if "beyond_priority" in result:
        lines += ["", *_render_beyond_priority(result["beyond_priority"])]
    return lines


def _render_resolution_time(preset: str, r: dict[str, Any] | None) -> list[str]:
    if r is None:
        return [f"- `{preset}`: the model has no resolution-time regressor."]
    model, base = r["model"], r["baseline_training_median"]
    rows = [
        [
            "model (ridge on log hours, p50)",
            fmt(model["median_abs_error_hours"], 1),
            fmt(model["mean_abs_error_hours"], 1),
            fmt(model["median_abs_log_error"]),
            fmt(model["interval_50_coverage"]),
            fmt(model["interval_90_coverage"]),
        ],
        [
            f"median of the training set ({fmt(base['hours'], 1)} h for every ticket)",
            fmt(base["median_abs_error_hours"], 1),
            fmt(base["mean_abs_error_hours"], 1),
            fmt(base["median_abs_log_error"]),
            "—",
            "—",
        ],
    ]
    return [
        f"### Resolution time (`{preset}`, {r['rows']} test tickets, hours)",
        "",
        *table(
            [
                "system",
                "median abs error h",
                "mean abs error h",
                "median abs log error",
                "p25–p75 coverage (target 0.50)",
                "p5–p95 coverage (target 0.90)",
            ],
            rows,
        ),
        "",
        f"- Model median abs error < median of the training set: "
        f"**{fmt(r['model_beats_baseline'])}**. Log error is |log(1 + predicted) − "
        f"log(1 + actual)|; coverage is the share of test tickets whose actual time falls inside "
        f"the predicted interval.",
    ]


def _render_duplicates(preset: str, d: dict[str, Any] | None) -> list[str]:
    if d is None:
        return [f"- `{preset}`: the model has no similar-ticket index."]
    v, t = d["validation"], d["test"]
    rows = [
        [
            "validation (threshold chosen here, best F1)",
            fmt(v["positives"]),
            "—",
            fmt(v["precision"]),
            fmt(v["recall"]),
            fmt(v["f1"]),
        ],
        [
            "test",
            fmt(t["positives"]),
            fmt(t["flagged"]),
            fmt(t["precision"]),
            fmt(t["recall"]),
            fmt(t["f1"]),
        ],
    ]
    return [
        f"### Possible duplicate (`{preset}`, best-match score ≥ {fmt(d['threshold'])})",
        "",
        *table(["window", "duplicates", "flagged", "precision", "recall", "F1"], rows),
        "",
        "- Duplicates are the tickets closed as duplicate; flagged are those whose best match in "
        "the index scores at or above the threshold. Test F1 is computed here from its precision "
        "and recall.",
    ]


def _render_targets(preset: str, targets: dict[str, Any]) -> list[str]:
    if not targets:
        return [f"- `{preset}`: no secondary classification target."]
    rows = [
        [
            f"`{name}`",
            system,
            fmt(figures["macro_f1"]),
            fmt(figures["accuracy"]),
        ]
        for name, systems in targets.items()
        for system, figures in systems.items()
    ]
    verdicts = [
        f"- `{name}`: model macro-F1 ≥ TF-IDF + LinearSVC: "
        f"**{fmt(s['model']['macro_f1'] >= s['tfidf_linearsvc']['macro_f1'])}**; "
        f"≥ majority class: **{fmt(s['model']['macro_f1'] >= s['majority']['macro_f1'])}**."
        for name, s in targets.items()
    ]
    return [
        f"### Secondary targets (`{preset}`, test window)",
        "",
        *table(["target", "system", "macro-F1", "accuracy"], rows),
        "",
        *verdicts,
    ]


def _render_beyond_priority(beyond: dict[str, Any]) -> list[str]:
    preset = beyond["preset"]
    return [
        *_render_resolution_time(preset, beyond["resolution_time"]),
        "",
        *_render_duplicates(preset, beyond["duplicates"]),
        "",
        *_render_targets(preset, beyond["targets"]),
    ]

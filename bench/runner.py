"""Run the selected benchmarks, write `results.json` and `results.md`, print the summary."""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.accuracy import bench_accuracy, render_accuracy
from bench.aws import bench_aws, render_aws
from bench.azure import bench_azure, render_azure
from bench.coldstart import bench_coldstart, render_coldstart
from bench.context import Context, RunSettings, log, machine_facts
from bench.delivery import bench_delivery, render_delivery
from bench.gcp import bench_gcp, render_gcp
from bench.http import bench_http, render_http
from bench.latency import bench_latency, render_latency
from bench.markdown import fmt, size, table
from bench.nlp import bench_nlp, render_nlp
from bench.pii import bench_pii, render_pii
from bench.size import bench_size, render_size
from bench.spark import bench_spark, render_spark
from bench.training_cost import bench_training, render_training

Benchmark = Callable[[Context], dict[str, Any]]
Renderer = Callable[[dict[str, Any]], list[str]]

BENCHMARKS: dict[str, tuple[Benchmark, Renderer]] = {
    "accuracy": (bench_accuracy, render_accuracy),
    "coldstart": (bench_coldstart, render_coldstart),
    "latency": (bench_latency, render_latency),
    "training": (bench_training, render_training),
    "size": (bench_size, render_size),
    "pii": (bench_pii, render_pii),
    "nlp": (bench_nlp, render_nlp),
    "delivery": (bench_delivery, render_delivery),
    "http": (bench_http, render_http),
    "aws": (bench_aws, render_aws),
    "gcp": (bench_gcp, render_gcp),
    "azure": (bench_azure, render_azure),
    "spark": (lambda ctx: bench_spark(ctx, ctx.settings.spark_rows), render_spark),
}
# Run only when named with --only: an hour on two cores at the default size.
ON_REQUEST = ("spark",)

DEFAULT_OUTPUT = Path(__file__).resolve().parent


def _ratio_row(label: str, ours: float, theirs: float, digits: int = 3) -> list[str]:
    return [label, fmt(ours, digits), fmt(theirs, digits), fmt(ours / theirs, 2)]


def _summary(results: dict[str, Any]) -> list[str]:
    """The side-by-side headline: the service beside the scikit-learn pipeline."""
    rows: list[list[str]] = []
    if "coldstart" in results:
        c = results["coldstart"]
        sk = c["sklearn_joblib"]
        rows += [
            _ratio_row(
                "cold start to first answer, median ms (default fields)",
                c["service"]["wall"]["median_ms"],
                sk["wall"]["median_ms"],
                1,
            ),
            _ratio_row(
                "cold start to first answer, median ms (priority only)",
                c["service_priority_only"]["wall"]["median_ms"],
                sk["wall"]["median_ms"],
                1,
            ),
            _ratio_row(
                "cold start peak RSS, MiB (default fields)",
                c["service"]["peak_rss_mib"],
                sk["peak_rss_mib"],
                1,
            ),
        ]
    if "latency" in results:
        s = results["latency"]["systems"]
        ours, only, theirs = (
            s["service_enrich"],
            s["service_enrich_priority_only"],
            s["sklearn_one_at_a_time"],
        )
        rows += [
            _ratio_row(
                "one ticket warm, p50 ms (default fields)", ours["p50_ms"], theirs["p50_ms"]
            ),
            _ratio_row(
                "one ticket warm, p99 ms (default fields)", ours["p99_ms"], theirs["p99_ms"]
            ),
            _ratio_row("one ticket warm, p50 ms (priority only)", only["p50_ms"], theirs["p50_ms"]),
            _ratio_row(
                "tickets/s one at a time (default fields)",
                ours["tickets_per_s"],
                theirs["tickets_per_s"],
                0,
            ),
        ]
    if "size" in results:
        z = results["size"]
        rows += [
            [
                "model files (artifact vs joblib pickle)",
                size(z["artifact"]["loaded_files_bytes"]),
                size(z["joblib_pickle_bytes"]),
                fmt(z["artifact"]["loaded_files_bytes"] / z["joblib_pickle_bytes"], 2),
            ],
            [
                "installed runtime (service dependencies vs scikit-learn + NumPy + SciPy)",
                size(z["installed"]["serving_dependencies"]["total_bytes"]),
                size(z["installed"]["sklearn_numpy_scipy"]["total_bytes"]),
                fmt(
                    z["installed"]["serving_dependencies"]["total_bytes"]
                    / z["installed"]["sklearn_numpy_scipy"]["total_bytes"],
                    3,
                ),
            ],
        ]
    if "accuracy" in results:
        for preset, data in results["accuracy"]["label_sets"].items():
            systems = data["systems"]
            reference = data.get("strongest_reference", "tfidf_linearsvc")
            rows.append(
                [
                    f"priority macro-F1 `{preset}` (model vs strongest reference, `{reference}`)",
                    fmt(systems["model"]["macro_f1"]),
                    fmt(systems[reference]["macro_f1"]),
                    "≥ reference" if data["model_macro_f1_ge_reference"] else "< reference",
                ]
            )
        rows += _beyond_priority_rows(results["accuracy"].get("beyond_priority"))
    if "training" in results:
        t = results["training"]
        rows.append(
            [
                f"training `{t['preset']}`, fresh process (wall s / peak RSS MiB)",
                f"{t['wall_median_s']:.1f} s / {t['peak_rss_mib']:.0f} MiB",
                "—",
                "—",
            ]
        )
    if "pii" in results:
        overall = results["pii"]["quality"]["overall"]
        rows.append(
            [
                f"PII redaction, labelled corpus: recall / precision overall "
                f"({overall['expected']} values)",
                f"{fmt(overall['recall'])} / {fmt(overall['precision'])}",
                "—",
                "—",
            ]
        )
    if "delivery" in results:
        rows += _delivery_rows(results["delivery"])
    targets = _target_rows(results)
    if not rows and not targets:
        return []
    lines = ["## Summary", ""]
    if rows:
        lines += [
            *table(["measure", "service (artifact)", "scikit-learn (joblib)", "ratio"], rows),
            "",
            "Ratio is service / scikit-learn. Same split, same trained model: the service reads it "
            "from its artifact, scikit-learn from the priority pipeline saved with `joblib.dump`, "
            "which predicts priority only; the service's default fields add every other "
            "enrichment (listed under Cold start), so the priority-only rows are the like-for-like "
            "ones. Accuracy rows put the model in the first column and the named baseline in the "
            "second.",
        ]
    if targets:
        lines += [
            "",
            "### Targets",
            "",
            *table(["target", "measured", "limit", "met"], targets),
        ]
        if "coldstart" in results or "latency" in results:
            lines += [
                "",
                "Cold start is the median wall time of a fresh process to its first answer "
                "(interpreter start-up included); per-ticket p50 is `enrich` in a warm process. "
                "Every field on is the default fields.",
            ]
    return lines


def _delivery_rows(d: dict[str, Any]) -> list[list[str]]:
    """Summary rows for delivery to a loopback webhook receiver."""
    t, b = d["throughput"], d["backlog"]
    per = t["per_delivery"]
    check = b["check"]
    return [
        [
            f"webhook delivery on loopback, {t['tickets']} tickets: deliveries/s "
            f"(per delivery p50 / p99 ms)",
            f"{t['deliveries_per_s']:.0f}/s ({fmt(per['p50_ms'], 2)} / {fmt(per['p99_ms'], 2)})",
            "—",
            "—",
        ],
        [
            f"backlog of {b['tickets']} after a receiver outage: s to drain "
            f"(retry base {d['policy']['base_s']} s; distinct keys / duplicates created)",
            f"{b['recovery_s']:.2f} s ({check['distinct_keys']} / {check['duplicates_created']})",
            "—",
            "—",
        ],
    ]


def _beyond_priority_rows(beyond: dict[str, Any] | None) -> list[list[str]]:
    """Summary rows for the enrichments beyond priority (main label set)."""
    if beyond is None:
        return []
    preset = beyond["preset"]
    rows: list[list[str]] = []
    for name, systems in beyond["targets"].items():
        ours = systems["model"]["macro_f1"]
        reference = max(
            float(x["macro_f1"]) for n, x in systems.items() if n not in ("model", "majority")
        )
        rows.append(
            [
                f"{name} macro-F1 `{preset}` (model vs strongest reference)",
                fmt(ours),
                fmt(reference),
                "≥ reference" if ours >= reference else "< reference",
            ]
        )
    r = beyond["resolution_time"]
    if r is not None:
        ours, baseline = (
            r["model"]["median_abs_error_hours"],
            r["baseline_training_median"]["median_abs_error_hours"],
        )
        rows.append(
            [
                f"resolution time `{preset}`, median abs error h (model vs median of the "
                f"training set)",
                fmt(ours, 1),
                fmt(baseline, 1),
                "< baseline" if ours < baseline else "≥ baseline",
            ]
        )
    d = beyond["duplicates"]
    if d is not None:
        test = d["test"]
        rows.append(
            [
                f"possible duplicate `{preset}`, test precision / recall "
                f"({test['flagged']} flagged, {test['positives']} duplicates)",
                f"{fmt(test['precision'])} / {fmt(test['recall'])}",
                "—",
                "—",
            ]
        )
    return rows


def _check(
    label: str, measured: float, limit: float, detail: str = "", unit: str = "ms"
) -> list[str]:
    shown = f"{measured:.3f} {unit}" if measured < 10 else f"{measured:.1f} {unit}"
    bound = f"{limit:.3f} {unit}" if limit < 10 else f"{limit:.1f} {unit}"
    return [label, shown + (f" ({detail})" if detail else ""), f"≤ {bound}", fmt(measured <= limit)]


def _accuracy_targets(acc: dict[str, Any]) -> list[list[str]]:
    """Issue 22's targets: urgent recall with macro-F1, auto-apply, the generic set, rule cost."""
    rows: list[list[str]] = []
    main = acc["label_sets"].get("hadoop")
    if main is not None:
        m = main["systems"]["model"]
        ref = main["systems"][main.get("strongest_reference", "tfidf_linearsvc")]["macro_f1"]
        ok = m["urgent_recall"] >= 0.5 and m["macro_f1"] >= max(0.48, ref)
        rows.append(
            [
                "`hadoop` test: urgent recall ≥ 0.5 with macro-F1 ≥ 0.48 and ≥ the strongest "
                "reference",
                f"recall {fmt(m['urgent_recall'])}, macro-F1 {fmt(m['macro_f1'])} "
                f"(reference {fmt(ref)})",
                "≥ 0.5; ≥ 0.48",
                fmt(ok),
            ]
        )
        share = m["auto_apply_share"] or 0.0
        per_class = m.get("auto_apply_per_class") or {}
        worst = min(
            (c["precision"] for c in per_class.values() if c.get("precision") is not None),
            default=None,
        )
        rows.append(
            [
                "`hadoop` test: ≥ 10 % auto-applied, every auto-applied class ≥ 0.90 precise",
                f"{share:.1%} auto-applied; least precise class {fmt(worst)}",
                "≥ 10 %; ≥ 0.90",
                fmt(share >= 0.1 and worst is not None and worst >= 0.9),
            ]
        )
    five = acc["label_sets"].get("hadoop-5")
    if five is not None:
        f1 = five["systems"]["model"]["macro_f1"]
        rows.append(["`hadoop-5` test: macro-F1 ≥ 0.35", fmt(f1), "≥ 0.35", fmt(f1 >= 0.35)])
    rules = acc.get("rules")
    if rules is not None:
        both = rules["generic_set"]["systems"]["model + rules"]
        rows.append(
            [
                "generic set, model + rules: urgent recall ≥ 0.8, ≤ 10 % of lows called urgent",
                f"recall {fmt(both['urgent_recall'])}, lows called urgent "
                f"{fmt(both['low_called_urgent'])}",
                "≥ 0.8; ≤ 0.10",
                fmt(both["urgent_recall"] >= 0.8 and both["low_called_urgent"] <= 0.1),
            ]
        )
        lat = rules["latency"]
        rows.append(
            _check(
                "per-ticket p50 with rules ≤ without + 0.05 ms",
                lat["on"]["p50_ms"],
                lat["off"]["p50_ms"] + 0.05,
                f"without {lat['off']['p50_ms']:.3f} ms",
            )
        )
    return rows


def _target_rows(results: dict[str, Any]) -> list[list[str]]:
    """Each target of the work items: what was measured, the limit, met or not."""
    rows: list[list[str]] = []
    if "latency" in results:
        lat = results["latency"]
        every = lat["systems"]["service_enrich"]
        limits = lat["targets"]["limits"]
        if lat.get("default_is_every_field", False):
            rows += [
                _check(f"per-ticket {q}, every field on (in process)", every[k], limits[k])
                for q, k in (("p50", "p50_ms"), ("p99", "p99_ms"))
            ]
        else:
            rows.append(["per-ticket p50/p99", "default fields are not every field", "—", "—"])
    if "coldstart" in results and "ratios_over_empty" in results["coldstart"]:
        c = results["coldstart"]
        over = c["ratios_over_empty"]
        empty = c["empty_interpreter"]["wall"]["median_ms"]
        for name, label in (
            ("service", "cold start, every field on"),
            ("service_priority_only", "cold start, priority only"),
        ):
            rows.append(
                _check(
                    f"{label}: × an empty interpreter (same run)",
                    over[name],
                    over["limits"][name],
                    f"{c[name]['wall']['median_ms']:.1f} ms / {empty:.1f} ms",
                    unit="×",
                )
            )
    if "accuracy" in results:
        rows += _accuracy_targets(results["accuracy"])
    if "http" in results and "targets" in results["http"]:
        t = results["http"]["targets"]
        rows += [
            [
                "HTTP: POST /tickets at concurrency 16 ≥ 1,000/s with p99 ≤ 20 ms",
                f"{t['post_c16_ok_per_s']:.0f}/s, p99 {t['post_c16_p99_ms']:.1f} ms",
                "≥ 1000/s; ≤ 20 ms",
                fmt(t["post_c16_met"]),
            ],
            [
                "HTTP: no collapse up to concurrency 64 (successful POST/s ≥ 90 % of c=16's), "
                "no timeouts",
                f"lowest {t['lowest_above_c16_ok_per_s']:.0f}/s; {t['timeouts']} timeouts",
                "≥ 90 %; 0",
                fmt(t["no_collapse_met"] and t["timeouts"] == 0),
            ],
        ]
    if "pii" in results:
        luhn = results["pii"]["luhn_invalid_numbers"]
        rows.append(
            [
                "PII: Luhn-invalid card-like numbers redacted (false positives) = 0",
                f"{luhn['false_positives']} (on {luhn['lines']} corpus lines)",
                "0",
                fmt(luhn["false_positives"] == 0),
            ]
        )
    return rows


def _machine_line(machine: dict[str, Any]) -> str:
    git = machine["git"]
    load = fmt(machine["load_average_1_5_15"][0], 2) if machine["load_average_1_5_15"] else "?"
    commit = f"{git['commit'][:10]}{' (dirty)' if git['dirty'] else ''}" if git["commit"] else "?"
    return (
        f"{machine['date']}, Python {machine['python']}, {machine['platform']}, "
        f"{machine['cpu_count']} CPUs, load average {load} at the start, commit {commit}"
    )


def render(results: dict[str, Any], machine: dict[str, Any]) -> str:
    """The whole Markdown report."""
    lines = [
        "# ticket-enrich benchmarks",
        "",
        "Run with `python -m bench` from the repository root.",
        f"Measured {_machine_line(machine)}.",
        "",
    ]
    lines += _summary(results)
    for name, (_, renderer) in BENCHMARKS.items():
        if name in results:
            lines += ["", *renderer(results[name])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m bench [--only NAME ...] [--output-dir DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(BENCHMARKS),
        metavar="NAME",
        help=f"run only these benchmarks ({', '.join(BENCHMARKS)})",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="where results.json and results.md go (default: the bench package)",
    )
    parser.add_argument("--coldstart-repeats", type=int, default=RunSettings.coldstart_repeats)
    parser.add_argument("--latency-passes", type=int, default=RunSettings.latency_passes)
    parser.add_argument("--training-repeats", type=int, default=RunSettings.training_repeats)
    parser.add_argument(
        "--spark-rows",
        type=int,
        default=RunSettings.spark_rows,
        help="tickets per engine for --only spark",
    )
    parser.add_argument(
        "--http-seconds",
        type=float,
        default=RunSettings.http_seconds,
        help="length of each wrk run of --only http",
    )
    parser.add_argument(
        "--http-workers",
        type=int,
        default=RunSettings.http_workers,
        help="worker processes of the service under --only http (0: one per core)",
    )
    args = parser.parse_args(argv)
    settings = RunSettings(
        args.coldstart_repeats,
        args.latency_passes,
        args.training_repeats,
        args.spark_rows,
        args.http_seconds,
        args.http_workers,
    )
    selected: list[str] = args.only or [n for n in BENCHMARKS if n not in ON_REQUEST]
    machine = machine_facts()
    results: dict[str, Any] = {}
    durations: dict[str, float] = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ticket-enrich-bench-") as workdir:
        ctx = Context(Path(workdir), settings)
        for name in selected:
            log(f"--- {name}")
            began = time.perf_counter()
            results[name] = BENCHMARKS[name][0](ctx)
            durations[name] = time.perf_counter() - began
    durations["total"] = time.perf_counter() - start
    log(f"done in {durations['total']:.0f} s")

    markdown = render(results, machine)
    output: Path = args.output_dir
    output.mkdir(parents=True, exist_ok=True)
    document = {
        "machine": machine,
        "selected": selected,
        "settings": dataclasses.asdict(settings),
        "bench_seconds": durations,
        "results": results,
    }
    (output / "results.json").write_text(json.dumps(document, indent=2) + "\n")
    (output / "results.md").write_text(markdown)
    print(markdown, end="")
    return 0

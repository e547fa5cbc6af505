"""What operators watch on the local service: live model quality and Prometheus metrics.

`GET /model/quality` scores the model against the agents' latest corrections, per model version
(agreement, macro-F1, urgent recall over the last N corrected tickets). `GET /metrics` is the
Prometheus text format: an enrichment latency histogram and counters per priority and band
(observed through `Enricher.add_listener`), the outbox depth per status, and the drift (PSI per
feature, computed at most once a minute) of recent tickets against the model's reference. It
carries no ticket content and, like the service, listens on loopback unless configured otherwise.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from adapters.local.ratelimit import ClientRateLimit, RateLimitCollector
from core.drift import REFERENCE_FILE, Profile, Reference, drift
from core.enricher import Enricher
from core.errors import ArtifactError
from core.ports import DELIVERY_STATUSES, FeedbackStore, Outbox, TicketQuery, TicketStore
from core.quality import live_quality
from core.settings import Settings

# Enrichment takes about 0.1–5 ms per ticket; a 64 KiB ticket some tens of ms.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)
_DRIFT_EVERY_S = 60.0


class _StoreCollector(Collector):
    """Gauges read from the store when Prometheus scrapes: outbox depth and drift."""

    def __init__(
        self,
        store: TicketStore,
        outbox: Outbox | None,
        reference: Callable[[], Reference | None],
        settings: Settings,
    ) -> None:
        self._store, self._outbox, self._reference = store, outbox, reference
        self._settings = settings
        self._lock = threading.Lock()
        self._drift: tuple[float, list[tuple[str, float]]] | None = None

    def _drift_values(self) -> list[tuple[str, float]]:
        reference = self._reference()
        if reference is None:
            return []
        with self._lock:
            now = time.monotonic()
            if self._drift is None or now - self._drift[0] > _DRIFT_EVERY_S:
                current = Profile()
                page = self._store.list(TicketQuery(limit=self._settings.drift_window))
                for stored in page.items:
                    current.add(reference.features(stored.ticket, stored.enrichment))
                values: list[tuple[str, float]] = []
                if current.tickets >= self._settings.drift_min_tickets:
                    report = drift(reference, current, self._settings.drift_psi_threshold)
                    values = [(d.feature, d.psi) for d in report]
                self._drift = (now, values)
            return self._drift[1]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self._outbox is not None:
            depth = GaugeMetricFamily(
                "ticket_enrich_outbox_deliveries",
                "Deliveries to the helpdesk by status (pending and retrying are the backlog).",
                labels=["status"],
            )
            counts = self._outbox.count_by_status()
            for status in DELIVERY_STATUSES:
                depth.add_metric([status], counts.get(status, 0))
            yield depth
        psi = GaugeMetricFamily(
            "ticket_enrich_drift_psi",
            "Population stability index of recent tickets against the model's training data.",
            labels=["feature"],
        )
        for feature, value in self._drift_values():
            psi.add_metric([feature], value)
        yield psi


def _reference(enricher: Enricher) -> Callable[[], Reference | None]:
    """The served artifact's drift reference, read again when a promotion swaps the artifact."""
    cached: dict[Path, Reference | None] = {}

    def current() -> Reference | None:
        path = enricher.artifact.path
        if path not in cached:
            try:
                found = Reference.from_dict(enricher.artifact.read_json(REFERENCE_FILE))
            except ArtifactError:
                found = None
            cached.clear()
            cached[path] = found
        return cached[path]

    return current


def add_observability(
    app: FastAPI,
    enricher: Enricher,
    store: TicketStore,
    settings: Settings,
    *,
    outbox: Outbox | None,
    reader: Any,
    rate_limit: ClientRateLimit | None = None,
    metrics_dir: Path | None = None,
) -> Callable[[], None]:
    """Add `/metrics` and, when the store keeps corrections, `/model/quality` to the app.
    With the customer form's ``rate_limit``, `/metrics` also counts the submissions it
    refused. Return the function that counts one request refused for overload.

    With ``metrics_dir`` (the service on several worker processes) every worker counts in its
    own files there, with prometheus_client's multiprocess mode, and `/metrics` adds them up,
    whichever worker answers; the gauges are read from the shared store either way.
    """
    registry = CollectorRegistry()
    own: CollectorRegistry | None = registry
    if metrics_dir is not None:
        from prometheus_client import multiprocess, values

        if not getattr(values.ValueClass, "_multiprocess", False):
            # prometheus_client chose its value class when first imported, before the service
            # knew it would fork; metrics made from now on count in files.
            values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
        multiprocess.MultiProcessCollector(registry, path=str(metrics_dir))  # type: ignore[no-untyped-call]
        own = None
    latency = Histogram(
        "ticket_enrich_enrichment_seconds",
        "Time to validate and enrich one ticket.",
        buckets=_LATENCY_BUCKETS,
        registry=own,
    )
    enriched = Counter(
        "ticket_enrich_enriched",
        "Tickets enriched, by predicted priority and confidence band.",
        ["priority", "band"],
        registry=own,
    )
    overloaded = Counter(
        "ticket_enrich_requests_refused_overloaded",
        "Requests answered 503 at once because their worker held max_in_flight already.",
        registry=own,
    )

    def observe(enrichment: Mapping[str, Any], seconds: float) -> None:
        latency.observe(seconds)
        priority = enrichment.get("priority") or {}
        enriched.labels(str(priority.get("label")), str(priority.get("band"))).inc()

    enricher.add_listener(observe)
    registry.register(_StoreCollector(store, outbox, _reference(enricher), settings))
    if rate_limit is not None:
        registry.register(RateLimitCollector(rate_limit))

    @app.get("/metrics", summary="Prometheus metrics", include_in_schema=True)
    def metrics() -> Response:
        """Enrichment latency, counts per priority and band, outbox depth, drift."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    if isinstance(store, FeedbackStore):
        corrections = store

        @app.get("/model/quality", summary="The model against agents' corrections, per version")
        def quality(
            window: Annotated[int | None, Query(ge=1, le=100_000)] = None,
            who: Any = Depends(reader),  # noqa: B008  # FastAPI's dependency declaration
        ) -> dict[str, Any]:
            """Agreement, macro-F1 and urgent recall of the priority over the last corrected
            tickets, per model version that predicted them."""
            n = window or settings.agreement_window
            latest = [c for c in corrections.corrections(limit=n * 4) if c.target == "priority"]
            # The served model's labels, read now: a promotion may have changed them.
            metadata = enricher.metadata
            urgent = [str(u) for u in metadata.get("urgent_labels", [])]
            labels = [str(label) for label in metadata.get("labels", [])]
            return live_quality(latest[:n], labels, urgent)

    return overloaded.inc

"""Structured JSON logs and CloudWatch metrics in embedded metric format (Powertools).

Both objects are configuration only (no I/O until a handler logs or flushes), so the handler
modules create them at import as Powertools documents.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from core.ports import StoredTicket

SERVICE = "ticket-enrich"
NAMESPACE = "TicketEnrich"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def record_enrichment(stored: StoredTicket, created: bool, seconds: float) -> None:
    """Log the outcome with the ticket id and add its metrics.

    ``NeedsReview`` is 1 or 0 per new ticket, so its CloudWatch average is the needs-review
    share; ``Priority_<label>`` counts each predicted priority.
    """
    enrichment = stored.enrichment
    priority = enrichment.get("priority", {})
    logger.info(
        "ticket enriched" if created else "ticket already stored",
        ticket_id=stored.id,
        external_id=stored.external_id,
        new=created,
        priority=priority.get("label"),
        confidence=priority.get("confidence"),
        needs_review=enrichment.get("needs_review"),
        model_version=enrichment.get("model", {}).get("version"),
    )
    if not created:
        metrics.add_metric(name="DuplicateTickets", unit=MetricUnit.Count, value=1)
        return
    metrics.add_metric(name="EnrichmentLatency", unit=MetricUnit.Milliseconds, value=seconds * 1e3)
    metrics.add_metric(name="TicketsEnriched", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=f"Priority_{priority.get('label')}", unit=MetricUnit.Count, value=1)
    needs_review = 1 if enrichment.get("needs_review") else 0
    metrics.add_metric(name="NeedsReview", unit=MetricUnit.Count, value=needs_review)

"""Cloud-neutral core of the ticket-enrichment service."""

from core.enricher import Enricher, load_enricher

__all__ = ["Enricher", "load_enricher"]

"""Everything the functions need, built once per cold start (and never at import)."""

from __future__ import annotations

import functools
import json
import logging
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from adapters.gcp.settings import GcpSettings
from core.enricher import Enricher, load_enricher

if TYPE_CHECKING:
    from adapters.gcp.database_store import RealtimeDatabaseTicketStore
    from adapters.gcp.dead_letters import PubSubDeadLetters
    from adapters.gcp.firestore_store import FirestoreTicketStore
    from core.ports import HelpdeskClient

_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
}


class CloudLoggingFormatter(logging.Formatter):
    """One JSON object per line, with the ``severity`` and ``message`` keys that Cloud Logging
    reads from a function's output, plus every ``extra=`` field."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as a single JSON line."""
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        }
        entry.update(
            (k, v) for k, v in record.__dict__.items() if k not in _RECORD_ATTRS and k[0] != "_"
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _install_logging() -> None:
    logger = logging.getLogger("adapters")
    if logger.handlers:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(CloudLoggingFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    core_logger = logging.getLogger("core")
    core_logger.addHandler(handler)
    core_logger.setLevel(logging.INFO)


@functools.cache
def settings() -> GcpSettings:
    """The process's one settings object."""
    _install_logging()
    return GcpSettings()


def build_enricher(config: GcpSettings) -> Enricher:
    """The model bundled with the function, checksums verified and self-checked."""
    return load_enricher(
        config.serving_model_dir, limits=config.limits, options=config.enrich_options
    )


def build_firestore_store(config: GcpSettings, client: Any = None) -> FirestoreTicketStore:
    """The Firestore ticket store and outbox (a client is built unless one is given)."""
    from adapters.gcp.firestore_store import FirestoreTicketStore

    if client is None:
        from google.cloud import firestore

        client = firestore.Client(project=config.gcp_project, database=config.firestore_database)
    return FirestoreTicketStore(
        client,
        tickets_collection=config.tickets_collection,
        outbox_collection=config.outbox_collection,
    )


def build_database_store(
    config: GcpSettings, outbox: FirestoreTicketStore
) -> RealtimeDatabaseTicketStore:
    """The Realtime Database ticket store, with deliveries in the Firestore outbox."""
    import firebase_admin
    from firebase_admin import db

    from adapters.gcp.database_store import RealtimeDatabaseTicketStore
    from core.errors import TicketEnrichError

    if not config.rtdb_url:
        raise TicketEnrichError("the Realtime Database trigger needs TICKET_ENRICH_RTDB_URL")
    options: dict[str, Any] = {"databaseURL": config.rtdb_url}
    if config.gcp_project:
        options["projectId"] = config.gcp_project
    name = f"ticket-enrich:{config.rtdb_url}"
    try:
        app = firebase_admin.get_app(name)
    except ValueError:
        app = firebase_admin.initialize_app(options=options, name=name)
    return RealtimeDatabaseTicketStore(db.reference(config.rtdb_tickets_path, app=app), outbox)


@functools.cache
def enricher() -> Enricher:
    """The enricher of this process, loaded on the first event."""
    return build_enricher(settings())


@functools.cache
def firestore_store() -> FirestoreTicketStore:
    """The Firestore store of this process."""
    return build_firestore_store(settings())


@functools.cache
def database_store() -> RealtimeDatabaseTicketStore:
    """The Realtime Database store of this process."""
    return build_database_store(settings(), firestore_store())


@functools.cache
def dead_letters() -> PubSubDeadLetters | None:
    """The dead-letter publisher of this process, built on the first ticket that needs it
    (Pub/Sub's client is not imported before), or None when no topic is configured."""
    from adapters.gcp.dead_letters import build_dead_letters

    config = settings()
    if not config.dead_letter_topic:
        return None
    return build_dead_letters(config.dead_letter_topic, config.gcp_project)


@functools.cache
def helpdesk() -> HelpdeskClient:
    """The configured helpdesk client of this process."""
    from adapters.helpdesk.factory import helpdesk_from_settings

    return helpdesk_from_settings(settings())

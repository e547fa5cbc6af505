"""The Cloud Functions (2nd gen) entry points, for Google's Functions Framework.

- ``on_ticket_created``: Eventarc, ``google.cloud.firestore.document.v1.created`` on
  ``tickets/{ticketId}`` (``.updated`` and ``.written`` are handled the same way).
- ``on_ticket_written``: Eventarc, ``google.firebase.database.ref.v1.written`` on
  ``/tickets/{ticketId}`` (``.created`` and ``.updated`` likewise).
- ``drain_outbox``: HTTP, called by Cloud Scheduler; delivers the due helpdesk deliveries.

The retraining functions are not here: they live in `adapters.gcp.retrain` and are deployed from
their own source (with the training stack), so the enrichment functions never import them.

An exception makes the Functions Framework answer 500, so Eventarc retries the event: that is
what a store or Pub/Sub outage gets. An invalid ticket is answered 200 after it is published to
the dead-letter topic with the reason (`adapters.gcp.dead_letters`, when one is configured) and
its error is written back, and so is every event the function ignores (its own write-back, an
agent's edit, a deletion, an event of a type it is not for): retrying those could never change
the outcome.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import functions_framework

from adapters.gcp import bootstrap
from adapters.gcp.events import DocumentEvent, UnexpectedEvent, database_event, firestore_event
from adapters.gcp.intake import Outcome, Reject, take_in

if TYPE_CHECKING:
    from datetime import datetime

    import flask
    from cloudevents.http import CloudEvent

    from adapters.gcp.dead_letters import Source
    from core.errors import InvalidTicket

__all__ = [
    "drain_outbox",
    "on_ticket_created",
    "on_ticket_written",
]

_log = logging.getLogger(__name__)


def _decoded(
    event: CloudEvent, decode: Callable[[CloudEvent], DocumentEvent]
) -> DocumentEvent | None:
    try:
        return decode(event)
    except UnexpectedEvent as exc:
        # A trigger filter that sends this function other events: logged, acknowledged.
        _log.error(
            "event ignored",
            extra={"event_id": event["id"], "type": event["type"], "reason": str(exc)},
        )
        return None


def _rejecter(source: Source) -> Reject:
    def reject(document: DocumentEvent, error: InvalidTicket, at: datetime) -> None:
        publisher = bootstrap.dead_letters()
        if publisher is not None:
            publisher.reject(
                source,
                ticket_id=document.ticket_id,
                path=document.path,
                event_id=document.event_id,
                event_source=document.source,
                error=error,
                at=at,
            )

    return reject


def _as_sent(data: Any) -> Any:
    return data


def _event_of(request: flask.Request) -> CloudEvent | None:
    """The request's CloudEvent, its data left as the bytes Eventarc sent: the adapter decodes
    them within the core's limits. (The Functions Framework's `cloud_event` signature parses
    JSON-looking data with Python's json module first, and a body that module cannot parse,
    nested 100,000 deep or with a 5,000-digit integer, fails before the function is called:
    a 500, which Eventarc retries for a day.)"""
    from cloudevents.exceptions import GenericException
    from cloudevents.http import from_http

    try:
        return from_http(request.headers, request.get_data(), data_unmarshaller=_as_sent)
    except GenericException as exc:
        _log.error("not a CloudEvent", extra={"reason": str(exc)})
        return None


def handle_firestore_event(event: CloudEvent) -> Outcome | None:
    """Enrich a ticket document created (or updated, or written) in Firestore, once."""
    config = bootstrap.settings()
    document = _decoded(event, firestore_event)
    if document is None:
        return None
    outcome = take_in(
        document,
        bootstrap.enricher(),
        bootstrap.firestore_store(),
        deliver=config.deliver,
        reject=_rejecter("firestore"),
    )
    _log.info(
        "ticket event handled",
        extra={"event_id": document.event_id, "ticket": document.path, "outcome": outcome},
    )
    return outcome


def handle_database_event(event: CloudEvent) -> Outcome | None:
    """Enrich a ticket written to the Realtime Database (the write-back is skipped)."""
    config = bootstrap.settings()
    document = _decoded(event, lambda e: database_event(e, config.limits))
    if document is None:
        return None
    outcome = take_in(
        document,
        bootstrap.enricher(),
        bootstrap.database_store(),
        deliver=config.deliver,
        reject=_rejecter("realtime-database"),
    )
    _log.info(
        "ticket event handled",
        extra={"event_id": document.event_id, "ticket": document.path, "outcome": outcome},
    )
    return outcome


# Eventarc delivers each event as an HTTP POST (binary-mode CloudEvent): 2xx acknowledges it,
# anything else has it retried. A request that is not a CloudEvent at all is answered 400.
@functions_framework.http
def on_ticket_created(request: flask.Request) -> tuple[str, int]:
    """Eventarc's Firestore trigger: `handle_firestore_event`."""
    event = _event_of(request)
    if event is None:
        return "not a CloudEvent", 400
    handle_firestore_event(event)
    return "OK", 200


@functions_framework.http
def on_ticket_written(request: flask.Request) -> tuple[str, int]:
    """Eventarc's Realtime Database trigger: `handle_database_event`."""
    event = _event_of(request)
    if event is None:
        return "not a CloudEvent", 400
    handle_database_event(event)
    return "OK", 200


@functions_framework.http
def drain_outbox(request: flask.Request) -> tuple[dict[str, Any], int]:
    """Deliver due deliveries until none is left or the time budget is spent."""
    from core.delivery import deliver_due

    config = bootstrap.settings()
    if not config.deliver:
        return {"deliver": False, "delivered": 0, "retrying": 0, "dead": 0}, 200
    store, client = bootstrap.firestore_store(), bootstrap.helpdesk()
    totals = {"delivered": 0, "retrying": 0, "dead": 0}
    deadline = time.monotonic() + config.drain_budget_s
    while time.monotonic() < deadline:
        report = deliver_due(
            store, client, policy=config.retry_policy, limit=config.delivery_batch_size
        )
        for status in totals:
            totals[status] += len(getattr(report, status))
        if report.claimed == 0:
            break
    _log.info("outbox drained", extra=totals)
    return {"deliver": True, **totals}, 200

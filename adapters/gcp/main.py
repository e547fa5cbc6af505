"""The Cloud Functions (2nd gen) entry points, for Google's Functions Framework.

- ``on_ticket_created``: Eventarc, ``google.cloud.firestore.document.v1.created`` on
  ``tickets/{ticketId}`` (``.updated`` and ``.written`` are handled the same way).
- ``on_ticket_written``: Eventarc, ``google.firebase.database.ref.v1.written`` on
  ``/tickets/{ticketId}`` (``.created`` and ``.updated`` likewise).
- ``drain_outbox``: HTTP, called by Cloud Scheduler; delivers the due helpdesk deliveries.
- ``retrain_on_upload`` and ``retrain_on_schedule``: retraining (`adapters.gcp.retrain`), deployed
  from their own source, which has the training stack; importing them here loads no part of it.

An exception makes the Functions Framework answer 500, so Eventarc retries the event: that is
what a store outage gets. An invalid ticket is answered 200 after its error is written back, and
so is every event the function ignores (its own write-back, an agent's edit, a deletion, an event
of a type it is not for): retrying those could never change the outcome.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import functions_framework

from adapters.gcp import bootstrap
from adapters.gcp.events import DocumentEvent, UnexpectedEvent, database_event, firestore_event
from adapters.gcp.intake import take_in
from adapters.gcp.retrain import retrain_on_schedule, retrain_on_upload

if TYPE_CHECKING:
    import flask
    from cloudevents.http import CloudEvent

__all__ = [
    "drain_outbox",
    "on_ticket_created",
    "on_ticket_written",
    "retrain_on_schedule",
    "retrain_on_upload",
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


@functions_framework.cloud_event
def on_ticket_created(event: CloudEvent) -> None:
    """Enrich a ticket document created (or updated, or written) in Firestore, once."""
    config = bootstrap.settings()
    document = _decoded(event, firestore_event)
    if document is None:
        return
    outcome = take_in(
        document, bootstrap.enricher(), bootstrap.firestore_store(), deliver=config.deliver
    )
    _log.info(
        "ticket event handled",
        extra={"event_id": document.event_id, "ticket": document.path, "outcome": outcome},
    )


@functions_framework.cloud_event
def on_ticket_written(event: CloudEvent) -> None:
    """Enrich a ticket written to the Realtime Database (the write-back is skipped)."""
    config = bootstrap.settings()
    document = _decoded(event, database_event)
    if document is None:
        return
    outcome = take_in(
        document, bootstrap.enricher(), bootstrap.database_store(), deliver=config.deliver
    )
    _log.info(
        "ticket event handled",
        extra={"event_id": document.event_id, "ticket": document.path, "outcome": outcome},
    )


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

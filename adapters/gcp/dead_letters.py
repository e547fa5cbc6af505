"""Tickets that can never be enriched, published to a Pub/Sub dead-letter topic with the reason.

Eventarc retries an event whose function fails, for up to 24 hours. A ticket that fails
validation would fail the same way on every retry, so the function does not fail: it publishes
one message naming the ticket and the reason to the dead-letter topic, writes the error into the
document (``enrichment_error``, for the customer's app), and acknowledges the event (2xx), so
Eventarc stops. The message body is JSON, as on AWS: ``source`` (``firestore`` or
``realtime-database``), ``error`` (``{"code", "message", "problems"}``, the codes the HTTP entry
points answer with) and what names the ticket (``ticket_id``, ``path``, ``event_id``,
``event_source``, ``rejected_at``). The document itself is not copied: it stays where it was
written, with the error beside it, and a copy would spread what redaction keeps out of the
enriched fields. ``code``, ``source`` and ``event_id`` are also message attributes, for
subscription filters and for dropping the second copy of an event Eventarc delivered twice.

The message is published before the error is written back: if Pub/Sub does not take it, the
function fails and Eventarc retries, so a rejected ticket is never only in the document.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any, Literal

from core.errors import InvalidTicket, StoreError, error_body, refusal

Source = Literal["firestore", "realtime-database"]

_PUBLISH_TIMEOUT_S = 30.0
_log = logging.getLogger(__name__)


def rejection(exc: InvalidTicket) -> dict[str, Any]:
    """The ``error`` of a refused ticket, with the code the HTTP entry points answer."""
    error: dict[str, Any] = error_body(refusal(exc)[1], str(exc), exc.problems)["error"]
    return error


def topic_path(topic: str, project: str | None) -> str:
    """``projects/<project>/topics/<topic>`` from a topic id and the project (or a full path,
    returned as it is); the project the client libraries detect when none is given."""
    if topic.startswith("projects/"):
        return topic
    if not project:
        import google.auth

        project = google.auth.default()[1]
    if not project:
        raise StoreError(
            f"the dead-letter topic {topic!r} needs a project (TICKET_ENRICH_GCP_PROJECT)"
        )
    return f"projects/{project}/topics/{topic}"


class PubSubDeadLetters:
    """Publishes each ticket that can never be enriched to one Pub/Sub topic."""

    def __init__(self, publisher: Any, topic: str) -> None:
        self._publisher = publisher
        self.topic = topic

    def reject(
        self,
        source: Source,
        *,
        ticket_id: str,
        path: str,
        event_id: str,
        event_source: str,
        error: InvalidTicket,
        at: datetime,
    ) -> str:
        """Publish one dead letter and wait until Pub/Sub has it; its message id. A StoreError
        if Pub/Sub does not take it (the event is then retried rather than the ticket lost)."""
        from google.api_core.exceptions import GoogleAPIError

        reason = rejection(error)
        body = {
            "source": source,
            "error": reason,
            "ticket_id": ticket_id,
            "path": path,
            "event_id": event_id,
            "event_source": event_source,
            "rejected_at": at.isoformat(timespec="milliseconds"),
        }
        try:
            future = self._publisher.publish(
                self.topic,
                json.dumps(body, ensure_ascii=False).encode(),
                code=str(reason["code"]),
                source=source,
                event_id=event_id,
            )
            message_id: str = future.result(timeout=_PUBLISH_TIMEOUT_S)
        except (GoogleAPIError, TimeoutError) as exc:
            raise StoreError(f"cannot publish a dead letter to {self.topic}: {exc}") from exc
        _log.warning(
            "ticket sent to the dead-letter topic",
            extra={"ticket": path, "code": reason["code"], "message_id": message_id},
        )
        return message_id


def build_dead_letters(topic: str, project: str | None, publisher: Any = None) -> PubSubDeadLetters:
    """The dead-letter publisher for ``topic`` (a client is built unless one is given; it
    honours ``PUBSUB_EMULATOR_HOST``)."""
    if publisher is None:
        from google.cloud.pubsub_v1 import PublisherClient  # type: ignore[import-untyped]

        publisher = PublisherClient()
    return PubSubDeadLetters(publisher, topic_path(topic, project))

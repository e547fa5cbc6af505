"""Ground truth from the helpdesk: the priority a delivered ticket closed with becomes its label.

`collect_outcomes` walks the tickets delivered to the configured helpdesk that have no label
yet, reads each back through the connector, and records a closed ticket's final priority as a
`Correction` whose agent is ``helpdesk:<system>``. Live quality, agreement and retraining read
corrections, so they use these labels as they use agents'. The rules:

- An agent's label wins: a ticket that already has one is not asked about, and the store
  records the helpdesk's only if the ticket still has none (`OutcomeStore.add_correction_once`).
- Running it again records nothing twice; a ticket still open is asked again on a later run.
- A priority that maps back onto no label, or onto several, or onto one the model does not
  predict, is reported and not recorded.
- The helpdesk being down or rate-limiting stops the run; what was recorded stays, and what
  was not asked is asked on the next run.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.delivery import Clock, utc_now
from core.errors import HelpdeskError, HelpdeskUnavailable, TicketEnrichError
from core.ports import (
    Correction,
    HelpdeskClient,
    HelpdeskOutcome,
    Outbox,
    OutcomeSource,
    OutcomeStore,
    StoredTicket,
    TicketStore,
)

_log = logging.getLogger(__name__)

AGENT_PREFIX = "helpdesk:"
# Every delivered ticket is considered on each run; the outbox port pages by a limit.
_ALL_DELIVERIES = 1_000_000


def helpdesk_agent(system: str) -> str:
    """The agent name under which labels read from this helpdesk are recorded."""
    return f"{AGENT_PREFIX}{system}"


@dataclass
class OutcomeReport:
    """What one run of `collect_outcomes` did, by ticket id."""

    helpdesk: str
    asked: int = 0
    recorded: list[str] = field(default_factory=list)
    still_open: list[str] = field(default_factory=list)
    already_labelled: int = 0
    unmapped: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    other_helpdesk: int = 0
    stopped: str | None = None
    retry_after: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The report as the JSON the command prints."""
        return {
            "helpdesk": self.helpdesk,
            "asked": self.asked,
            "recorded": self.recorded,
            "open": self.still_open,
            "already_labelled": self.already_labelled,
            "unmapped": self.unmapped,
            "failed": self.failed,
            "other_helpdesk": self.other_helpdesk,
            "stopped": self.stopped,
            "retry_after": self.retry_after,
        }


def _label(outcome: HelpdeskOutcome, labels: Collection[str] | None) -> str | None:
    candidates = [c for c in outcome.labels if labels is None or c in labels]
    return candidates[0] if len(candidates) == 1 else None


def _correction(stored: StoredTicket, label: str, system: str, at: datetime) -> Correction:
    predicted = stored.enrichment.get("priority")
    model = stored.enrichment.get("model")
    return Correction(
        ticket_id=stored.id,
        target="priority",
        label=label,
        predicted=predicted.get("label") if isinstance(predicted, dict) else None,
        agent=helpdesk_agent(system),
        model_version=model.get("version") if isinstance(model, dict) else None,
        corrected_at=at.isoformat(timespec="milliseconds"),
    )


def collect_outcomes(
    outbox: Outbox,
    tickets: TicketStore,
    helpdesk: HelpdeskClient,
    feedback: OutcomeStore,
    *,
    labels: Collection[str] | None = None,
    now: Clock = utc_now,
) -> OutcomeReport:
    """Record the final priority of every delivered, closed, not yet labelled ticket.

    ``labels`` are the priority labels the served model predicts (a helpdesk priority that maps
    onto none of them is reported rather than recorded); ``None`` accepts any label of the
    connector's mapping. Raises `core.errors.TicketEnrichError` when the helpdesk's connector
    cannot read tickets back (the webhook).
    """
    if not isinstance(helpdesk, OutcomeSource):
        raise TicketEnrichError(
            f"the {helpdesk.name} helpdesk cannot be asked how its tickets closed; "
            "outcomes are read from zendesk, freshdesk, jira or rt"
        )
    source: OutcomeSource = helpdesk
    report = OutcomeReport(helpdesk.name)
    for delivery in outbox.deliveries("delivered", limit=_ALL_DELIVERIES):
        ref = delivery.ref
        if ref is None:
            continue
        if ref.system != source.name:
            report.other_helpdesk += 1
            continue
        if any(c.target == "priority" for c in feedback.corrections(delivery.ticket_id)):
            report.already_labelled += 1
            continue
        try:
            outcome = source.ticket_outcome(ref)
        except HelpdeskUnavailable as exc:
            report.stopped = str(exc)
            report.retry_after = exc.retry_after
            _log.warning("helpdesk unavailable: outcomes stopped", extra={"error": str(exc)})
            break
        except HelpdeskError as exc:
            report.failed.append({"ticket_id": delivery.ticket_id, "error": str(exc)})
            continue
        report.asked += 1
        if not outcome.closed:
            report.still_open.append(delivery.ticket_id)
            continue
        label = _label(outcome, labels)
        if label is None:
            report.unmapped.append(
                {
                    "ticket_id": delivery.ticket_id,
                    "status": outcome.status,
                    "helpdesk_priority": outcome.helpdesk_priority,
                    "labels": list(outcome.labels),
                }
            )
            continue
        correction = _correction(tickets.get(delivery.ticket_id), label, source.name, now())
        if feedback.add_correction_once(correction):
            report.recorded.append(delivery.ticket_id)
        else:
            report.already_labelled += 1
    return report

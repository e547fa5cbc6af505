"""Delivering stored tickets to the helpdesk: at least once on the wire, exactly once in effect.

Every delivery carries an idempotency key derived from the ticket id, so a retry after a
timeout, a dropped connection or a killed worker asks the helpdesk for the ticket it may
already have created rather than a second one. Nothing is dropped: a delivery leaves the outbox
only as ``delivered`` or, when the helpdesk refuses it for good or retries run out, as ``dead``
where an operator can see and requeue it.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from core.errors import DeliveryNotDead, DeliveryNotFound, HelpdeskRejected, HelpdeskUnavailable
from core.ports import Delivery, HelpdeskClient, Outbox, StoredTicket

_log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Rand = Callable[[], float]


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(cap, base * 2**(n-1)))
    seconds, or the helpdesk's Retry-After when that is longer; after ``max_attempts`` failed
    attempts the delivery is dead."""

    base_s: float = 1.0
    cap_s: float = 300.0
    max_attempts: int = 12
    lease_s: float = 60.0

    def __post_init__(self) -> None:
        if self.base_s < 0 or self.cap_s < 0 or self.lease_s <= 0 or self.max_attempts < 1:
            raise ValueError(f"invalid retry policy: {self}")

    def delay_s(self, attempts: int, rand: Rand, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (``rand`` returns [0, 1))."""
        ceiling = min(self.cap_s, self.base_s * 2.0 ** max(attempts - 1, 0))
        delay = rand() * ceiling
        if retry_after is not None and retry_after > delay:
            delay = retry_after
        return delay


@dataclass
class DeliveryReport:
    """What one pass of `deliver_due` did, by ticket id."""

    delivered: list[str] = field(default_factory=list)
    retrying: list[str] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)

    @property
    def claimed(self) -> int:
        """How many deliveries the pass claimed."""
        return len(self.delivered) + len(self.retrying) + len(self.dead)


def idempotency_key(ticket_id: str) -> str:
    """The key under which the helpdesk creates this ticket, the same on every attempt."""
    return f"ticket-enrich:{ticket_id}"


def _failed(
    delivery: Delivery,
    error: str,
    *,
    now: datetime,
    policy: RetryPolicy,
    rand: Rand,
    retry_after: float | None = None,
    retryable: bool = True,
) -> Delivery:
    attempts = delivery.attempts + 1
    if not retryable or attempts >= policy.max_attempts:
        return replace(delivery, status="dead", attempts=attempts, last_error=error)
    delay = policy.delay_s(attempts, rand, retry_after)
    return replace(
        delivery,
        status="retrying",
        attempts=attempts,
        last_error=error,
        next_attempt_at=now + timedelta(seconds=delay),
    )


def _attempt(
    delivery: Delivery,
    ticket: StoredTicket,
    client: HelpdeskClient,
    *,
    now: datetime,
    policy: RetryPolicy,
    rand: Rand,
) -> Delivery:
    if delivery.ref is not None:
        # The helpdesk already has this ticket: never ask it to create another.
        return replace(delivery, status="delivered", last_error=None)
    try:
        ref = client.create_ticket(ticket, idempotency_key(ticket.id))
    except HelpdeskRejected as exc:
        return _failed(
            delivery, f"rejected: {exc}", now=now, policy=policy, rand=rand, retryable=False
        )
    except HelpdeskUnavailable as exc:
        return _failed(
            delivery,
            f"unavailable: {exc}",
            now=now,
            policy=policy,
            rand=rand,
            retry_after=exc.retry_after,
        )
    except Exception as exc:
        # A client bug or an unmapped timeout must not lose the ticket: retry it, and let the
        # attempt limit turn a permanent fault into a visible dead delivery.
        _log.warning("helpdesk client raised", exc_info=exc, extra={"ticket_id": ticket.id})
        error = f"{type(exc).__name__}: {exc}"
        return _failed(delivery, error, now=now, policy=policy, rand=rand)
    return replace(
        delivery, status="delivered", attempts=delivery.attempts + 1, last_error=None, ref=ref
    )


def deliver_due(
    outbox: Outbox,
    client: HelpdeskClient,
    *,
    now: Clock = utc_now,
    policy: RetryPolicy | None = None,
    limit: int = 20,
    rand: Rand = random.random,
) -> DeliveryReport:
    """Claim the deliveries due now, send each once, and record delivered, retrying or dead.

    The claim leases each delivery for ``policy.lease_s`` seconds, so another worker does not
    send it meanwhile; if this process dies the lease expires and the delivery is sent again
    with the same idempotency key. ``now`` and ``rand`` are injected so tests are exact.
    """
    policy = policy or RetryPolicy()
    report = DeliveryReport()
    claimed_at = now()
    for delivery, ticket in outbox.claim_due(
        claimed_at, claimed_at + timedelta(seconds=policy.lease_s), limit
    ):
        outcome = _attempt(delivery, ticket, client, now=now(), policy=policy, rand=rand)
        outbox.save(outcome)
        getattr(report, outcome.status).append(delivery.ticket_id)
        _log.info(
            "delivery attempted",
            extra={
                "ticket_id": delivery.ticket_id,
                "status": outcome.status,
                "attempts": outcome.attempts,
                "error": outcome.last_error,
            },
        )
    return report


def requeue_dead(outbox: Outbox, ticket_id: str, *, now: Clock = utc_now) -> Delivery:
    """Send a dead delivery again from its first attempt; raise if it is missing or not dead."""
    delivery = outbox.delivery(ticket_id)
    if delivery is None:
        raise DeliveryNotFound(ticket_id)
    if delivery.status != "dead":
        raise DeliveryNotDead(ticket_id, delivery.status)
    requeued = replace(delivery, status="pending", attempts=0, next_attempt_at=now())
    outbox.save(requeued)
    return requeued


def run_delivery_worker(
    outbox: Outbox,
    client: HelpdeskClient,
    stop: threading.Event,
    *,
    poll_interval_s: float = 1.0,
    policy: RetryPolicy | None = None,
    limit: int = 20,
    now: Clock = utc_now,
    rand: Rand = random.random,
) -> None:
    """Run `deliver_due` until ``stop`` is set, sleeping between passes that found nothing."""
    while not stop.is_set():
        try:
            report = deliver_due(outbox, client, now=now, policy=policy, limit=limit, rand=rand)
        except Exception:
            # The store may be briefly unavailable; the worker outlives that and tries again.
            _log.exception("delivery pass failed")
            report = DeliveryReport()
        if report.claimed == 0:
            stop.wait(poll_interval_s)

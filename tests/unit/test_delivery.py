"""The delivery use case against in-memory fakes, with a hand-driven clock and jitter."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from core.delivery import (
    RetryPolicy,
    deliver_due,
    idempotency_key,
    requeue_dead,
)
from core.errors import (
    DeliveryNotDead,
    DeliveryNotFound,
    HelpdeskRejected,
    HelpdeskUnavailable,
)
from core.ports import HelpdeskRef, StoredTicket
from tests.unit.fakes import FakeHelpdeskClient, FakeOutbox

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(base_s=2.0, cap_s=60.0, max_attempts=4, lease_s=30.0)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _ticket(ticket_id: str = "t-1") -> StoredTicket:
    return StoredTicket(ticket_id, None, T0.isoformat(), {"subject": "disk full"}, {})


def _outbox(*ids: str) -> FakeOutbox:
    outbox = FakeOutbox()
    for ticket_id in ids or ("t-1",):
        outbox.add_with_delivery(_ticket(ticket_id), T0)
    return outbox


def _run(
    outbox: FakeOutbox, client: FakeHelpdeskClient, clock: Clock, rand: float = 0.5
) -> list[str]:
    report = deliver_due(outbox, client, now=clock, policy=POLICY, rand=lambda: rand)
    return report.delivered + report.retrying + report.dead


@pytest.mark.parametrize(
    ("attempts", "rand", "expected"),
    [(1, 0.5, 1.0), (2, 0.5, 2.0), (3, 0.25, 2.0), (5, 0.5, 16.0), (7, 0.5, 30.0), (9, 0.0, 0.0)],
)
def test_backoff_is_full_jitter_under_a_capped_exponential(
    attempts: int, rand: float, expected: float
) -> None:
    assert POLICY.delay_s(attempts, lambda: rand) == pytest.approx(expected)


def test_a_longer_retry_after_wins_over_the_jitter_and_a_shorter_does_not() -> None:
    assert POLICY.delay_s(1, lambda: 0.5, retry_after=45.0) == 45.0
    assert POLICY.delay_s(5, lambda: 0.5, retry_after=3.0) == pytest.approx(16.0)


def test_a_pending_delivery_is_sent_once_with_the_ticket_key_and_remembered() -> None:
    outbox, client, clock = _outbox(), FakeHelpdeskClient(), Clock()

    report = deliver_due(outbox, client, now=clock, policy=POLICY)
    again = deliver_due(outbox, client, now=clock, policy=POLICY)

    assert report.delivered == ["t-1"] and again.claimed == 0
    assert client.calls == [idempotency_key("t-1")] == ["ticket-enrich:t-1"]
    delivery = outbox.rows["t-1"]
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("delivered", 1, None)
    assert delivery.ref == HelpdeskRef("fake", "1", "fake://1")


def test_unavailable_schedules_a_jittered_retry_then_delivers() -> None:
    outbox, clock = _outbox(), Clock()
    client = FakeHelpdeskClient([HelpdeskUnavailable("503 from helpdesk")])

    assert _run(outbox, client, clock, rand=0.5) == ["t-1"]
    delivery = outbox.rows["t-1"]
    assert delivery.status == "retrying" and delivery.attempts == 1
    assert delivery.next_attempt_at == T0 + timedelta(seconds=1.0)
    assert delivery.last_error is not None and "503" in delivery.last_error

    clock.advance(0.5)
    assert _run(outbox, client, clock) == []  # not due yet
    clock.advance(0.5)
    assert _run(outbox, client, clock) == ["t-1"]
    assert outbox.rows["t-1"].status == "delivered"
    assert client.calls == ["ticket-enrich:t-1"] * 2


def test_retry_after_is_honoured() -> None:
    outbox, clock = _outbox(), Clock()
    client = FakeHelpdeskClient([HelpdeskUnavailable("429", retry_after=120.0)])

    _run(outbox, client, clock)

    assert outbox.rows["t-1"].next_attempt_at == T0 + timedelta(seconds=120)


def test_retries_run_out_into_dead_with_the_last_error() -> None:
    outbox, clock = _outbox(), Clock()
    client = FakeHelpdeskClient([HelpdeskUnavailable(f"down {n}") for n in range(10)])

    for _ in range(POLICY.max_attempts):
        _run(outbox, client, clock)
        clock.advance(POLICY.cap_s)

    delivery = outbox.rows["t-1"]
    assert delivery.status == "dead" and delivery.attempts == POLICY.max_attempts
    assert delivery.last_error == f"unavailable: down {POLICY.max_attempts - 1}"
    assert len(client.calls) == POLICY.max_attempts
    assert _run(outbox, client, clock) == []


def test_rejected_goes_dead_at_once() -> None:
    outbox, clock = _outbox(), Clock()
    client = FakeHelpdeskClient([HelpdeskRejected("400: subject missing")])

    report = deliver_due(outbox, client, now=clock, policy=POLICY)

    assert report.dead == ["t-1"]
    delivery = outbox.rows["t-1"]
    assert delivery.attempts == 1 and delivery.last_error == "rejected: 400: subject missing"


def test_an_unknown_client_exception_is_retried() -> None:
    outbox, clock = _outbox(), Clock()
    client = FakeHelpdeskClient([TimeoutError("read timed out"), None])

    first = deliver_due(outbox, client, now=clock, policy=POLICY, rand=lambda: 0.0)
    second = deliver_due(outbox, client, now=clock, policy=POLICY, rand=lambda: 0.0)

    assert first.retrying == ["t-1"] and second.delivered == ["t-1"]
    assert client.calls == ["ticket-enrich:t-1"] * 2


def test_a_known_helpdesk_id_is_never_created_again() -> None:
    outbox, clock, client = _outbox(), Clock(), FakeHelpdeskClient()
    ref = HelpdeskRef("fake", "77")
    outbox.save(replace(outbox.rows["t-1"], status="retrying", ref=ref))

    report = deliver_due(outbox, client, now=clock, policy=POLICY)

    assert report.delivered == ["t-1"] and client.calls == []
    assert outbox.rows["t-1"].ref == ref


def test_a_leased_delivery_is_not_claimed_again_until_the_lease_expires() -> None:
    outbox, clock = _outbox("t-1", "t-2"), Clock()
    claimed = outbox.claim_due(T0, T0 + timedelta(seconds=POLICY.lease_s), limit=1)
    assert [d.ticket_id for d, _ in claimed] == ["t-1"]  # a worker died holding t-1
    client = FakeHelpdeskClient()

    assert _run(outbox, client, clock) == ["t-2"]
    clock.advance(POLICY.lease_s)
    assert _run(outbox, client, clock) == ["t-1"]
    assert sorted(client.calls) == ["ticket-enrich:t-1", "ticket-enrich:t-2"]


def test_limit_bounds_one_pass() -> None:
    outbox, clock, client = _outbox("a", "b", "c"), Clock(), FakeHelpdeskClient()

    report = deliver_due(outbox, client, now=clock, policy=POLICY, limit=2)

    assert report.claimed == 2 and len(client.created) == 2


def test_requeue_sends_a_dead_delivery_again_from_the_first_attempt() -> None:
    outbox, clock = _outbox(), Clock()
    client = FakeHelpdeskClient([HelpdeskRejected("400")])
    _run(outbox, client, clock)
    clock.advance(5)

    requeued = requeue_dead(outbox, "t-1", now=clock)

    assert (requeued.status, requeued.attempts, requeued.next_attempt_at) == (
        "pending",
        0,
        clock.now,
    )
    assert deliver_due(outbox, client, now=clock, policy=POLICY).delivered == ["t-1"]
    with pytest.raises(DeliveryNotDead):
        requeue_dead(outbox, "t-1", now=clock)
    with pytest.raises(DeliveryNotFound):
        requeue_dead(outbox, "nope", now=clock)


def test_an_invalid_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="retry policy"):
        RetryPolicy(max_attempts=0)

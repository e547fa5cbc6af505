"""What the local service's worker processes share through the SQLite store: agents'
sessions and the rate limits' buckets. Two connections to one file stand for two workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.local.auth import Gate, hash_password
from adapters.local.ratelimit import ClientRateLimit, LoginThrottle, RateLimitCollector
from adapters.local.sqlite_store import SQLiteTicketStore
from core.errors import RateLimited
from core.settings import Settings


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[tuple[SQLiteTicketStore, SQLiteTicketStore]]:
    path = tmp_path / "tickets.sqlite3"
    with SQLiteTicketStore(path) as first, SQLiteTicketStore(path) as second:
        yield first, second


def _gate(store: SQLiteTicketStore) -> Gate:
    agents = {"ann": hash_password("s3cret", n=2**10), "bob": hash_password("pw", n=2**10)}
    return Gate(agents, "the-key", b"x" * 32, 3600, sessions=store)


def test_a_session_signed_in_on_one_worker_is_read_and_ended_on_another(
    workers: tuple[SQLiteTicketStore, SQLiteTicketStore],
) -> None:
    one, other = _gate(workers[0]), _gate(workers[1])
    session = one.sign_in("ann", "s3cret")
    assert session is not None
    cookie = one.session_cookie(session)

    assert other.read_session(cookie) == session
    assert other.sign_out(cookie)
    assert one.read_session(cookie) is None
    assert other.read_session(cookie) is None


def test_ending_an_agents_sessions_ends_them_on_every_worker(
    workers: tuple[SQLiteTicketStore, SQLiteTicketStore],
) -> None:
    one, other = _gate(workers[0]), _gate(workers[1])
    ann = [one.sign_in("ann", "s3cret"), other.sign_in("ann", "s3cret")]
    bob = one.sign_in("bob", "pw")
    assert bob is not None and all(s is not None for s in ann)

    assert other.sign_out_agent("ann") == 2
    assert all(one.read_session(one.session_cookie(s)) is None for s in ann if s is not None)
    assert other.read_session(one.session_cookie(bob)) == bob


def test_a_restart_ends_every_session(
    workers: tuple[SQLiteTicketStore, SQLiteTicketStore],
) -> None:
    gate = _gate(workers[0])
    session = gate.sign_in("ann", "s3cret")
    assert session is not None

    assert workers[1].end_sessions() == 1
    assert gate.read_session(gate.session_cookie(session)) is None


def test_a_client_is_limited_by_all_workers_together(
    workers: tuple[SQLiteTicketStore, SQLiteTicketStore],
) -> None:
    now = [1000.0]

    def limit(store: SQLiteTicketStore) -> ClientRateLimit:
        return ClientRateLimit(4, 3600, max_clients=100, clock=lambda: now[0], buckets=store)

    one, other = limit(workers[0]), limit(workers[1])
    for number in range(4):
        (one if number % 2 else other).check("203.0.113.7")
    with pytest.raises(RateLimited) as refused:
        one.check("203.0.113.7")
    assert refused.value.retry_after_s == 1
    # Another address has its own bucket; a second later the first has a token again.
    other.check("203.0.113.8")
    now[0] += 1.0
    other.check("203.0.113.7")

    assert one.refused == other.refused == 1
    assert one.clients == 2
    collected = {m.name: m.samples[0].value for m in RateLimitCollector(other).collect()}
    assert collected["ticket_enrich_customer_submissions_refused"] == 1


def test_limits_sharing_a_store_keep_their_own_buckets_and_the_bound_on_addresses(
    workers: tuple[SQLiteTicketStore, SQLiteTicketStore],
) -> None:
    now = [0.0]
    settings = Settings(login_rate_burst=1, login_rate_per_hour=60, customer_rate_clients_max=3)
    throttle = LoginThrottle.from_settings(settings, clock=lambda: now[0], buckets=workers[0])
    customers = ClientRateLimit(
        1, 60, max_clients=3, clock=lambda: now[0], buckets=workers[1], scope="customer"
    )
    assert throttle is not None

    throttle.check_address("203.0.113.7")
    throttle.check_name("ann")
    customers.check("203.0.113.7")
    with pytest.raises(RateLimited):
        throttle.check_address("203.0.113.7")
    with pytest.raises(RateLimited):
        customers.check("203.0.113.7")

    # Five more addresses within a second: only the three most recent are remembered.
    for last in range(10, 15):
        now[0] += 0.1
        customers.check(f"203.0.113.{last}")
    assert customers.clients == 3
    assert customers.evicted == 3
    # Once every bucket has refilled, none is kept.
    now[0] += 3600
    customers.check("198.51.100.1")
    assert customers.clients == 1

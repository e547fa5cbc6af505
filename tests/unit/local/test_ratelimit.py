"""The customer form's rate limit: token buckets per client address, on a clock the test turns."""

from __future__ import annotations

import ipaddress
import threading

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest

from adapters.local.ratelimit import ClientRateLimit, RateLimitCollector
from core.errors import RateLimited
from core.settings import Settings


class Clock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _limit(
    clock: Clock, burst: int = 5, per_hour: float = 30, max_clients: int = 1000, **kw: object
) -> ClientRateLimit:
    return ClientRateLimit(burst, per_hour, max_clients=max_clients, clock=clock, **kw)  # type: ignore[arg-type]


def test_a_burst_goes_through_then_one_more_waits_for_the_sustained_rate() -> None:
    clock = Clock()
    limit = _limit(clock, burst=5, per_hour=30)  # a token every 120 s
    assert [limit.take("a") for _ in range(5)] == [0.0] * 5
    assert limit.take("a") == pytest.approx(120.0)
    clock.advance(119.0)
    assert limit.take("a") == pytest.approx(1.0)
    clock.advance(1.0)
    assert limit.take("a") == 0.0
    assert limit.take("a") == pytest.approx(120.0)
    assert limit.refused == 3


def test_refused_attempts_do_not_push_the_next_token_further_away() -> None:
    clock = Clock()
    limit = _limit(clock, burst=1, per_hour=60)
    assert limit.take("a") == 0.0
    for _ in range(10):
        clock.advance(5.0)
        limit.take("a")
    clock.advance(10.0)
    assert limit.take("a") == 0.0


def test_a_quiet_client_gets_its_burst_back_but_no_more() -> None:
    clock = Clock()
    limit = _limit(clock, burst=3, per_hour=3600)
    for _ in range(3):
        limit.take("a")
    clock.advance(24 * 3600)
    assert [limit.take("a") for _ in range(4)][-1] == pytest.approx(1.0)


def test_clients_are_counted_apart() -> None:
    clock = Clock()
    limit = _limit(clock, burst=1, per_hour=1)
    assert limit.take("a") == 0.0
    assert limit.take("a") > 0
    assert limit.take("b") == 0.0


def test_check_raises_with_whole_seconds_and_words() -> None:
    clock = Clock()
    limit = _limit(clock, burst=1, per_hour=30)
    assert limit.check("203.0.113.7") == "203.0.113.7"
    with pytest.raises(RateLimited) as refused:
        limit.check("203.0.113.7")
    assert refused.value.retry_after_s == 120
    assert str(refused.value) == (
        "too many tickets were sent from your address; please try again in 2 minutes"
    )
    clock.advance(119.5)
    with pytest.raises(RateLimited) as refused:
        limit.check("203.0.113.7")
    assert refused.value.retry_after_s == 1
    assert str(refused.value).endswith("in 1 second")


@pytest.mark.parametrize(
    ("per_hour", "words"),
    [
        (3600, "1 second"),
        (100, "36 seconds"),
        (2, "30 minutes"),
        (1, "1 hour"),
        (0.75, "1 hour 20 minutes"),
        (0.4, "2 hours 30 minutes"),
    ],
)
def test_the_wait_is_said_the_way_a_person_reads_it(per_hour: float, words: str) -> None:
    limit = _limit(Clock(), burst=1, per_hour=per_hour)
    limit.check("a")
    with pytest.raises(RateLimited, match=f"in {words}$"):
        limit.check("a")


def test_memory_is_bounded_and_the_least_recently_seen_go_first() -> None:
    clock = Clock()
    limit = _limit(clock, burst=2, per_hour=1, max_clients=100)
    limit.take("victim")
    limit.take("victim")
    for n in range(10_000):
        limit.take(f"10.0.{n // 256}.{n % 256}")
        if n == 50:
            limit.take("victim")  # seen again: moves to the back of the line
    assert limit.clients == 100
    assert limit.evicted == 10_001 - 100
    # Forgotten, so it starts over with a whole burst: the price of a bounded memory.
    assert limit.take("victim") == 0.0


def test_refilled_buckets_are_forgotten_without_waiting_for_the_bound() -> None:
    clock = Clock()
    limit = _limit(clock, burst=2, per_hour=3600)  # refills in 2 s at most
    for n in range(50):
        limit.take(f"client-{n}")
    assert limit.clients == 50
    clock.advance(2.0)
    limit.take("newcomer")
    assert limit.clients == 1
    assert limit.evicted == 0


def test_a_bucket_not_yet_refilled_is_kept() -> None:
    clock = Clock()
    limit = _limit(clock, burst=2, per_hour=3600)
    limit.take("a")
    limit.take("a")
    clock.advance(1.0)  # one token back of two
    limit.take("b")
    assert limit.clients == 2
    assert limit.take("a") == 0.0
    assert limit.take("a") == pytest.approx(1.0)


def test_concurrent_takes_hand_out_exactly_the_burst() -> None:
    limit = _limit(Clock(), burst=100, per_hour=1)
    granted: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def hammer() -> None:
        start.wait()
        mine = sum(1 for _ in range(200) if limit.take("shared") == 0.0)
        with lock:
            granted.append(mine)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(granted) == 100
    assert limit.refused == 8 * 200 - 100


def _nets(*values: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(v) for v in values]


def test_the_socket_peer_is_the_client_unless_it_is_a_trusted_proxy() -> None:
    limit = _limit(Clock())
    spoofed = ["198.51.100.1"]
    assert limit.client("203.0.113.7", spoofed) == "203.0.113.7"
    trusting = _limit(Clock(), trusted_proxies=_nets("10.0.0.0/8"))
    assert trusting.client("203.0.113.7", spoofed) == "203.0.113.7"
    assert trusting.client("10.1.2.3", spoofed) == "198.51.100.1"


def test_forwarded_hops_are_read_from_the_right_past_trusted_proxies_only() -> None:
    limit = _limit(Clock(), trusted_proxies=_nets("10.0.0.0/8", "127.0.0.1"))
    # The client wrote the first entry itself; each trusted proxy appended the address it saw.
    chain = ["6.6.6.6, 203.0.113.7, 10.0.0.2"]
    assert limit.client("127.0.0.1", chain) == "203.0.113.7"
    # Several headers are one list, in order.
    assert limit.client("127.0.0.1", ["6.6.6.6", "203.0.113.7", "10.0.0.2"]) == "203.0.113.7"
    # Only trusted proxies all the way: the leftmost address is the client.
    assert limit.client("127.0.0.1", ["10.0.0.9, 10.0.0.2"]) == "10.0.0.9"
    # No header: the proxy itself.
    assert limit.client("127.0.0.1", []) == "127.0.0.1"
    # Garbage where a trusted proxy's hop should be: the last address known for certain.
    assert limit.client("127.0.0.1", ["203.0.113.7, not-an-address"]) == "127.0.0.1"
    assert limit.client("127.0.0.1", ["203.0.113.7, 10.0.0.2, "]) == "127.0.0.1"


def test_addresses_are_normalised() -> None:
    limit = _limit(Clock(), trusted_proxies=_nets("127.0.0.1"))
    assert limit.client("127.0.0.1", ["203.0.113.7:51234"]) == "203.0.113.7"
    assert limit.client("127.0.0.1", ["[2001:db8::1]:443"]) == "2001:db8::/64"
    assert limit.client("::ffff:203.0.113.7") == "203.0.113.7"
    # One IPv6 subscriber holds a /64: every address in it shares one bucket.
    assert limit.client("2001:db8:0:1::1") == limit.client("2001:db8:0:1:ffff::2")
    assert limit.client("2001:db8:0:1::1") != limit.client("2001:db8:0:2::1")
    # A peer that is no IP address (a Unix socket, a test transport) is counted as it is.
    assert limit.client("testclient") == "testclient"
    assert limit.client(None) == "unknown"


def test_settings_build_the_limit_and_zero_turns_it_off() -> None:
    limit = ClientRateLimit.from_settings(
        Settings(customer_rate_burst=2, customer_rate_per_hour=6, trusted_proxies=["10.0.0.0/8"])
    )
    assert limit is not None
    assert (limit.burst, limit.per_hour) == (2, 6)
    assert limit.client("10.0.0.1", ["203.0.113.7"]) == "203.0.113.7"
    defaults = ClientRateLimit.from_settings(Settings())
    assert defaults is not None
    assert (defaults.burst, defaults.per_hour, defaults.trusted_proxies) == (5, 30, ())
    assert ClientRateLimit.from_settings(Settings(customer_rate_burst=0)) is None
    assert ClientRateLimit.from_settings(Settings(customer_rate_per_hour=0)) is None


def test_settings_come_from_the_environment_and_are_validated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKET_ENRICH_CUSTOMER_RATE_BURST", "3")
    monkeypatch.setenv("TICKET_ENRICH_CUSTOMER_RATE_PER_HOUR", "12.5")
    monkeypatch.setenv("TICKET_ENRICH_CUSTOMER_RATE_CLIENTS_MAX", "500")
    monkeypatch.setenv("TICKET_ENRICH_TRUSTED_PROXIES", '["127.0.0.1", "fd00::/8"]')
    settings = Settings()
    assert settings.customer_rate_burst == 3
    assert settings.customer_rate_per_hour == 12.5
    assert settings.customer_rate_clients_max == 500
    assert settings.trusted_proxies == _nets("127.0.0.1/32", "fd00::/8")
    for bad in ('["10.0.0.1/8"]', '["proxy.internal"]', "10.0.0.0/8"):
        monkeypatch.setenv("TICKET_ENRICH_TRUSTED_PROXIES", bad)
        with pytest.raises(ValueError):
            Settings()
    monkeypatch.setenv("TICKET_ENRICH_TRUSTED_PROXIES", "[]")
    monkeypatch.setenv("TICKET_ENRICH_CUSTOMER_RATE_BURST", "-1")
    with pytest.raises(ValueError, match="customer_rate_burst"):
        Settings()


def test_a_limit_needs_a_burst_and_a_rate() -> None:
    with pytest.raises(ValueError):
        ClientRateLimit(0, 30, max_clients=10)
    with pytest.raises(ValueError):
        ClientRateLimit(5, 0, max_clients=10)
    with pytest.raises(ValueError):
        ClientRateLimit(5, 30, max_clients=0)


def test_refusals_and_tracked_clients_are_prometheus_metrics() -> None:
    limit = _limit(Clock(), burst=1, per_hour=1)
    registry = CollectorRegistry()
    registry.register(RateLimitCollector(limit))
    limit.take("a")
    limit.take("a")
    limit.take("a")
    limit.take("b")
    text = generate_latest(registry).decode()
    assert "ticket_enrich_customer_submissions_refused_total 2.0" in text
    assert "ticket_enrich_rate_limit_clients 2.0" in text

"""A rate limit per client address for the anonymous customer form: one token bucket each.

Every submission takes a token from its address's bucket; a bucket holds at most ``burst``
tokens and refills at ``per_hour`` tokens an hour, so a customer can send a few tickets at once
and a steady trickle after, while one address cannot flood the store, the enrichment CPU or the
helpdesk. Buckets are bounded: one that has refilled is the same as none and is forgotten, and
past ``max_clients`` the least recently seen address is forgotten, so an attacker with many
addresses cannot grow memory without limit (each of them only gets a fresh burst). They live in
memory, or in the SQLite store when the service runs several worker processes that must count
one client's requests together.

The client is the socket peer. ``X-Forwarded-For`` is believed only from configured trusted
proxies, read from the right: each hop a trusted proxy added is skipped, and the first address
not in a trusted network is the client (so a client cannot choose its address by sending the
header itself). IPv6 clients are counted per /64, the block one subscriber usually holds.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from core.errors import RateLimited

if TYPE_CHECKING:
    from core.settings import Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_SECONDS_PER_HOUR = 3600.0
_IPV6_PREFIX = 64
# A request whose peer is no IP address (a Unix socket, a test transport) has no address to
# count; all of them share this bucket.
_NO_ADDRESS = "unknown"


@runtime_checkable
class TokenBuckets(Protocol):
    """Where rate limits keep their token buckets: in this process's memory, or in a store that
    every worker process of the service shares (`SQLiteTicketStore`)."""

    def take_token(
        self,
        scope: str,
        client: str,
        now: float,
        burst: float,
        rate_per_s: float,
        max_clients: int,
    ) -> float:
        """Take a token from ``client``'s bucket in ``scope`` (a full one if it has none): 0.0
        when it had one, else the seconds until it will, counted as a refusal. Refilled buckets
        are forgotten, and past ``max_clients`` the least recently seen, counted as evicted."""
        ...

    def rate_limit_counts(self, scope: str) -> tuple[int, int, int]:
        """The buckets held, the refusals and the evictions in ``scope``."""
        ...


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated


class MemoryTokenBuckets:
    """`TokenBuckets` in this process's memory, thread-safe: right for one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scopes: dict[str, OrderedDict[str, _Bucket]] = {}
        self._counts: dict[str, list[int]] = {}

    def take_token(
        self,
        scope: str,
        client: str,
        now: float,
        burst: float,
        rate_per_s: float,
        max_clients: int,
    ) -> float:
        with self._lock:
            buckets = self._scopes.setdefault(scope, OrderedDict())
            counts = self._counts.setdefault(scope, [0, 0])

            def refilled(bucket: _Bucket) -> float:
                elapsed = max(0.0, now - bucket.updated)
                return min(burst, bucket.tokens + elapsed * rate_per_s)

            # The least recently seen buckets come first; a full one says nothing a missing one
            # does not. Each bucket is dropped at most once, so this is O(1) per call on average.
            while buckets and refilled(next(iter(buckets.values()))) >= burst:
                buckets.popitem(last=False)
            bucket = buckets.get(client)
            if bucket is None:
                bucket = _Bucket(burst, now)
                buckets[client] = bucket
                if len(buckets) > max_clients:
                    buckets.popitem(last=False)
                    counts[1] += 1
            else:
                bucket.tokens = refilled(bucket)
                bucket.updated = now
                buckets.move_to_end(client)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            counts[0] += 1
            return (1.0 - bucket.tokens) / rate_per_s

    def rate_limit_counts(self, scope: str) -> tuple[int, int, int]:
        with self._lock:
            refused, evicted = self._counts.get(scope, (0, 0))
            return len(self._scopes.get(scope, ())), refused, evicted


class ClientRateLimit:
    """Token buckets per client address, thread-safe and bounded in size.

    ``clock`` returns seconds on a monotonic scale (``time.monotonic``, one scale for every
    process of the machine); tests pass their own. The buckets live in ``buckets`` (by default
    this process's memory) under ``scope``, so limits that share a store stay apart.
    """

    def __init__(
        self,
        burst: int,
        per_hour: float,
        *,
        max_clients: int,
        trusted_proxies: Iterable[Network] = (),
        clock: Callable[[], float] = time.monotonic,
        buckets: TokenBuckets | None = None,
        scope: str = "customer",
    ) -> None:
        if burst < 1 or per_hour <= 0:
            raise ValueError("a rate limit needs a burst of at least 1 and a positive rate")
        if max_clients < 1:
            raise ValueError("max_clients must be at least 1")
        self.burst = burst
        self.per_hour = per_hour
        self.max_clients = max_clients
        self.trusted_proxies = tuple(trusted_proxies)
        self.scope = scope
        self._rate_per_s = per_hour / _SECONDS_PER_HOUR
        self._clock = clock
        self._buckets: TokenBuckets = MemoryTokenBuckets() if buckets is None else buckets

    @property
    def refused(self) -> int:
        """How many takes found an empty bucket."""
        return self._buckets.rate_limit_counts(self.scope)[1]

    @property
    def evicted(self) -> int:
        """How many buckets were forgotten before they refilled, to stay within max_clients."""
        return self._buckets.rate_limit_counts(self.scope)[2]

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
        buckets: TokenBuckets | None = None,
    ) -> ClientRateLimit | None:
        """The customer form's limit the settings describe, or None when it is off (either
        the burst or the rate at 0)."""
        if settings.customer_rate_burst == 0 or settings.customer_rate_per_hour == 0:
            return None
        return cls(
            settings.customer_rate_burst,
            settings.customer_rate_per_hour,
            max_clients=settings.customer_rate_clients_max,
            trusted_proxies=settings.trusted_proxies,
            clock=clock,
            buckets=buckets,
        )

    @property
    def clients(self) -> int:
        """How many addresses' buckets are held."""
        return self._buckets.rate_limit_counts(self.scope)[0]

    def client(self, peer: str | None, forwarded_for: Sequence[str] = ()) -> str:
        """The key a request is counted under: its client's address (an IPv6 one's /64).

        ``forwarded_for`` are the request's ``X-Forwarded-For`` headers in order; they are
        read only while the address at hand is a trusted proxy.
        """
        address = _parse(peer)
        if address is None:
            return peer or _NO_ADDRESS
        hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
        while hops and self._trusted(address):
            previous = _parse(hops.pop())
            if previous is None:
                # The hop the trusted proxy reported is garbage: the proxy is the last address
                # known for certain.
                break
            address = previous
        if isinstance(address, ipaddress.IPv6Address):
            return str(ipaddress.IPv6Network((address, _IPV6_PREFIX), strict=False))
        return str(address)

    def take(self, client: str) -> float:
        """Take a token for one submission by ``client``: 0.0 when it may go ahead, otherwise
        the seconds until its bucket holds a token again."""
        return self._buckets.take_token(
            self.scope,
            client,
            self._clock(),
            float(self.burst),
            self._rate_per_s,
            self.max_clients,
        )

    def check(self, peer: str | None, forwarded_for: Sequence[str] = ()) -> str:
        """Count one submission from this request's client and return the client's key;
        raise `RateLimited` (with whole seconds to wait) when its bucket is empty."""
        client = self.client(peer, forwarded_for)
        wait = self.take(client)
        if wait > 0:
            # Float noise must not turn 120 s into 121 s.
            seconds = max(1, math.ceil(wait - 1e-6))
            raise RateLimited(
                "too many tickets were sent from your address; "
                f"please try again in {_duration(seconds)}",
                retry_after_s=seconds,
            )
        return client

    def _trusted(self, address: Address) -> bool:
        return any(address in network for network in self.trusted_proxies)


class LoginThrottle:
    """Agent sign-in attempts, limited per client address and per agent name, so that neither
    one address trying many names nor many addresses trying one name can guess passwords (or
    spend the server's CPU on scrypt) faster than the settings allow. Every attempt counts,
    before its password is checked."""

    def __init__(self, by_address: ClientRateLimit, by_name: ClientRateLimit) -> None:
        self.by_address = by_address
        self.by_name = by_name

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
        buckets: TokenBuckets | None = None,
    ) -> LoginThrottle | None:
        """The sign-in limit the settings describe, or None when it is off."""
        if settings.login_rate_burst == 0 or settings.login_rate_per_hour == 0:
            return None

        def limit(trusted: Sequence[Network], scope: str) -> ClientRateLimit:
            return ClientRateLimit(
                settings.login_rate_burst,
                settings.login_rate_per_hour,
                max_clients=settings.customer_rate_clients_max,
                trusted_proxies=trusted,
                clock=clock,
                buckets=buckets,
                scope=scope,
            )

        return cls(limit(settings.trusted_proxies, "login"), limit((), "login-name"))

    def check_address(self, peer: str | None, forwarded_for: Sequence[str] = ()) -> None:
        """Count an attempt from this client; `RateLimited` when it has none left."""
        _refuse(self.by_address.take(self.by_address.client(peer, forwarded_for)))

    def check_name(self, name: str) -> None:
        """Count an attempt at this agent name; `RateLimited` when it has none left."""
        _refuse(self.by_name.take("name:" + name[:_NAME_KEY_CHARS]))


_NAME_KEY_CHARS = 128


def _refuse(wait: float) -> None:
    if wait > 0:
        seconds = max(1, math.ceil(wait - 1e-6))
        raise RateLimited(
            f"too many sign-in attempts; please try again in {_duration(seconds)}",
            retry_after_s=seconds,
        )


class RateLimitCollector(Collector):
    """Prometheus metrics of a `ClientRateLimit`: refused submissions, tracked addresses."""

    def __init__(self, limit: ClientRateLimit) -> None:
        self._limit = limit

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        yield CounterMetricFamily(
            "ticket_enrich_customer_submissions_refused",
            "Customer-form submissions refused by the per-address rate limit (HTTP 429).",
            value=self._limit.refused,
        )
        yield GaugeMetricFamily(
            "ticket_enrich_rate_limit_clients",
            "Client addresses whose rate-limit buckets are held in memory.",
            value=self._limit.clients,
        )


def _parse(value: str | None) -> Address | None:
    if not value:
        return None
    text = value.strip()
    # Some proxies write a port: "203.0.113.7:51234", "[2001:db8::1]:51234".
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _duration(seconds: int) -> str:
    """Whole seconds in words, rounded up to what a person would wait for."""
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours, minutes = divmod(minutes, 60)
    words = f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{words} {minutes} minute{'s' if minutes != 1 else ''}" if minutes else words

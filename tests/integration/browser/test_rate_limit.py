"""The customer form's rate limit over HTTP, on the real service: 429 with Retry-After for one
address past its burst, X-Forwarded-For believed only from trusted proxies, the agents' API
never limited, and the customer page saying when to try again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, expect

from adapters.local.app import server_options
from adapters.local.ratelimit import ClientRateLimit
from core import Enricher
from core.settings import Settings
from tests.integration.browser.conftest import Service, running


class Clock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limited(
    small_enricher: Enricher, tmp_path: Path, helpdesk_url: str, agent_hash: str, clock: Clock
) -> Iterator[Service]:
    """The service whose customer form lets one address send 2 tickets at once, then one
    every 2 minutes (30 an hour), on the test's clock."""
    limit = ClientRateLimit(2, 30, max_clients=1000, clock=clock)
    with running(
        small_enricher, tmp_path / "tickets.sqlite3", helpdesk_url, agent_hash, rate_limit=limit
    ) as service:
        yield service


def _customer_posts(url: str, count: int, **headers: str) -> list[httpx.Response]:
    with httpx.Client(base_url=url, timeout=30.0, headers=headers) as customer:
        return [
            customer.post("/customer/tickets", json={"subject": f"Printer on fire {n}"})
            for n in range(count)
        ]


def test_past_its_burst_an_address_gets_429_with_retry_after_and_nothing_is_stored(
    limited: Service, clock: Clock
) -> None:
    answers = _customer_posts(limited.url, 4)
    assert [a.status_code for a in answers] == [201, 201, 429, 429]
    refused = answers[2]
    assert refused.headers["retry-after"] == "120"
    assert refused.json() == {
        "error": {
            "code": "rate_limited",
            "message": "too many tickets were sent from your address; "
            "please try again in 2 minutes",
            "problems": [],
        }
    }
    assert limited.api.get("/tickets").json()["total"] == 2

    clock.now += 60
    early = _customer_posts(limited.url, 1)[0]
    assert early.status_code == 429
    assert early.headers["retry-after"] == "60"
    clock.now += 60
    assert [a.status_code for a in _customer_posts(limited.url, 2)] == [201, 429]
    assert limited.api.get("/tickets").json()["total"] == 3
    metrics = limited.api.get("/metrics").text.splitlines()
    assert "ticket_enrich_customer_submissions_refused_total 4.0" in metrics
    assert "ticket_enrich_rate_limit_clients 1.0" in metrics


def test_a_refused_body_is_not_read_or_judged(limited: Service) -> None:
    _customer_posts(limited.url, 2)
    with httpx.Client(base_url=limited.url, timeout=30.0) as customer:
        oversized = customer.post("/customer/tickets", content=b"x" * (300 * 1024))
        malformed = customer.post("/customer/tickets", content=b"not json")
    assert [oversized.status_code, malformed.status_code] == [429, 429]


def test_the_agents_api_is_not_limited(limited: Service) -> None:
    _customer_posts(limited.url, 3)
    created = [
        limited.api.post("/tickets", json={"subject": f"Disk full on node {n}"}) for n in range(6)
    ]
    assert [c.status_code for c in created] == [201] * 6
    # The customer is still refused: the API's tickets took nothing from its bucket, nor gave.
    assert _customer_posts(limited.url, 1)[0].status_code == 429


def test_without_trusted_proxies_x_forwarded_for_is_ignored(
    small_enricher: Enricher, tmp_path: Path, helpdesk_url: str, agent_hash: str
) -> None:
    # The default limit: 5 at once. A client cannot choose new addresses to get more.
    with running(small_enricher, tmp_path / "t.sqlite3", helpdesk_url, agent_hash) as service:
        answers = [
            _customer_posts(service.url, 1, **{"X-Forwarded-For": f"198.51.100.{n}"})[0]
            for n in range(6)
        ]
    assert [a.status_code for a in answers] == [201] * 5 + [429]
    assert answers[-1].headers["retry-after"] == "120"


def test_behind_a_trusted_proxy_each_forwarded_address_has_its_own_bucket(
    small_enricher: Enricher, tmp_path: Path, helpdesk_url: str, agent_hash: str
) -> None:
    with running(
        small_enricher,
        tmp_path / "tickets.sqlite3",
        helpdesk_url,
        agent_hash,
        customer_rate_burst=1,
        customer_rate_per_hour=1,
        trusted_proxies=["127.0.0.1"],
    ) as proxied:
        # What a proxy on 127.0.0.1 sends: the address it saw, appended to what came in.
        first = _customer_posts(proxied.url, 2, **{"X-Forwarded-For": "203.0.113.1"})
        second = _customer_posts(proxied.url, 1, **{"X-Forwarded-For": "203.0.113.2"})
        # A client's own header does not help: the proxy's hop is the one believed.
        spoofed = _customer_posts(
            proxied.url, 1, **{"X-Forwarded-For": "198.51.100.9, 203.0.113.1"}
        )
    assert [a.status_code for a in first] == [201, 429]
    assert first[1].headers["retry-after"] == "3600"
    assert "1 hour" in first[1].json()["error"]["message"]
    assert [a.status_code for a in second] == [201]
    assert [a.status_code for a in spoofed] == [429]


def test_uvicorn_believes_only_the_trusted_proxies_the_settings_name() -> None:
    # Left to its defaults uvicorn would rewrite the client from X-Forwarded-For for any peer
    # on 127.0.0.1; the service's options leave that to the settings.
    assert server_options(Settings()) == {"proxy_headers": False, "forwarded_allow_ips": []}
    options = server_options(Settings(trusted_proxies=["127.0.0.1", "fd00::/8"]))
    assert options == {"proxy_headers": True, "forwarded_allow_ips": ["127.0.0.1/32", "fd00::/8"]}
    config = uvicorn.Config(lambda: None, **options)
    assert config.proxy_headers is True
    assert config.forwarded_allow_ips == ["127.0.0.1/32", "fd00::/8"]


def test_the_customer_page_says_when_to_try_again(
    browser: Browser, limited: Service, clock: Clock
) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(limited.url + "/")
        page.wait_for_selector("body[data-ready=true]")
        for n in range(2):
            page.fill("#subject", f"Cluster down {n}")
            page.click("#submit")
            expect(page.locator("#confirmation")).to_be_visible()
            page.click("#another")
        page.fill("#subject", "Cluster down again")
        page.click("#submit")
        problem = page.locator("#form-problem")
        expect(problem).to_have_text(
            "Too many tickets were sent from your address; please try again in 2 minutes."
        )
        expect(page.locator("#confirmation")).to_be_hidden()
        expect(page.locator("#subject")).to_have_value("Cluster down again")
        assert limited.api.get("/tickets").json()["total"] == 2

        # Once the bucket has a token again the same form goes through.
        clock.now += 120
        page.click("#submit")
        expect(page.locator("#confirmation")).to_be_visible()
        assert limited.api.get("/tickets").json()["total"] == 3
    finally:
        context.close()

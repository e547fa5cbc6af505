"""`ticket-enrich serve --workers 2` as an operator runs it: whichever worker process a request
reaches, agents' sessions, the sign-in limit, metrics and the delivery outbox are the service's
one state; every ticket is delivered exactly once; a worker that dies is replaced; with one
worker per core, each is kept on a core of its own."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.local.auth import CSRF_COOKIE, SESSION_COOKIE, hash_password
from tests.integration.azure.webhook_receiver import SECRET, Receiver, receiving
from tests.support import serving, wait_until

API_KEY = "k" * 32
AGENT, PASSWORD = "ann", "correct horse"
WORKERS = 2
# Each request on a fresh connection, so that the kernel hands them to either worker.
REQUESTS = 24
TICKETS = 40
_STARTED = re.compile(r"Started server process \[(\d+)\]")


def _worker_pids(log: Path) -> list[int]:
    return [int(pid) for pid in _STARTED.findall(log.read_text(errors="replace"))]


# The service may use two cores, so that its two workers are one per core on any machine.
CORES = set(sorted(os.sched_getaffinity(0))[:WORKERS])


@pytest.fixture
def service(small_model_dir: Path, tmp_path: Path) -> Iterator[tuple[str, Receiver, Path]]:
    if len(CORES) < WORKERS:
        pytest.skip(f"needs {WORKERS} usable cores; this machine gives {len(CORES)}")
    with receiving() as helpdesk:
        settings = {
            "workers": str(WORKERS),
            "model_dir": str(small_model_dir),
            "database": str(tmp_path / "tickets.sqlite3"),
            "agents": f'{{"{AGENT}": "{hash_password(PASSWORD)}"}}',
            "api_key": API_KEY,
            "login_rate_burst": "5",
            "login_rate_per_hour": "60",
            "deliver": "true",
            "helpdesk_webhook_url": helpdesk.url,
            "helpdesk_webhook_secret": SECRET,
            "delivery_poll_interval_s": "0.1",
        }
        log = tmp_path / "service.log"
        with serving(settings, log, cores=CORES) as base_url:
            wait_until(lambda: len(_worker_pids(log)) == WORKERS, "both workers to start")
            yield base_url, helpdesk, log
    assert "Traceback" not in log.read_text(errors="replace")


def _fresh(
    method: str, url: str, cookies: dict[str, str] | None = None, **kwargs: object
) -> httpx.Response:
    with httpx.Client(timeout=60, cookies=cookies) as http:
        return http.request(method, url, **kwargs)  # type: ignore[arg-type]


def _sign_in(base_url: str, password: str = PASSWORD) -> httpx.Response:
    return _fresh("POST", f"{base_url}/agent/login", json={"name": AGENT, "password": password})


def test_a_session_holds_on_every_worker_until_signing_out_ends_it_on_all(
    service: tuple[str, Receiver, Path],
) -> None:
    base_url, _, _ = service
    signed_in = _sign_in(base_url)
    assert signed_in.status_code == 200
    cookies = {SESSION_COOKIE: signed_in.cookies[SESSION_COOKIE]}

    answers = [
        _fresh("GET", f"{base_url}/agent/session", cookies=cookies).status_code
        for _ in range(REQUESTS)
    ]
    assert answers == [200] * REQUESTS

    token = signed_in.cookies[CSRF_COOKIE]
    logout = _fresh(
        "POST",
        f"{base_url}/agent/logout",
        cookies={**cookies, CSRF_COOKIE: token},
        headers={"x-csrf-token": token, "origin": base_url},
    )
    assert logout.status_code == 204
    answers = [
        _fresh("GET", f"{base_url}/agent/queue", cookies=cookies).status_code
        for _ in range(REQUESTS)
    ]
    assert answers == [401] * REQUESTS


def test_wrong_passwords_are_counted_across_workers(service: tuple[str, Receiver, Path]) -> None:
    base_url, _, _ = service
    answers = [_sign_in(base_url, f"guess {i}").status_code for i in range(5)]
    assert answers == [401] * 5
    # Whichever worker the next attempts reach, the bucket is empty.
    answers = [_sign_in(base_url, "guess again").status_code for _ in range(6)]
    assert answers == [429] * 6


def test_every_ticket_is_delivered_exactly_once_and_counted_once(
    service: tuple[str, Receiver, Path],
) -> None:
    base_url, helpdesk, _ = service

    def post(number: int) -> httpx.Response:
        ticket = {"subject": f"Export {number} fails", "description": "the export stops"}
        return _fresh("POST", f"{base_url}/tickets", json=ticket, headers={"X-API-Key": API_KEY})

    with ThreadPoolExecutor(8) as pool:
        created = list(pool.map(post, range(TICKETS)))
    assert [r.status_code for r in created] == [201] * TICKETS
    ids = {r.json()["id"] for r in created}

    def delivered() -> bool:
        listing = _fresh(
            "GET",
            f"{base_url}/outbox?status=delivered&limit=200",
            headers={"X-API-Key": API_KEY},
        )
        return len(listing.json()["items"]) == TICKETS

    wait_until(delivered, "every ticket to be delivered")
    # Two workers poll the outbox every 0.1 s, yet each ticket reached the helpdesk once.
    assert helpdesk.requests == TICKETS
    assert {c["ticket"]["id"] for c in helpdesk.created.values()} == ids
    # Each worker counts what it enriched; /metrics, from either one, adds them up.
    for _ in range(4):
        text = _fresh("GET", f"{base_url}/metrics").text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        enriched = families["ticket_enrich_enriched"].samples
        assert sum(s.value for s in enriched if s.name.endswith("_total")) == TICKETS


def _cores(pid: int) -> set[int]:
    return set(os.sched_getaffinity(pid))


def test_each_worker_runs_on_a_core_of_its_own(service: tuple[str, Receiver, Path]) -> None:
    _, _, log = service
    pinned = [_cores(pid) for pid in _worker_pids(log)]
    assert sorted(pinned, key=min) == [{core} for core in sorted(CORES)]
    assert "each on a core of its own" in log.read_text(errors="replace")


def test_a_worker_that_dies_is_replaced(service: tuple[str, Receiver, Path]) -> None:
    base_url, _, log = service
    first, second = _worker_pids(log)
    first_core, second_core = _cores(first), _cores(second)
    os.kill(first, signal.SIGKILL)

    wait_until(lambda: len(_worker_pids(log)) == WORKERS + 1, "a new worker to start")
    answers = [_fresh("GET", f"{base_url}/healthz").status_code for _ in range(REQUESTS)]
    assert answers == [200] * REQUESTS
    # The new worker takes the core of the one it replaces.
    replacement = _worker_pids(log)[-1]
    assert _cores(replacement) == first_core
    assert _cores(second) == second_core

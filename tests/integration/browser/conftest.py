"""The local service on a free port with its pages, a webhook helpdesk, and Debian's Chromium
driven by Playwright. `tests/setup.d/50-browser.sh` installs Chromium."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from adapters.helpdesk.webhook import WebhookClient
from adapters.local.app import create_app, server_options
from adapters.local.auth import hash_password
from adapters.local.ratelimit import ClientRateLimit
from adapters.local.sqlite_store import SQLiteTicketStore
from core import Enricher, load_enricher
from core.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
AGENT = "ann"
AGENT_PASSWORD = "correct horse battery staple"
API_KEY = "browser-test-key"
HELPDESK_SECRET = "webhook-secret"
SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
TIMEOUT_S = 30.0


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run `sh tests/setup.d/50-browser.sh` (installs chromium)"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            launched.close()


class _Helpdesk(BaseHTTPRequestHandler):
    """A webhook receiver that creates one helpdesk ticket per idempotency key."""

    created: dict[str, str]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        key = self.headers.get("Idempotency-Key", "")
        created = self.server.created  # type: ignore[attr-defined]
        receiver_id = created.setdefault(key, f"HD-{len(created) + 1}")
        body = json.dumps({"id": receiver_id, "url": f"https://helpdesk.example/t/{receiver_id}"})
        self.send_response(201)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())


@pytest.fixture
def helpdesk_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Helpdesk)
    server.created = {}  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Service:
    """The running local service, its store and an API client with the key."""

    url: str
    store: SQLiteTicketStore
    api: httpx.Client


@pytest.fixture(scope="session")
def enricher(model_dir: Path) -> Enricher:
    """The model trained on the vendored Hadoop tickets: realistic fields for the screenshots."""
    return load_enricher(model_dir)


@pytest.fixture(scope="session")
def small_enricher(small_model_dir: Path) -> Enricher:
    """The tiny model, trained with one form field (`product`)."""
    return load_enricher(small_model_dir)


@pytest.fixture(scope="session")
def agent_hash() -> str:
    return hash_password(AGENT_PASSWORD)


@contextmanager
def running(
    enricher: Enricher,
    database: Path,
    helpdesk_url: str,
    agent_hash: str,
    *,
    rate_limit: ClientRateLimit | None = None,
    **overrides: Any,
) -> Iterator[Service]:
    """The service on a free port of 127.0.0.1; ``overrides`` change its settings, and
    ``rate_limit`` replaces the customer form's limit the settings describe."""
    settings = Settings(
        **{
            "database": database,
            "agents": {AGENT: agent_hash},
            "api_key": API_KEY,
            "deliver": True,
            "delivery_poll_interval_s": 0.1,
            "events_poll_interval_s": 0.1,
            "similar_url_template": "https://issues.apache.org/jira/secure/ViewIssue.jspa?id={id}",
            **overrides,
        }
    )
    helpdesk = WebhookClient(helpdesk_url, HELPDESK_SECRET, timeout=5.0)
    store = SQLiteTicketStore(settings.database)
    app = create_app(
        enricher, store, settings, outbox=store, helpdesk=helpdesk, customer_rate_limit=rate_limit
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()
    # Event streams end on their own within seconds; every test closes its pages before the
    # server stops, and the graceful-shutdown bound only guards against a test that does not.
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            lifespan="on",
            log_level="warning",
            timeout_graceful_shutdown=5,
            **server_options(settings),
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + TIMEOUT_S
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    url = f"http://{host}:{port}"
    try:
        assert server.started, "uvicorn did not start"
        with httpx.Client(base_url=url, timeout=TIMEOUT_S, headers={"X-API-Key": API_KEY}) as api:
            yield Service(url, store, api)
    finally:
        server.should_exit = True
        thread.join(TIMEOUT_S)
        sock.close()
        store.close()
        helpdesk.close()


@pytest.fixture
def service(
    enricher: Enricher, tmp_path: Path, helpdesk_url: str, agent_hash: str
) -> Iterator[Service]:
    """The local service with the realistic model, delivering to a webhook helpdesk."""
    # The service's default limit on the customer form (5 at once from one address) is on.
    with running(enricher, tmp_path / "tickets.sqlite3", helpdesk_url, agent_hash) as service:
        yield service


@pytest.fixture
def small_service(
    small_enricher: Enricher, tmp_path: Path, helpdesk_url: str, agent_hash: str
) -> Iterator[Service]:
    """The local service with the tiny model, whose form has a custom field.

    Its customer form is not rate-limited: the validation test posts a table of bad tickets
    from one address, more than a burst."""
    with running(
        small_enricher,
        tmp_path / "tickets.sqlite3",
        helpdesk_url,
        agent_hash,
        customer_rate_per_hour=0,
    ) as service:
        yield service


@pytest.fixture
def admin_service(
    small_model_dir: Path, tmp_path: Path, helpdesk_url: str, agent_hash: str
) -> Iterator[Service]:
    """The local service with the tiny model, its own registry, and the agent an admin (rules,
    retrain). Its own enricher: a promotion changes the served one in place."""
    with running(
        load_enricher(small_model_dir),
        tmp_path / "tickets.sqlite3",
        helpdesk_url,
        agent_hash,
        models_dir=tmp_path / "models",
        admins=[AGENT],
    ) as service:
        yield service


@contextmanager
def desktop(browser: Browser, width: int = 1440, height: int = 900) -> Iterator[BrowserContext]:
    """A browser context with a desktop viewport, closed when the block ends."""
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        yield context
    finally:
        context.close()


def sign_in(page: Page, url: str) -> None:
    """Open the dashboard and sign the agent in; wait until the live queue is connected."""
    page.goto(f"{url}/agent")
    page.fill("#agent-name", AGENT)
    page.fill("#agent-password", AGENT_PASSWORD)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#dashboard:not([hidden])")
    page.wait_for_selector("#live.on")


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot for docs/pages.md."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=full_page)
    return path

"""Agent sessions end when the agent signs out, and sign-in attempts are limited per address and
per agent name, on the real service over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from adapters.local.auth import CSRF_COOKIE, SESSION_COOKIE, hash_password
from tests.support import serving

AGENT, PASSWORD = "ann", "correct horse"


@pytest.fixture
def service(small_model_dir: Path, tmp_path: Path) -> Iterator[str]:
    settings = {
        "model_dir": str(small_model_dir),
        "database": str(tmp_path / "tickets.sqlite3"),
        "agents": f'{{"{AGENT}": "{hash_password(PASSWORD)}"}}',
        "api_key": "k" * 32,
        "login_rate_burst": "5",
        "login_rate_per_hour": "60",
    }
    with serving(settings, tmp_path / "service.log") as base_url:
        yield base_url


def _sign_in(base_url: str, password: str = PASSWORD, name: str = AGENT) -> httpx.Response:
    return httpx.post(
        f"{base_url}/agent/login", json={"name": name, "password": password}, timeout=30
    )


def test_signing_out_ends_the_session_for_every_copy_of_its_cookie(service: str) -> None:
    signed_in = _sign_in(service)
    assert signed_in.status_code == 200
    saved = {SESSION_COOKIE: signed_in.cookies[SESSION_COOKIE]}
    assert httpx.get(f"{service}/agent/queue", cookies=saved, timeout=30).status_code == 200

    with httpx.Client(base_url=service, cookies=signed_in.cookies, timeout=30) as browser:
        token = signed_in.cookies[CSRF_COOKIE]
        logout = browser.post("/agent/logout", headers={"x-csrf-token": token, "origin": service})
        assert logout.status_code == 204

    # The cookie saved before signing out no longer opens anything.
    after = httpx.get(f"{service}/agent/queue", cookies=saved, timeout=30)
    assert after.status_code == 401
    assert httpx.get(f"{service}/agent/session", cookies=saved, timeout=30).status_code == 401
    # Signing in again works.
    assert _sign_in(service).status_code == 200


def test_wrong_passwords_are_limited_with_a_clear_429(service: str) -> None:
    answers = [_sign_in(service, password=f"guess {i}").status_code for i in range(5)]
    assert answers == [401] * 5
    refused = _sign_in(service, password="guess 6")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    error = refused.json()["error"]
    assert error["code"] == "rate_limited"
    assert "sign-in attempts" in error["message"]
    # The right password is refused too while the bucket is empty: guessing gains nothing.
    assert _sign_in(service).status_code == 429

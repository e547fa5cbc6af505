"""Passwords, sessions, API keys and the CSRF rule, without a server."""

from __future__ import annotations

import time

import pytest

from adapters.local.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Gate,
    Principal,
    digest_matches,
    hash_password,
    main,
    token_digest,
    verify_password,
)

ORIGIN = "http://127.0.0.1:8000"


def _gate(**overrides: object) -> Gate:
    values: dict[str, object] = {
        "agents": {"ann": hash_password("s3cret", n=2**10)},
        "api_key": "the-key",
        "secret": b"x" * 32,
        "max_age_s": 3600,
    }
    values.update(overrides)
    return Gate(**values)  # type: ignore[arg-type]


def test_a_password_hash_is_salted_and_verifies_only_its_password() -> None:
    first, second = hash_password("s3cret", n=2**10), hash_password("s3cret", n=2**10)

    assert first != second
    assert first.startswith("scrypt$1024$8$1$")
    assert verify_password("s3cret", first) and verify_password("s3cret", second)
    assert not verify_password("s3cret ", first)
    assert not verify_password("s3cret", "scrypt$garbage")
    assert not verify_password("s3cret", "pbkdf2$1$2$3$4$5")


def test_sign_in_gives_a_session_that_reads_back_until_it_expires_or_is_tampered_with() -> None:
    gate = _gate()

    assert gate.sign_in("ann", "wrong") is None
    assert gate.sign_in("bob", "s3cret") is None
    session = gate.sign_in("ann", "s3cret")
    assert session is not None
    cookie = gate.session_cookie(session)

    assert gate.read_session(cookie) == session
    payload, signature = cookie.rsplit(".", 1)
    assert gate.read_session(f"{payload}x.{signature}") is None
    assert gate.read_session(f"{payload}.{signature[:-2]}AA") is None
    assert _gate(secret=b"y" * 32).read_session(cookie) is None
    # An agent removed from the settings is signed out at once.
    assert _gate(agents={}).read_session(cookie) is None
    expired = _gate(max_age_s=1)
    old = expired.sign_in("ann", "s3cret")
    assert old is not None
    old_cookie = expired.session_cookie(type(old)(old.agent, old.nonce, int(time.time()) - 1))
    assert expired.read_session(old_cookie) is None


def test_the_principal_is_the_api_key_else_the_session() -> None:
    gate = _gate()
    session = gate.sign_in("ann", "s3cret")
    assert session is not None
    cookies = {SESSION_COOKIE: gate.session_cookie(session)}

    assert gate.principal({"x-api-key": "the-key"}, {}) == Principal("api", "api")
    assert gate.principal({}, cookies) == Principal("agent", "ann")
    assert gate.principal({"x-api-key": "wrong"}, cookies) is None
    assert gate.principal({}, {}) is None
    assert _gate(api_key=None).principal({"x-api-key": ""}, {}) is None


def _refusal(gate: Gate, headers: dict[str, str], cookies: dict[str, str]) -> str | None:
    return gate.csrf_refusal("POST", ORIGIN, headers, cookies)


def test_the_csrf_rule() -> None:
    gate = _gate()
    session = gate.sign_in("ann", "s3cret")
    assert session is not None
    token = gate.csrf_token(session)
    signed_in = {SESSION_COOKIE: gate.session_cookie(session), CSRF_COOKIE: token}

    # Safe methods, machine clients and requests without ambient authority pass.
    assert gate.csrf_refusal("GET", ORIGIN, {}, signed_in) is None
    assert _refusal(gate, {"x-api-key": "anything"}, signed_in) is None
    assert _refusal(gate, {}, {}) is None
    # A signed-in browser must send the session's token, from this origin.
    assert _refusal(gate, {"x-csrf-token": token}, signed_in) is None
    assert _refusal(gate, {"x-csrf-token": token, "origin": ORIGIN}, signed_in) is None
    assert _refusal(gate, {}, signed_in) is not None
    assert _refusal(gate, {"x-csrf-token": token + "x"}, signed_in) is not None
    assert _refusal(gate, {"x-csrf-token": token, "origin": "http://evil.test"}, signed_in)
    assert _refusal(gate, {"x-csrf-token": token, "sec-fetch-site": "cross-site"}, signed_in)
    assert _refusal(gate, {"origin": "null"}, {}) is not None
    # A double-submit pair chosen by someone else does not unlock the session.
    planted = {**signed_in, CSRF_COOKIE: "planted"}
    assert _refusal(gate, {"x-csrf-token": "planted"}, planted) is not None
    # Anonymous forms use the plain double submit.
    assert _refusal(gate, {"x-csrf-token": "abc"}, {CSRF_COOKIE: "abc"}) is None
    assert _refusal(gate, {"x-csrf-token": "abd"}, {CSRF_COOKIE: "abc"}) is not None


def test_status_tokens_are_kept_as_digests() -> None:
    digest = token_digest("tok")

    assert digest != "tok" and len(digest) == 64
    assert digest_matches("tok", digest)
    assert not digest_matches("tok2", digest)
    assert not digest_matches("tok", None)


def test_hash_password_prints_a_settings_entry(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import json

    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret\n"))

    assert main(["hash-password", "ann"]) == 0

    entry = json.loads(capsys.readouterr().out)
    assert list(entry) == ["ann"]
    assert verify_password("s3cret", entry["ann"])


def test_signing_out_ends_a_session_and_an_agent_can_be_signed_out_everywhere() -> None:
    gate = _gate()
    first, second = gate.sign_in("ann", "s3cret"), gate.sign_in("ann", "s3cret")
    assert first is not None and second is not None
    one, two = gate.session_cookie(first), gate.session_cookie(second)
    assert gate.sign_out(one)
    assert gate.read_session(one) is None
    assert gate.read_session(two) == second
    assert not gate.sign_out(one)
    assert gate.sign_out_agent("ann") == 1
    assert gate.read_session(two) is None
    # A well-signed cookie for a session this server never gave out is nobody.
    forged = gate.session_cookie(type(first)("ann", "nonce-never-issued", first.expires))
    assert gate.read_session(forged) is None


def test_the_login_throttle_counts_per_address_and_per_name() -> None:
    from adapters.local.ratelimit import ClientRateLimit, LoginThrottle
    from core.errors import RateLimited

    now = [0.0]

    def limit() -> ClientRateLimit:
        return ClientRateLimit(3, 60, max_clients=100, clock=lambda: now[0])

    throttle = LoginThrottle(limit(), limit())
    for _ in range(3):
        throttle.check_address("198.51.100.1")
    with pytest.raises(RateLimited) as refused:
        throttle.check_address("198.51.100.1")
    assert refused.value.retry_after_s == 60
    throttle.check_address("198.51.100.2")  # another address has its own attempts
    for _ in range(3):
        throttle.check_name("ann")
    with pytest.raises(RateLimited):
        throttle.check_name("ann")  # from any address
    now[0] += 60.0
    throttle.check_name("ann")

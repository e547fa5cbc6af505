"""Who may do what on the local service: agents' passwords and sessions, machine clients' API
key, customers' status tokens, and the cross-site request forgery check.

Agents are a configured list of names with scrypt password hashes (standard library only), so
every correction carries the name of the agent who made it and one agent can be removed without
telling the others a new secret. Machine clients send a shared key in ``X-API-Key``.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import hmac
import json
import secrets
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

SESSION_COOKIE = "te_session"
CSRF_COOKIE = "te_csrf"
CSRF_HEADER = "x-csrf-token"
API_KEY_HEADER = "x-api-key"
STATUS_TOKEN_HEADER = "x-status-token"

# scrypt at n=2**14, r=8, p=1 takes ~16 MiB and tens of milliseconds: OWASP's minimum for scrypt.
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024
_HASH_BYTES = 32
# Sessions held at once; past it the oldest is ended (each costs about 200 bytes).
MAX_LIVE_SESSIONS = 10_000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, n: int = _SCRYPT_N, r: int = _SCRYPT_R) -> str:
    """A salted scrypt hash of ``password``: ``scrypt$n$r$p$salt$hash`` (URL-safe base64)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=_SCRYPT_P,
        maxmem=_SCRYPT_MAXMEM,
        dklen=_HASH_BYTES,
    )
    return f"scrypt${n}${r}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches a hash made by `hash_password`; a malformed hash is no match."""
    try:
        scheme, n, r, p, salt, expected = encoded.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode("utf-8"),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_SCRYPT_MAXMEM,
            dklen=len(_unb64(expected)),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, _unb64(expected))


# Checked when the agent is unknown, so that a wrong name takes as long as a wrong password.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Principal:
    """Who made a request: a signed-in agent, or a machine client with the API key."""

    kind: Literal["agent", "api"]
    name: str


@dataclass(frozen=True)
class Session:
    """A signed-in agent's session, as its cookie carries it."""

    agent: str
    nonce: str
    expires: int


def new_token() -> str:
    """A random, unguessable token (256 bits)."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the store keeps of a customer's status token: its SHA-256, never the token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def digest_matches(token: str, digest: str | None) -> bool:
    """Whether ``token`` is the one whose digest was saved, in constant time."""
    return digest is not None and hmac.compare_digest(token_digest(token), digest)


@runtime_checkable
class SessionStore(Protocol):
    """Where the sessions the service gave out, and nobody ended, are kept by nonce: in this
    process's memory, or in a store that every worker process shares (`SQLiteTicketStore`)."""

    def add_session(self, nonce: str, agent: str, expires: int, now: float, keep: int) -> None:
        """Keep a new session; forget the expired ones and, past ``keep``, the oldest."""
        ...

    def session_of(self, nonce: str) -> tuple[str, int] | None:
        """The agent and expiry of the live session with this nonce, if there is one."""
        ...

    def end_session(self, nonce: str) -> None:
        """Forget one session."""
        ...

    def end_agent_sessions(self, agent: str) -> int:
        """Forget every session of one agent; how many there were."""
        ...


class MemorySessions:
    """A `SessionStore` in this process's memory, thread-safe: right for one process."""

    def __init__(self) -> None:
        self._live: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()

    def add_session(self, nonce: str, agent: str, expires: int, now: float, keep: int) -> None:
        with self._lock:
            for old in [n for n, (_, e) in self._live.items() if e < now]:
                del self._live[old]
            while self._live and len(self._live) >= keep:
                # The oldest session goes first (dicts keep insertion order).
                del self._live[next(iter(self._live))]
            self._live[nonce] = (agent, expires)

    def session_of(self, nonce: str) -> tuple[str, int] | None:
        with self._lock:
            return self._live.get(nonce)

    def end_session(self, nonce: str) -> None:
        with self._lock:
            self._live.pop(nonce, None)

    def end_agent_sessions(self, agent: str) -> int:
        with self._lock:
            ended = [n for n, (a, _) in self._live.items() if a == agent]
            for nonce in ended:
                del self._live[nonce]
        return len(ended)


class Gate:
    """Signs and reads sessions, checks passwords, API keys and CSRF tokens."""

    def __init__(
        self,
        agents: Mapping[str, str],
        api_key: str | None,
        secret: bytes,
        max_age_s: int,
        sessions: SessionStore | None = None,
    ) -> None:
        self.agents = dict(agents)
        self.api_key = api_key
        self.max_age_s = max_age_s
        self._secret = secret
        # The sessions this server gave out and that nobody ended: a cookie is good only while
        # its session is kept there, so signing out ends it at once, everywhere (a copied cookie
        # too, and in every worker process when the store is shared).
        self._sessions: SessionStore = MemorySessions() if sessions is None else sessions

    def _sign(self, purpose: str, payload: str) -> str:
        mac = hmac.new(self._secret, f"{purpose}|{payload}".encode(), hashlib.sha256)
        return _b64(mac.digest())

    def sign_in(self, name: str, password: str) -> Session | None:
        """A new session for the agent when the password matches, else None."""
        encoded = self.agents.get(name)
        if not verify_password(password, encoded or _DUMMY_HASH) or encoded is None:
            return None
        now = time.time()
        session = Session(name, new_token(), int(now) + self.max_age_s)
        self._sessions.add_session(
            session.nonce, session.agent, session.expires, now, MAX_LIVE_SESSIONS
        )
        return session

    def sign_out(self, cookie: str | None) -> bool:
        """End the session a cookie carries, here and for every copy of the cookie."""
        session = self.read_session(cookie)
        if session is None:
            return False
        self._sessions.end_session(session.nonce)
        return True

    def sign_out_agent(self, name: str) -> int:
        """End every session of one agent (an administrator disabling them); how many."""
        return self._sessions.end_agent_sessions(name)

    def session_cookie(self, session: Session) -> str:
        """The session as a signed cookie value."""
        payload = _b64(
            json.dumps({"a": session.agent, "n": session.nonce, "e": session.expires}).encode()
        )
        return f"{payload}.{self._sign('session', payload)}"

    def read_session(self, cookie: str | None) -> Session | None:
        """The session a cookie carries, if its signature holds, it has not expired and its
        agent is still configured."""
        if not cookie or "." not in cookie:
            return None
        payload, signature = cookie.rsplit(".", 1)
        if not hmac.compare_digest(signature, self._sign("session", payload)):
            return None
        try:
            data = json.loads(_unb64(payload))
            session = Session(str(data["a"]), str(data["n"]), int(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires < time.time() or session.agent not in self.agents:
            return None
        if self._sessions.session_of(session.nonce) != (session.agent, session.expires):
            return None
        return session

    def csrf_token(self, session: Session) -> str:
        """The CSRF token bound to a session (the signed double-submit pattern)."""
        return self._sign("csrf", session.nonce)

    def api_key_matches(self, key: str) -> bool:
        """Whether ``key`` is the configured API key (never, when none is configured)."""
        return self.api_key is not None and hmac.compare_digest(
            key.encode("utf-8"), self.api_key.encode("utf-8")
        )

    def principal(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> Principal | None:
        """Who the request comes from: a valid API key, else a valid session, else nobody.

        A request that sends an API key is judged by it alone: a wrong key is nobody, even with
        a session cookie.
        """
        key = headers.get(API_KEY_HEADER)
        if key is not None:
            return Principal("api", "api") if self.api_key_matches(key) else None
        session = self.read_session(cookies.get(SESSION_COOKIE))
        return None if session is None else Principal("agent", session.agent)

    def csrf_refusal(
        self, method: str, origin: str, headers: Mapping[str, str], cookies: Mapping[str, str]
    ) -> str | None:
        """Why a state-changing request must be refused as possibly forged, or None.

        - A request with ``X-API-Key`` is a machine client's: browsers cannot add that header
          to a cross-site request without a CORS preflight, which this service never grants.
        - A browser's request from another origin (``Origin``, ``Sec-Fetch-Site``) is refused.
        - A request carrying this service's cookies must echo the CSRF cookie in the
          ``X-CSRF-Token`` header; with a session, the token must be the one bound to it.
        - A request with none of these carries no ambient authority (an anonymous machine
          client) and is left to the endpoint's own checks.
        """
        if method in ("GET", "HEAD", "OPTIONS"):
            return None
        if API_KEY_HEADER in headers:
            return None
        sent_origin = headers.get("origin")
        if sent_origin is not None and sent_origin != origin:
            return f"cross-origin request from {sent_origin} refused"
        if headers.get("sec-fetch-site") in ("cross-site", "same-site"):
            return "cross-site request refused"
        if SESSION_COOKIE not in cookies and CSRF_COOKIE not in cookies:
            return None
        sent = headers.get(CSRF_HEADER, "")
        cookie = cookies.get(CSRF_COOKIE, "")
        if not sent or not cookie or not hmac.compare_digest(sent, cookie):
            return "missing or wrong CSRF token"
        session = self.read_session(cookies.get(SESSION_COOKIE))
        if session is not None and not hmac.compare_digest(sent, self.csrf_token(session)):
            return "the CSRF token does not belong to this session"
        return None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m adapters.local.auth hash-password [NAME]``: print a hash for the settings."""
    parser = argparse.ArgumentParser(prog="python -m adapters.local.auth")
    sub = parser.add_subparsers(dest="command", required=True)
    hashing = sub.add_parser("hash-password", help="hash a password read from the terminal")
    hashing.add_argument("name", nargs="?", help="print a TICKET_ENRICH_AGENTS entry for NAME")
    args = parser.parse_args(argv)
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            sys.stderr.write("the passwords differ\n")
            return 1
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        sys.stderr.write("an empty password is not allowed\n")
        return 1
    encoded = hash_password(password)
    out = json.dumps({args.name: encoded}) if args.name else encoded
    sys.stdout.write(out + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

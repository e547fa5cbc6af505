"""The two faces of the local service: the customer's ticket form and the agents' dashboard.

The pages are static HTML, CSS and plain JavaScript (``static/``) that read and write the JSON
endpoints below; nothing is built, nothing is templated, and ticket text only ever reaches the
page through ``textContent``. The endpoints translate: parse, call the core or a port, map back.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at runtime.

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from adapters.local.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    STATUS_TOKEN_HEADER,
    Gate,
    Principal,
    digest_matches,
    new_token,
    token_digest,
)
from adapters.local.body import read_body
from adapters.local.ratelimit import ClientRateLimit, LoginThrottle
from core.enricher import Enricher
from core.errors import FieldProblem, InvalidTicket, TicketNotFound
from core.intake import check_idempotency_key, submit_ticket
from core.ports import (
    FeedbackStore,
    Outbox,
    StatusLinks,
    StoredTicket,
    TicketChanges,
    TicketQuery,
    TicketStore,
)
from core.schema import Limits, decode_json, parse_ticket_json
from core.settings import Settings

STATIC_DIR = Path(__file__).parent / "static"
REPORT_DIR = "report"

# Ticket text never goes through innerHTML, and this policy stops anything that slipped
# through from running: no inline script, no script from elsewhere, no framing.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
# Most pressing first; labels the model knows but this list does not come after, in model order.
_SEVERITY = (
    "blocker",
    "urgent",
    "critical",
    "highest",
    "high",
    "major",
    "medium",
    "normal",
    "minor",
    "low",
    "lowest",
    "trivial",
)
_QUEUE_SIZE_MAX = 200
_CHANGES_BATCH = 200
_HEARTBEAT_S = 15.0
# A stream ends after this long and the browser reconnects with Last-Event-ID, missing nothing:
# it re-checks the session, and a server shutting down never waits longer than this for it.
_STREAM_MAX_S = 25.0


class PagesStore(TicketStore, FeedbackStore, TicketChanges, StatusLinks, Protocol):
    """What the pages need of a store: tickets, corrections, a change feed and status links."""


class NotAllowed(Exception):
    """A request without the right to what it asks; mapped to 401 or 403."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        super().__init__(message)


def priority_order(labels: list[str]) -> tuple[str, ...]:
    """The model's priority labels, most pressing first."""
    known = [label for label in labels if label.lower() in _SEVERITY]
    known.sort(key=lambda label: _SEVERITY.index(label.lower()))
    return (*known, *(label for label in labels if label.lower() not in _SEVERITY))


def page(name: str) -> FileResponse:
    """One of the static HTML pages, with the headers every page gets."""
    return FileResponse(STATIC_DIR / name, media_type="text/html", headers=_PAGE_HEADERS)


def _target_labels(enricher: Enricher) -> dict[str, list[str]]:
    targets = enricher.metadata.get("targets") or {}
    labels = {name: list(spec.get("labels", [])) for name, spec in targets.items()}
    labels.setdefault("priority", list(enricher.metadata.get("labels", [])))
    return labels


def _customer_view(stored: StoredTicket, status: str) -> dict[str, Any]:
    ticket = stored.ticket
    return {
        "id": stored.id,
        "received_at": stored.received_at,
        "subject": ticket.get("subject", ""),
        "description": ticket.get("description", ""),
        "status": status,
    }


def add_pages(
    app: FastAPI,
    enricher: Enricher,
    store: PagesStore,
    settings: Settings,
    gate: Gate,
    *,
    outbox: Outbox | None,
    principal: Any,
    rate_limit: ClientRateLimit | None = None,
    login_throttle: LoginThrottle | None = None,
) -> None:
    """Add the customer page, the agent dashboard, the model page and their endpoints.

    ``principal`` is the dependency that names the agent or machine client of a request and
    refuses anybody else. ``rate_limit``, when given, limits customer submissions per client
    address (`RateLimited` when over it); ``login_throttle`` (by default the settings') limits
    sign-in attempts per address and per agent name.
    """
    if login_throttle is None:
        login_throttle = LoginThrottle.from_settings(settings)

    def secure(request: Request) -> bool:
        # Over HTTPS, or behind a trusted proxy that says so (uvicorn then rewrites the scheme
        # from X-Forwarded-Proto), a cookie must never travel in clear.
        return settings.cookie_secure or request.url.scheme == "https"

    limits: Limits = settings.limits

    # The labels, their order and the report are the served model's, read per request: a
    # promotion swaps the model in place (adapters/local/retrain_admin.py), its labels with it.
    def order() -> tuple[str, ...]:
        return priority_order(_target_labels(enricher)["priority"])

    def report_dir() -> Path:
        return enricher.artifact.path / REPORT_DIR

    Reader = Annotated[Principal, Depends(principal)]

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    def with_csrf_cookie(response: Response, request: Request) -> Response:
        # The double-submit cookie for anonymous forms (the customer's, the sign-in); a signed-in
        # agent's is the one bound to the session, set at sign-in and restored here if lost.
        if CSRF_COOKIE not in request.cookies:
            found = gate.read_session(request.cookies.get(SESSION_COOKIE))
            response.set_cookie(
                CSRF_COOKIE,
                new_token() if found is None else gate.csrf_token(found),
                samesite="strict",
                secure=secure(request),
                httponly=False,
                path="/",
            )
        return response

    # --- the customer's side -------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def customer_page(request: Request) -> Response:
        return with_csrf_cookie(page("customer.html"), request)

    @app.get("/status/{ticket_id}", include_in_schema=False)
    def status_page(request: Request, ticket_id: str) -> Response:
        return with_csrf_cookie(page("status.html"), request)

    @app.get("/customer/form", summary="What the customer form asks and its limits")
    def customer_form() -> dict[str, Any]:
        """The custom fields the model was trained with and the limits the server enforces."""
        return {
            "custom_fields": list(enricher.custom_fields),
            "limits": {
                "subject_bytes": limits.subject_bytes,
                "description_bytes": limits.description_bytes,
                "ticket_bytes": limits.ticket_bytes,
                "email_chars": 254,
                "name_chars": 256,
            },
        }

    def delivery_status(ticket_id: str) -> str | None:
        if outbox is None:
            return None
        delivery = outbox.delivery(ticket_id)
        return None if delivery is None else delivery.status

    def customer_status(ticket_id: str) -> str:
        # Customers learn where their ticket is, not how the model judged it.
        return "with_support" if delivery_status(ticket_id) == "delivered" else "received"

    def take_in_from_customer(body: bytes, key: str | None) -> dict[str, Any]:
        ticket = parse_ticket_json(body, limits)
        if ticket.external_id is not None or ticket.channel is not None:
            # An external id would let a customer reach the stored ticket that carries it.
            field = "external_id" if ticket.external_id is not None else "channel"
            raise InvalidTicket([FieldProblem(field, "is not accepted from the customer form")])
        stored, _ = submit_ticket(
            ticket.model_copy(update={"channel": "web"}),
            enricher,
            store,
            outbox=outbox,
            idempotency_key=key,
        )
        # A replay by idempotency key gets a fresh status link and the earlier one stops
        # working: only the digest of a token is kept, and the client that retried is the one
        # that never saw the first answer.
        token = new_token()
        store.save_status_digest(stored.id, token_digest(token))
        view = _customer_view(stored, customer_status(stored.id))
        # The token travels in the fragment, which browsers never send to a server or in a
        # Referer; the status page reads it and sends it in a header.
        return {**view, "status_url": f"/status/{stored.id}#{token}", "status_token": token}

    @app.post(
        "/customer/tickets",
        status_code=201,
        summary="Submit a ticket from the customer form",
        responses={
            400: {"description": "The body is not UTF-8 JSON."},
            413: {"description": "The ticket or one of its fields is too large."},
            422: {"description": "The ticket is not valid; `problems` says why."},
            429: {"description": "Too many tickets from this address; see `Retry-After`."},
        },
    )
    async def customer_submit(request: Request) -> JSONResponse:
        """Enrich and store a customer's ticket; answer with its id and a private status link."""
        if rate_limit is not None:
            # Before the body is read: a refused flood costs neither parsing nor enrichment.
            rate_limit.check(
                request.client.host if request.client is not None else None,
                request.headers.getlist("x-forwarded-for"),
            )
        header = request.headers.get("idempotency-key")
        key = None if header is None else f"customer\n{check_idempotency_key(header)}"
        body = await read_body(request, limits.ticket_bytes)
        answer = await run_in_threadpool(take_in_from_customer, body, key)
        return JSONResponse(answer, status_code=201)

    @app.get(
        "/customer/tickets/{ticket_id}",
        summary="A customer's own ticket, with the token of its status link",
        responses={404: {"description": "No ticket has this id and token."}},
    )
    def customer_ticket(request: Request, ticket_id: str) -> dict[str, Any]:
        """What the customer may see of their ticket; any other id or token is not found."""
        token = request.headers.get(STATUS_TOKEN_HEADER, "")
        if not token or not digest_matches(token, store.status_digest(ticket_id)):
            raise TicketNotFound(ticket_id)
        return _customer_view(store.get(ticket_id), customer_status(ticket_id))

    # --- the agents' side ----------------------------------------------------------------

    @app.get("/agent", include_in_schema=False)
    def agent_page(request: Request) -> Response:
        return with_csrf_cookie(page("agent.html"), request)

    @app.get("/agent/model", include_in_schema=False)
    def model_page(request: Request) -> Response:
        return with_csrf_cookie(page("model.html"), request)

    @app.get("/agent/session", summary="The signed-in agent")
    def session(request: Request) -> dict[str, Any]:
        """The agent this browser is signed in as; 401 when none."""
        found = gate.read_session(request.cookies.get(SESSION_COOKIE))
        if found is None:
            raise NotAllowed(401, "not_signed_in", "sign in as an agent")
        return {"agent": found.agent, "expires": found.expires}

    @app.post("/agent/login", summary="Sign an agent in")
    async def login(request: Request) -> JSONResponse:
        """Check the name and password; set the session cookie and its CSRF cookie."""
        if login_throttle is not None:
            login_throttle.check_address(
                request.client.host if request.client is not None else None,
                request.headers.getlist("x-forwarded-for"),
            )
        try:
            data = decode_json(await request.body(), limits, max_bytes=limits.form_bytes)
            name, password = str(data["name"]), str(data["password"])
        except (KeyError, TypeError):
            raise InvalidTicket(
                [FieldProblem("body", "must be JSON with a name and a password")]
            ) from None
        if login_throttle is not None:
            login_throttle.check_name(name)
        found = await run_in_threadpool(gate.sign_in, name, password)
        if found is None:
            raise NotAllowed(401, "sign_in_failed", "unknown agent or wrong password")
        response = JSONResponse({"agent": found.agent, "expires": found.expires})
        max_age = max(0, found.expires - int(time.time()))
        for name, value, httponly in (
            (SESSION_COOKIE, gate.session_cookie(found), True),
            (CSRF_COOKIE, gate.csrf_token(found), False),
        ):
            response.set_cookie(
                name,
                value,
                max_age=max_age,
                httponly=httponly,
                samesite="strict",
                secure=secure(request),
                path="/",
            )
        return response

    @app.post("/agent/logout", summary="Sign the agent out", status_code=204)
    def logout(request: Request) -> Response:
        """End the session on the server (every copy of its cookie stops working at once) and
        forget the cookies in this browser."""
        gate.sign_out(request.cookies.get(SESSION_COOKIE))
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/")
        response.delete_cookie(CSRF_COOKIE, path="/")
        return response

    @app.get("/agent/config", summary="Labels, filters and settings the dashboard shows")
    def agent_config(who: Reader) -> dict[str, Any]:
        """The trained targets and their labels, the priority order and the agreement window."""
        return {
            "agent": who.name,
            "targets": _target_labels(enricher),
            "priority_order": list(order()),
            "bands": ["high", "medium", "low"],
            "delivery": outbox is not None,
            "delivery_statuses": ["none", "pending", "retrying", "delivered", "dead"],
            "agreement_window": settings.agreement_window,
            "similar_url": settings.similar_url_template,
            "model": {"name": enricher.model_name, "version": enricher.model_version},
        }

    def queue_item(stored: StoredTicket) -> dict[str, Any]:
        item = stored.as_dict()
        if outbox is not None:
            delivery = outbox.delivery(stored.id)
            item["delivery"] = None if delivery is None else delivery.as_dict()
        item["corrections"] = [c.as_dict() for c in store.corrections(stored.id)]
        return item

    @app.get("/agent/queue", summary="The work queue: by predicted priority, then oldest first")
    def queue(
        who: Reader,
        priority: Annotated[str | None, Query()] = None,
        band: Annotated[Literal["high", "medium", "low"] | None, Query()] = None,
        needs_review: Annotated[bool | None, Query()] = None,
        language: Annotated[str | None, Query(max_length=16)] = None,
        delivery_status: Annotated[
            Literal["none", "pending", "retrying", "delivered", "dead"] | None, Query()
        ] = None,
        limit: Annotated[int, Query(ge=1, le=_QUEUE_SIZE_MAX)] = 100,
    ) -> dict[str, Any]:
        """Tickets matching the filters with their delivery and corrections, and agreement."""
        page_ = store.list(
            TicketQuery(
                priority=priority or None,
                needs_review=needs_review,
                limit=limit,
                band=band,
                language=language or None,
                delivery_status=delivery_status,
                priority_order=order(),
            )
        )
        return {
            "items": [queue_item(item) for item in page_.items],
            "total": page_.total,
            "agreement": store.agreement("priority", settings.agreement_window).as_dict(),
            "last_change": store.last_change(),
            # The dashboard reloads its labels when this is no longer the model it started with.
            "model": {"name": enricher.model_name, "version": enricher.model_version},
        }

    @app.get("/agent/tickets/{ticket_id}", summary="One ticket with everything the dashboard shows")
    def agent_ticket(who: Reader, ticket_id: str) -> dict[str, Any]:
        """The stored ticket, its delivery and its corrections."""
        return queue_item(store.get(ticket_id))

    @app.get("/agent/events", summary="Server-sent events: each change to a stored ticket")
    async def events(who: Reader, request: Request) -> StreamingResponse:
        """``change`` events (id: the change's sequence number; data: ticket id and kind).

        A reconnecting browser sends ``Last-Event-ID`` and receives what it missed.
        """
        last_id = request.headers.get("last-event-id", "")
        # A change's sequence number: ASCII digits, far fewer than 19 (SQLite's integers).
        resume = last_id.isascii() and last_id.isdigit() and len(last_id) <= 18
        start = int(last_id) if resume else await run_in_threadpool(store.last_change)

        async def stream() -> AsyncIterator[str]:
            seq = start
            began = quiet_since = time.monotonic()
            yield f"retry: 1000\nid: {seq}\nevent: ready\ndata: {{}}\n\n"
            while time.monotonic() - began < _STREAM_MAX_S:
                if await request.is_disconnected():
                    return
                changes = await run_in_threadpool(store.changes_since, seq, _CHANGES_BATCH)
                for change in changes:
                    seq = change.seq
                    data = json.dumps({"ticket_id": change.ticket_id, "kind": change.kind})
                    yield f"id: {seq}\nevent: change\ndata: {data}\n\n"
                now = time.monotonic()
                if changes:
                    quiet_since = now
                elif now - quiet_since > _HEARTBEAT_S:
                    quiet_since = now
                    yield ": still here\n\n"
                await asyncio.sleep(settings.events_poll_interval_s)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    # --- the model -----------------------------------------------------------------------

    @app.get("/model/report", summary="The served model's evaluation report (metrics.json)")
    def model_report() -> Response:
        """The evaluation report training wrote next to the artifact, as JSON."""
        path = report_dir() / "metrics.json"
        if not path.is_file():
            raise NotAllowed(404, "report_not_found", "this artifact has no evaluation report")
        return FileResponse(path, media_type="application/json")

    @app.get("/model/report/{name}", summary="A file of the evaluation report")
    def model_report_file(name: Literal["report.md", "confusion_matrix.png"]) -> Response:
        """The report as Markdown, or its confusion-matrix image."""
        path = report_dir() / name
        if not path.is_file():
            raise NotAllowed(404, "report_not_found", f"this artifact has no {name}")
        media = "image/png" if name.endswith(".png") else "text/markdown; charset=utf-8"
        return FileResponse(path, media_type=media)


def now_iso() -> str:
    """The current time as the store writes it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")

"""The local HTTP service: raw JSON in, `core.intake.submit_ticket`, stored ticket out."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at runtime,
# and the page-size bound in them is a local of `create_app` that a string could not resolve.

import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from fastapi import Depends, FastAPI, Header, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.local.auth import Gate, Principal, SessionStore
from adapters.local.body import read_body, too_large
from adapters.local.observability import add_observability
from adapters.local.pages import NotAllowed, PagesStore, add_pages, now_iso
from adapters.local.ratelimit import ClientRateLimit, LoginThrottle, TokenBuckets
from adapters.local.retrain_admin import UPLOAD_PATH, add_retrain_admin
from adapters.local.rules_admin import add_rules_admin
from core.delivery import requeue_dead, run_delivery_worker
from core.enricher import Enricher
from core.errors import (
    DeliveryNotDead,
    DeliveryNotFound,
    FieldProblem,
    InvalidTicket,
    RateLimited,
    StoreError,
    TicketEnrichError,
    TicketNotFound,
    error_body,
    refusal,
)
from core.intake import check_idempotency_key, submit_ticket
from core.logs import JsonFormatter
from core.ports import (
    Correction,
    FeedbackStore,
    HelpdeskClient,
    Outbox,
    StatusLinks,
    StoredTicket,
    TicketChanges,
    TicketQuery,
    TicketStore,
)
from core.schema import Limits, Ticket, decode_json, parse_ticket_json
from core.settings import Settings

_log = logging.getLogger(__name__)

_DEFAULT_PAGE_SIZE = 50
_STORE_RETRY_AFTER_SECONDS = "5"
_WORKER_STOP_SECONDS = 30.0
# No ticket has this id (ids are UUIDs): looking it up proves the store answers, in one probe.
_READINESS_PROBE_ID = "readiness-probe"


def _install_json_logging() -> None:
    # Respect logging that the process (or pytest) already configured; otherwise the service
    # would log nothing at INFO, because the root logger defaults to WARNING with no handler.
    # On the package's logger, so that the admin routes and the worker supervisor log too.
    service = logging.getLogger("adapters.local")
    if service.hasHandlers():
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    service.addHandler(handler)
    service.setLevel(logging.INFO)


class ProblemBody(BaseModel):
    """One thing wrong with one field of a request."""

    field: str
    message: str


class ErrorDetail(BaseModel):
    """What went wrong: a stable code, a sentence, and the fields at fault."""

    code: str
    message: str
    problems: list[ProblemBody]


class ErrorBody(BaseModel):
    """Every error response of the service has this shape."""

    error: ErrorDetail


class _TicketJSONResponse(JSONResponse):
    """A JSONResponse encoded by orjson: the same JSON (a float may be written another way, as
    ``0.00001`` for ``1e-05``, the same number) several times faster, for the stored tickets
    the ticket routes answer with (some 3 kB each). Content orjson refuses (an integer beyond 64
    bits, a key that is not a string) is encoded as JSONResponse does. orjson writes NaN as
    null where JSONResponse refuses it: a stored ticket has none, its store refuses them."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except orjson.JSONEncodeError:
            return super().render(content)


def _error(
    status: int,
    code: str,
    message: str,
    problems: Sequence[FieldProblem] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(code, message, problems), status_code=status, headers=headers)


def _problem_dicts(exc: InvalidTicket) -> list[dict[str, str]]:
    return [problem.as_dict() for problem in exc.problems]


def _ticket_request_body() -> tuple[dict[str, Any], dict[str, Any]]:
    """The OpenAPI requestBody for a raw-read ticket, and the component schemas it refers to."""
    schema = Ticket.model_json_schema(ref_template="#/components/schemas/{model}")
    components: dict[str, Any] = schema.pop("$defs", {})
    components["Ticket"] = schema
    request_body = {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Ticket"}}},
    }
    return request_body, components


class FeedbackBody(BaseModel):
    """An agent's label for one trained target of a ticket."""

    model_config = {"extra": "forbid"}

    label: Annotated[str, Field(max_length=128)]
    target: Annotated[str, Field(max_length=128)] = "priority"
    agent: Annotated[str, Field(max_length=128)] | None = None


def _direct_route(handler: Callable[[Request], Coroutine[Any, Any, Response]]) -> type[APIRoute]:
    """A route class whose requests go straight to ``handler``: FastAPI still documents the
    route from its endpoint's declared parameters (the OpenAPI document does not change), but
    does not resolve them per request. For the hot `POST /tickets`, where that resolution (a
    dependency, a security scheme and a header, each validated) cost more CPU than the sign-in
    check and the body read it delivers; ``handler`` reads them itself, and its exceptions meet
    the app's exception handlers as the endpoint's would."""

    class DirectRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            return handler

    return DirectRoute


# Routes that read their body themselves: a whole ticket, within the ticket limit, with
# `core.schema`; an uploaded export within the upload's limit (adapters/local/retrain_admin.py).
TICKET_ROUTES = frozenset(
    {("POST", "/tickets"), ("POST", "/customer/tickets"), ("POST", UPLOAD_PATH)}
)

# The admin's rules document, within `Limits.rules_bytes` (adapters/local/rules_admin.py).
RULES_ROUTE = ("PUT", "/rules")


class BodyGuard:
    """Every other request body is read here first, within `Limits.form_bytes` (a rules
    document within `Limits.rules_bytes`), and a JSON one is
    decoded with the core's limits (nesting, number size, UTF-8, lone surrogates), so no route
    sees a body that could exhaust memory or the stack: an oversized body is 413, a hostile one
    400, before any endpoint runs."""

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) in TICKET_ROUTES:
            await self.app(scope, receive, send)
            return
        rules = (scope["method"], scope["path"]) == RULES_ROUTE
        limit = self.limits.rules_bytes if rules else self.limits.form_bytes
        what = "rules" if rules else "body"
        request = Request(scope)
        declared = request.headers.get("content-length", "")
        body = bytearray()
        try:
            if declared.isascii() and declared.isdigit() and int(declared) > limit:
                raise too_large(limit, what)
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body += message.get("body", b"")
                if len(body) > limit:
                    raise too_large(limit, what)
                more = message.get("more_body", False)
            kind = request.headers.get("content-type", "")
            if body and ("json" in kind or not kind):
                decode_json(bytes(body), self.limits, max_bytes=limit)
        except InvalidTicket as exc:
            status, code = refusal(exc)
            _log.info("request refused", extra={"code": code, "path": scope["path"]})
            await _error(status, code, str(exc), exc.problems)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)


# Never refused for load: liveness must answer while the service is busy, a scrape shows the
# overload, and a live queue's stream stays open for many seconds by design.
_ADMITTED_ALWAYS = frozenset({"/healthz", "/metrics", "/agent/events"})
_OVERLOAD_RETRY_AFTER_SECONDS = 1
# An overload refuses many requests a second: it is logged at most this often, with a count.
_OVERLOAD_LOG_EVERY_S = 1.0


class AdmissionLimit:
    """Admits at most ``limit`` requests of this process at once, queued or running; past it
    the answer is 503 with ``Retry-After``, at once, so that a client of an overloaded service
    learns it in a millisecond and retries rather than waiting into a timeout, and the requests
    admitted keep their latency. Each worker process has its own bound (one event loop each)."""

    def __init__(
        self, app: ASGIApp, limit: int, on_refused: Callable[[], None] | None = None
    ) -> None:
        self.app = app
        self.limit = limit
        self.on_refused = on_refused
        self.in_flight = 0
        self.refused = 0
        self._refused_logged = 0
        self._logged_at = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _ADMITTED_ALWAYS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            self.refused += 1
            if self.on_refused is not None:
                self.on_refused()
            now = time.monotonic()
            if now - self._logged_at >= _OVERLOAD_LOG_EVERY_S:
                _log.warning(
                    "overloaded: requests refused",
                    extra={
                        "code": "overloaded",
                        "in_flight": self.in_flight,
                        "refused": self.refused - self._refused_logged,
                    },
                )
                self._logged_at, self._refused_logged = now, self.refused
            await _error(
                503,
                "overloaded",
                f"the service is holding {self.limit} requests already; retry in "
                f"{_OVERLOAD_RETRY_AFTER_SECONDS} s",
                headers={"Retry-After": str(_OVERLOAD_RETRY_AFTER_SECONDS)},
            )(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


class CsrfGuard:
    """Refuses state-changing requests that may be forged by another site (see
    `adapters.local.auth.Gate.csrf_refusal`), before any endpoint runs."""

    def __init__(self, app: ASGIApp, gate: Gate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            # The scheme as `request.url` has it, without parsing the whole URL per request.
            origin = f"{scope.get('scheme', 'http')}://{request.headers.get('host', '')}"
            refusal = self.gate.csrf_refusal(
                request.method, origin, request.headers, request.cookies
            )
            if refusal is not None:
                _log.info("request refused", extra={"code": "csrf", "reason": refusal})
                await _error(403, "csrf_refused", refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_gate(settings: Settings, sessions: SessionStore | None = None) -> Gate:
    """The sign-in and CSRF checks the settings describe, keeping sessions in ``sessions``
    (by default this process's memory)."""
    secret = (
        settings.session_secret.get_secret_value().encode("utf-8")
        if settings.session_secret is not None
        else secrets.token_bytes(32)
    )
    api_key = settings.api_key.get_secret_value() if settings.api_key is not None else None
    return Gate(settings.agents, api_key, secret, settings.session_max_age_s, sessions)


def server_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn options that make the settings' trusted proxies the only ones believed.

    Uvicorn itself rewrites the client address (and scheme) from ``X-Forwarded-For`` (and
    ``-Proto``) when the peer is one of its ``forwarded_allow_ips``, by default 127.0.0.1 and
    ::1, before the app sees the request. Given these options it does so only for
    ``TICKET_ENRICH_TRUSTED_PROXIES`` (the same walk from the right the rate limit does, so
    doing both is harmless), and not at all when none are set.
    """
    trusted = [str(network) for network in settings.trusted_proxies]
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted}


_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body is not UTF-8 JSON."},
    413: {"model": ErrorBody, "description": "The ticket or one of its fields is too large."},
    422: {"model": ErrorBody, "description": "The ticket is not valid; `problems` says why."},
    503: {
        "model": ErrorBody,
        "description": "The store is unavailable, or the service holds as many requests as it"
        " admits (`overloaded`); retry after `Retry-After`.",
    },
}


def create_app(
    enricher: Enricher,
    store: TicketStore,
    settings: Settings,
    *,
    outbox: Outbox | None = None,
    helpdesk: HelpdeskClient | None = None,
    customer_rate_limit: ClientRateLimit | None = None,
    metrics_dir: Path | None = None,
) -> FastAPI:
    """Build the local service around an enricher and a store; nothing happens at import.

    With an ``outbox`` (the store's own, so a ticket and its delivery commit together) every new
    ticket is enqueued for the helpdesk and the `/outbox` endpoints exist; with a ``helpdesk``
    too, a worker thread delivers while the app runs (its lifespan starts and stops it).

    Reading tickets, the outbox and corrections takes a signed-in agent or the API key
    (``X-API-Key``); state-changing requests from browsers must pass the CSRF check. When the
    store also keeps corrections, a change feed and status links (`PagesStore`, as SQLite
    does), the customer page, the agent dashboard and ``POST /tickets/{id}/feedback`` exist.

    Customer submissions are limited per client address as the settings say, or by
    ``customer_rate_limit`` when given (tests pass one with their own clock); the JSON API of
    agents and machine clients is not. When the store can keep them (SQLite does), agents'
    sessions and the sign-in and customer rate limits live there, so that every worker process
    of the service sees the same ones.

    Each process admits at most ``settings.max_in_flight`` requests at once; past it the answer
    is 503 with ``Retry-After`` before anything else runs. With ``metrics_dir`` (several worker
    processes) the metrics are counted in prometheus_client's multiprocess files there, and
    `/metrics` adds up every worker's.
    """
    if helpdesk is not None and outbox is None:
        raise ValueError("a helpdesk client needs an outbox to deliver from")
    _install_json_logging()
    limits = settings.limits
    page_size_max = settings.page_size_max

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if helpdesk is None or outbox is None:
            yield
            return
        stop = threading.Event()
        worker = threading.Thread(
            target=run_delivery_worker,
            args=(outbox, helpdesk, stop),
            kwargs={
                "poll_interval_s": settings.delivery_poll_interval_s,
                "policy": settings.retry_policy,
                "limit": settings.delivery_batch_size,
            },
            name="delivery-worker",
            daemon=True,
        )
        worker.start()
        _log.info("delivery worker started", extra={"helpdesk": helpdesk.name})
        try:
            yield
        finally:
            stop.set()
            await run_in_threadpool(worker.join, _WORKER_STOP_SECONDS)

    app = FastAPI(
        title="ticket-enrich",
        description="Enriches support tickets with a priority, its confidence and a review flag.",
        lifespan=lifespan,
    )
    shared_buckets = store if isinstance(store, TokenBuckets) else None
    gate = build_gate(settings, store if isinstance(store, SessionStore) else None)
    app.add_middleware(CsrfGuard, gate=gate)
    # Nothing reads a body before its limits are checked.
    app.add_middleware(BodyGuard, limits=limits)
    # Added last, so it runs first: a request over the bound costs nothing else.
    refusal_counters: list[Callable[[], None]] = []

    def count_refusal() -> None:
        for count in refusal_counters:
            count()

    app.add_middleware(AdmissionLimit, limit=settings.max_in_flight, on_refused=count_refusal)
    if not settings.agents and settings.api_key is None:
        _log.warning(
            "no agents and no API key configured: only the customer page is usable; "
            "set TICKET_ENRICH_AGENTS or TICKET_ENRICH_API_KEY (see docs/pages.md)"
        )

    # Declared for the OpenAPI document (so /docs can send the key); the gate reads the header.
    api_key_header = APIKeyHeader(
        name="X-API-Key",
        auto_error=False,
        description="The service's API key (TICKET_ENRICH_API_KEY), for machine clients.",
    )

    # Async, so that FastAPI calls it on the event loop instead of sending it to the thread
    # pool (a hop per request that costs more than the check: an HMAC or one indexed read).
    async def principal(
        request: Request, _key: Annotated[str | None, Security(api_key_header)]
    ) -> Principal:
        found = gate.principal(request.headers, request.cookies)
        if found is None:
            raise NotAllowed(
                401, "unauthorized", "sign in as an agent or send the API key in X-API-Key"
            )
        return found

    Reader = Annotated[Principal, Depends(principal)]
    request_body, ticket_schemas = _ticket_request_body()

    # FastAPI cannot see the Ticket model (the body is read raw), so its schemas are added to
    # the generated document once, where the requestBody's $ref expects them.
    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        first_time = app.openapi_schema is None
        document = generate_openapi()
        if first_time:
            components = document.setdefault("components", {}).setdefault("schemas", {})
            components.update(ticket_schemas)
        return document

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented extension point

    def take_in(body: bytes, key: str | None) -> tuple[StoredTicket, bool]:
        ticket = parse_ticket_json(body, limits)
        return submit_ticket(ticket, enricher, store, outbox=outbox, idempotency_key=key)

    async def answer_ticket(
        request: Request, who: Principal, idempotency_key: str | None
    ) -> JSONResponse:
        key = None
        if idempotency_key is not None:
            # Each client has its own keys, as Stripe scopes them per account.
            key = f"{who.kind}:{who.name}\n{check_idempotency_key(idempotency_key)}"
        body = await read_body(request, limits.ticket_bytes)
        # On the event loop, not in the thread pool: parsing and the model are CPU work that the
        # GIL serialises anyway, and the pool's hand-offs (and its threads taking the GIL from
        # the loop in 5 ms turns) cost more than they save. One worker process per core is what
        # runs tickets in parallel; SQLite's commit is a WAL append without fsync.
        stored, created = take_in(body, key)
        replayed = key is not None and not created
        enrichment = stored.enrichment
        _log.info(
            "ticket enriched" if created else "ticket already stored",
            extra={
                "ticket_id": stored.id,
                "external_id": stored.external_id,
                "new": created,
                "priority": enrichment.get("priority", {}).get("label"),
                "confidence": enrichment.get("priority", {}).get("confidence"),
                "needs_review": enrichment.get("needs_review"),
                "model_version": enrichment.get("model", {}).get("version"),
            },
        )
        headers = {"Location": f"/tickets/{stored.id}"}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return _TicketJSONResponse(
            stored.as_dict(), status_code=201 if created or replayed else 200, headers=headers
        )

    # Declares the route's parameters for the OpenAPI document; requests are answered by
    # `create_ticket_directly` (see `_direct_route`), the same way.
    async def create_ticket(
        request: Request,
        who: Reader,
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                description="Makes a retry safe without an `external_id`: the same key with the "
                "same ticket answers the first response again (`Idempotent-Replayed: true`); "
                "with another ticket, 409. Remembered as long as the ticket is stored.",
            ),
        ] = None,
    ) -> JSONResponse:
        """Enrich a ticket; a retry with a known `external_id` returns the stored one (200)."""
        return await answer_ticket(request, who, idempotency_key)

    async def create_ticket_directly(request: Request) -> Response:
        # What FastAPI would resolve for `create_ticket`'s parameters, read directly: the
        # sign-in check (`principal`, which never reads the X-API-Key declared for the document)
        # and the one header.
        who = await principal(request, None)
        return await answer_ticket(request, who, request.headers.get("idempotency-key"))

    app.router.add_api_route(
        "/tickets",
        create_ticket,
        methods=["POST"],
        status_code=201,
        summary="Enrich and store a new ticket",
        openapi_extra={"requestBody": request_body},
        responses={
            200: {"description": "A ticket with this external_id was already stored."},
            **_ERROR_RESPONSES,
        },
        route_class_override=_direct_route(create_ticket_directly),
    )

    @app.get("/tickets", summary="List stored tickets, newest first", responses=_ERROR_RESPONSES)
    def list_tickets(
        who: Reader,
        priority: Annotated[str | None, Query(description="Only this priority label.")] = None,
        needs_review: Annotated[bool | None, Query(description="Only flagged tickets.")] = None,
        limit: Annotated[int, Query(ge=1, le=page_size_max)] = min(
            _DEFAULT_PAGE_SIZE, page_size_max
        ),
        offset: Annotated[int, Query(ge=0, le=limits.offset_max)] = 0,
    ) -> dict[str, Any]:
        """One page of stored tickets with the total that matched the filters."""
        page = store.list(TicketQuery(priority, needs_review, limit, offset))
        return {
            "items": [item.as_dict() for item in page.items],
            "total": page.total,
            "limit": limit,
            "offset": offset,
        }

    @app.get(
        "/tickets/{ticket_id}",
        summary="One stored ticket",
        responses={404: {"model": ErrorBody, "description": "No ticket has this id."}},
    )
    async def get_ticket(who: Reader, ticket_id: str) -> dict[str, Any]:
        """The stored ticket with its enrichment, and its delivery when delivery is on."""
        # Two reads by primary key: quicker on the event loop than a hop to the thread pool.
        found = store.get(ticket_id).as_dict()
        if outbox is not None:
            delivery = outbox.delivery(ticket_id)
            found["delivery"] = None if delivery is None else delivery.as_dict()
        return found

    if outbox is not None:
        delivering = outbox

        @app.get("/outbox", summary="Deliveries to the helpdesk, in the order they were enqueued")
        def list_outbox(
            who: Reader,
            status: Annotated[
                Literal["pending", "retrying", "delivered", "dead"] | None,
                Query(description="Only deliveries in this state."),
            ] = None,
            limit: Annotated[int, Query(ge=1, le=page_size_max)] = min(
                _DEFAULT_PAGE_SIZE, page_size_max
            ),
        ) -> dict[str, Any]:
            """Deliveries with their attempts, next attempt, last error and helpdesk ref."""
            items = delivering.deliveries(status, limit)
            return {"items": [item.as_dict() for item in items]}

        @app.post(
            "/outbox/{ticket_id}/retry",
            summary="Requeue a dead delivery",
            responses={
                404: {"model": ErrorBody, "description": "No delivery for this ticket."},
                409: {"model": ErrorBody, "description": "The delivery is not dead."},
            },
        )
        def retry_delivery(who: Reader, ticket_id: str) -> dict[str, Any]:
            """Send a dead delivery again, from its first attempt."""
            return requeue_dead(delivering, ticket_id).as_dict()

    if isinstance(store, FeedbackStore):
        corrections = store

        def target_labels() -> dict[str, list[str]]:
            # Read per request: a promotion swaps the served model (and its labels) in place.
            return {
                name: [str(label) for label in spec.get("labels", [])]
                for name, spec in (enricher.metadata.get("targets") or {}).items()
            }

        @app.post(
            "/tickets/{ticket_id}/feedback",
            status_code=201,
            summary="Correct (or confirm) a ticket's predicted priority or category",
            responses={
                404: {"model": ErrorBody, "description": "No ticket has this id."},
                422: {"model": ErrorBody, "description": "Unknown target or label."},
            },
        )
        def feedback(who: Reader, ticket_id: str, body: FeedbackBody) -> dict[str, Any]:
            """Store the agent's label as a label for the next training run; answer with it and
            the agreement between agents and the model over the last corrected tickets."""
            served = target_labels()
            labels = served.get(body.target)
            if labels is None:
                raise InvalidTicket(
                    [FieldProblem("target", f"is not a trained target: {sorted(served)}")]
                )
            if body.label not in labels:
                raise InvalidTicket(
                    [
                        FieldProblem(
                            "label",
                            f"is not one of {labels}, the labels model "
                            f"{enricher.model_version} predicts",
                        )
                    ]
                )
            if who.kind == "agent" and body.agent not in (None, who.name):
                raise InvalidTicket([FieldProblem("agent", "must be the signed-in agent")])
            stored = store.get(ticket_id)
            enrichment = stored.enrichment
            predicted = (
                enrichment.get("priority")
                if body.target == "priority"
                else enrichment.get("categories", {}).get(body.target)
            ) or {}
            saved = corrections.add_correction(
                Correction(
                    ticket_id=ticket_id,
                    target=body.target,
                    label=body.label,
                    predicted=predicted.get("label"),
                    agent=who.name if who.kind == "agent" else (body.agent or who.name),
                    model_version=enrichment.get("model", {}).get("version"),
                    corrected_at=now_iso(),
                )
            )
            _log.info(
                "ticket corrected",
                extra={"ticket_id": ticket_id, "target": body.target, "agrees": saved.agrees},
            )
            agreement = corrections.agreement(body.target, settings.agreement_window)
            return {**saved.as_dict(), "agreement": agreement.as_dict()}

        @app.get("/tickets/{ticket_id}/feedback", summary="A ticket's corrections")
        def ticket_feedback(who: Reader, ticket_id: str) -> dict[str, Any]:
            """The latest correction of each target of this ticket."""
            store.get(ticket_id)
            return {"items": [c.as_dict() for c in corrections.corrections(ticket_id)]}

        @app.get("/feedback", summary="Corrections: labels for the next training run")
        def list_feedback(
            who: Reader,
            limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
        ) -> dict[str, Any]:
            """The latest correction per ticket and target, newest first, and the agreement of
            each target over the last corrected tickets."""
            return {
                "items": [c.as_dict() for c in corrections.corrections(limit=limit)],
                "agreement": {
                    name: corrections.agreement(name, settings.agreement_window).as_dict()
                    for name in target_labels()
                },
            }

    rate_limit: ClientRateLimit | None = None
    if isinstance(store, TicketChanges) and isinstance(store, StatusLinks):
        pages_store: PagesStore = store  # type: ignore[assignment]
        rate_limit = (
            ClientRateLimit.from_settings(settings, buckets=shared_buckets)
            if customer_rate_limit is None
            else customer_rate_limit
        )
        add_pages(
            app,
            enricher,
            pages_store,
            settings,
            gate,
            outbox=outbox,
            principal=principal,
            rate_limit=rate_limit,
            login_throttle=LoginThrottle.from_settings(settings, buckets=shared_buckets),
        )

    count_overload = add_observability(
        app,
        enricher,
        store,
        settings,
        outbox=outbox,
        reader=principal,
        rate_limit=rate_limit,
        metrics_dir=metrics_dir,
    )
    refusal_counters.append(count_overload)
    add_retrain_admin(app, enricher, store, settings, reader=principal)
    add_rules_admin(app, enricher, settings, reader=principal)

    @app.get("/model", summary="The model being served")
    def model() -> dict[str, Any]:
        """The served artifact's metadata: name, version, metrics and the form fields it reads."""
        return {**enricher.metadata, "custom_fields": list(enricher.custom_fields)}

    def model_info() -> dict[str, str]:
        # Per request: a promotion swaps the served model in place, in every worker.
        return {"name": enricher.model_name, "version": enricher.model_version}

    @app.get("/healthz", summary="Liveness: the process answers with its model")
    def healthz() -> JSONResponse:
        """200 while the process serves; touches nothing else, so it costs the same at any size
        of the store (the readiness check, `/readyz`, asks the store)."""
        return JSONResponse({"status": "ok", "model": model_info()})

    @app.get("/readyz", summary="Readiness: the store answers")
    def readyz() -> JSONResponse:
        """200 when the store answers a lookup by key (one index probe), 503 otherwise."""
        try:
            store.get(_READINESS_PROBE_ID)
        except TicketNotFound:
            pass
        except Exception:
            _log.exception("readiness check: the store does not answer")
            return JSONResponse(
                {"status": "unavailable", "model": model_info(), "store": "error"},
                status_code=503,
                headers={"Retry-After": _STORE_RETRY_AFTER_SECONDS},
            )
        return JSONResponse({"status": "ok", "model": model_info(), "store": "ok"})

    @app.exception_handler(InvalidTicket)
    async def invalid_ticket(request: Request, exc: InvalidTicket) -> JSONResponse:
        status, code = refusal(exc)  # TicketTooLarge, a subclass, lands here too
        _log.info("ticket rejected", extra={"code": code, "problems": _problem_dicts(exc)})
        return _error(status, code, str(exc), exc.problems)

    @app.exception_handler(NotAllowed)
    async def not_allowed(request: Request, exc: NotAllowed) -> JSONResponse:
        return _error(exc.status, exc.code, str(exc))

    @app.exception_handler(RateLimited)
    async def rate_limited(request: Request, exc: RateLimited) -> JSONResponse:
        _log.info(
            "request refused",
            extra={
                "code": "rate_limited",
                "path": request.url.path,
                "retry_after_s": exc.retry_after_s,
            },
        )
        return _error(
            429, "rate_limited", str(exc), headers={"Retry-After": str(exc.retry_after_s)}
        )

    @app.exception_handler(TicketNotFound)
    async def not_found(request: Request, exc: TicketNotFound) -> JSONResponse:
        return _error(404, "ticket_not_found", str(exc))

    @app.exception_handler(DeliveryNotFound)
    async def no_delivery(request: Request, exc: DeliveryNotFound) -> JSONResponse:
        return _error(404, "delivery_not_found", str(exc))

    @app.exception_handler(DeliveryNotDead)
    async def not_dead(request: Request, exc: DeliveryNotDead) -> JSONResponse:
        return _error(409, "delivery_not_dead", str(exc))

    @app.exception_handler(StoreError)
    async def store_error(request: Request, exc: StoreError) -> JSONResponse:
        _log.error("store failed", exc_info=exc)
        return _error(
            503,
            "store_unavailable",
            "the ticket store is unavailable; retry later",
            headers={"Retry-After": _STORE_RETRY_AFTER_SECONDS},
        )

    @app.exception_handler(TicketEnrichError)
    async def other_error(request: Request, exc: TicketEnrichError) -> JSONResponse:
        _log.error("unexpected product error", exc_info=exc)
        return _error(500, "internal_error", "the service failed; this was logged")

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for item in exc.errors():
            # Drop the "query"/"path" prefix: a caller knows `limit` by its name alone.
            loc = [str(part) for part in item.get("loc", ())]
            problems.append(FieldProblem(".".join(loc[1:]) or ".".join(loc), item["msg"]))
        message = "; ".join(f"{p.field}: {p.message}" for p in problems)
        return _error(422, "invalid_request", message, problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = str(exc.detail).lower().replace(" ", "_")
        return _error(exc.status_code, code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        _log.error(
            "unhandled error",
            exc_info=exc,
            extra={"method": request.method, "path": request.url.path},
        )
        # Starlette re-raises after this response and uvicorn then drops the connection; saying
        # so lets a keep-alive client open a new one instead of failing its next request.
        return _error(
            500,
            "internal_error",
            "the service failed; this was logged",
            headers={"Connection": "close"},
        )

    return app

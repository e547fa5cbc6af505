"""The local HTTP service: raw JSON in, `core.intake.submit_ticket`, stored ticket out."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at runtime,
# and the page-size bound in them is a local of `create_app` that a string could not resolve.

import json
import logging
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.delivery import requeue_dead, run_delivery_worker
from core.enricher import Enricher
from core.errors import (
    DeliveryNotDead,
    DeliveryNotFound,
    FieldProblem,
    InvalidTicket,
    StoreError,
    TicketEnrichError,
    TicketNotFound,
    TicketTooLarge,
)
from core.intake import submit_ticket
from core.ports import HelpdeskClient, Outbox, StoredTicket, TicketQuery, TicketStore
from core.schema import Ticket, parse_ticket_json
from core.settings import Settings

_log = logging.getLogger(__name__)

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged.
_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
}
_DEFAULT_PAGE_SIZE = 50
_STORE_RETRY_AFTER_SECONDS = "5"
_WORKER_STOP_SECONDS = 30.0


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and every `extra=` field."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as a single JSON line."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(
            (key, value)
            for key, value in record.__dict__.items()
            if key not in _RECORD_ATTRS and not key.startswith("_")
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _install_json_logging() -> None:
    # Respect logging that the process (or pytest) already configured; otherwise the service
    # would log nothing at INFO, because the root logger defaults to WARNING with no handler.
    if _log.hasHandlers():
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    _log.addHandler(handler)
    _log.setLevel(logging.INFO)


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


def _error(
    status: int,
    code: str,
    message: str,
    problems: Sequence[FieldProblem] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {
        "error": {
            "code": code,
            "message": message,
            "problems": [problem.as_dict() for problem in problems],
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def _problem_dicts(exc: InvalidTicket) -> list[dict[str, str]]:
    return [problem.as_dict() for problem in exc.problems]


def _too_large(limit: int) -> TicketTooLarge:
    return TicketTooLarge([FieldProblem("ticket", f"is over the {limit}-byte limit")])


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    # Read in chunks rather than `await request.body()`: a chunked upload has no Content-Length,
    # and an oversized one must be refused without first being buffered whole.
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    return bytes(body)


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


_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body is not UTF-8 JSON."},
    413: {"model": ErrorBody, "description": "The ticket or one of its fields is too large."},
    422: {"model": ErrorBody, "description": "The ticket is not valid; `problems` says why."},
    503: {"model": ErrorBody, "description": "The store is unavailable; retry later."},
}


def create_app(
    enricher: Enricher,
    store: TicketStore,
    settings: Settings,
    *,
    outbox: Outbox | None = None,
    helpdesk: HelpdeskClient | None = None,
) -> FastAPI:
    """Build the local service around an enricher and a store; nothing happens at import.

    With an ``outbox`` (the store's own, so a ticket and its delivery commit together) every new
    ticket is enqueued for the helpdesk and the `/outbox` endpoints exist; with a ``helpdesk``
    too, a worker thread delivers while the app runs (its lifespan starts and stops it).
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

    def take_in(body: bytes) -> tuple[StoredTicket, bool]:
        ticket = parse_ticket_json(body, limits)
        return submit_ticket(ticket, enricher, store, outbox=outbox)

    @app.post(
        "/tickets",
        status_code=201,
        summary="Enrich and store a new ticket",
        openapi_extra={"requestBody": request_body},
        responses={
            200: {"description": "A ticket with this external_id was already stored."},
            **_ERROR_RESPONSES,
        },
    )
    async def create_ticket(request: Request) -> JSONResponse:
        """Enrich a ticket; a retry with a known `external_id` returns the stored one (200)."""
        body = await _read_body(request, limits.ticket_bytes)
        # Parsing, the model and SQLite all block; keep them off the event loop.
        stored, created = await run_in_threadpool(take_in, body)
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
        return JSONResponse(
            stored.as_dict(),
            status_code=201 if created else 200,
            headers={"Location": f"/tickets/{stored.id}"},
        )

    @app.get("/tickets", summary="List stored tickets, newest first", responses=_ERROR_RESPONSES)
    def list_tickets(
        priority: Annotated[str | None, Query(description="Only this priority label.")] = None,
        needs_review: Annotated[bool | None, Query(description="Only flagged tickets.")] = None,
        limit: Annotated[int, Query(ge=1, le=page_size_max)] = min(
            _DEFAULT_PAGE_SIZE, page_size_max
        ),
        offset: Annotated[int, Query(ge=0)] = 0,
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
    def get_ticket(ticket_id: str) -> dict[str, Any]:
        """The stored ticket with its enrichment, and its delivery when delivery is on."""
        found = store.get(ticket_id).as_dict()
        if outbox is not None:
            delivery = outbox.delivery(ticket_id)
            found["delivery"] = None if delivery is None else delivery.as_dict()
        return found

    if outbox is not None:
        delivering = outbox

        @app.get("/outbox", summary="Deliveries to the helpdesk, in the order they were enqueued")
        def list_outbox(
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
        def retry_delivery(ticket_id: str) -> dict[str, Any]:
            """Send a dead delivery again, from its first attempt."""
            return requeue_dead(delivering, ticket_id).as_dict()

    @app.get("/model", summary="The model being served")
    def model() -> dict[str, Any]:
        """The served artifact's metadata: name, version, metrics and the form fields it reads."""
        return {**enricher.metadata, "custom_fields": list(enricher.custom_fields)}

    @app.get("/healthz", summary="Liveness of the model and the store")
    def healthz() -> JSONResponse:
        """200 when the store answers a query, 503 otherwise."""
        model_info = {"name": enricher.model_name, "version": enricher.model_version}
        try:
            store.list(TicketQuery(limit=1))
        except Exception:
            _log.exception("health check: the store does not answer")
            return JSONResponse(
                {"status": "unavailable", "model": model_info, "store": "error"}, status_code=503
            )
        return JSONResponse({"status": "ok", "model": model_info, "store": "ok"})

    # Starlette picks the handler of the nearest class in the exception's MRO, so the subclass
    # TicketTooLarge gets 413 while other InvalidTickets get 400/422.
    @app.exception_handler(TicketTooLarge)
    async def too_large(request: Request, exc: TicketTooLarge) -> JSONResponse:
        _log.info(
            "ticket rejected", extra={"code": "ticket_too_large", "problems": _problem_dicts(exc)}
        )
        return _error(413, "ticket_too_large", str(exc), exc.problems)

    @app.exception_handler(InvalidTicket)
    async def invalid_ticket(request: Request, exc: InvalidTicket) -> JSONResponse:
        # "body" problems mean the bytes were not JSON at all: a malformed request, not a
        # well-formed ticket with bad fields.
        if any(problem.field == "body" for problem in exc.problems):
            status, code = 400, "malformed_body"
        else:
            status, code = 422, "invalid_ticket"
        _log.info("ticket rejected", extra={"code": code, "problems": _problem_dicts(exc)})
        return _error(status, code, str(exc), exc.problems)

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

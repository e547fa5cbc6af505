"""`POST /tickets` and `GET /tickets/{id}` behind API Gateway, REST (payload 1.0) or HTTP
(payload 2.0), routed by Powertools' event handler. Errors map to 4xx/503 JSON bodies, and any
other exception to a 500 JSON body, so API Gateway never answers 502 for a handler failure. A
path no route has is 404 ``not_found`` and a route's path with another method 405
``method_not_allowed`` (with ``Allow``), the codes and body the local service answers; the
template routes every other path and method of both APIs to the function so that they get them.

The two API functions' entry points (`rest_api`, `http_api`) live here rather than beside the
S3, Kinesis and outbox ones in `adapters.aws.handlers`: a module is imported whole, and the API
functions' cold start should not pay for the batch utilities those need."""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import (
    APIGatewayHttpResolver,
    APIGatewayRestResolver,
    Response,
)
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from adapters.aws.runtime import Runtime, register_snapstart_hooks, runtime
from adapters.aws.telemetry import logger, metrics, record_enrichment
from core.errors import (
    ArtifactError,
    FieldProblem,
    InvalidTicket,
    StoreError,
    TicketEnrichError,
    TicketNotFound,
    error_body,
    refusal,
)
from core.intake import submit_ticket
from core.schema import parse_ticket_json

Resolver = TypeVar("Resolver", bound=ApiGatewayResolver)

_RETRY_AFTER_S = "5"

TICKETS = "/tickets"
TICKET = "/tickets/<ticket_id>"
# Each route's methods, for telling an unknown path (404) from a wrong method (405).
_METHODS = {TICKETS: ("POST",), TICKET: ("GET",)}
_PATTERNS = {re.compile(re.sub(r"<\w+>", "[^/]+", rule)): m for rule, m in _METHODS.items()}


def allowed_methods(path: str) -> tuple[str, ...]:
    """The methods the API has for ``path`` (none for a path it does not know)."""
    for pattern, methods in _PATTERNS.items():
        if pattern.fullmatch(path):
            return methods
    return ()


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body, ensure_ascii=False),
        headers=headers,
    )


def _error(
    status: int,
    code: str,
    message: str,
    problems: Sequence[FieldProblem] = (),
    headers: dict[str, str] | None = None,
) -> Response[str]:
    return _json(status, error_body(code, message, problems), headers)


def _raw_body(body: str | None, base64_encoded: bool) -> bytes:
    if body is None:
        return b""
    if not base64_encoded:
        return body.encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidTicket([FieldProblem("body", "is not valid base64")]) from None


def add_routes(app: Resolver, runtime: Callable[[], Runtime]) -> Resolver:
    """Register the ticket routes and the error mapping on a Powertools resolver."""

    @app.post(TICKETS)
    def create_ticket() -> Response[str]:
        rt = runtime()
        event = app.current_event
        body = _raw_body(event.body, bool(event.is_base64_encoded))
        started = time.perf_counter()
        ticket = parse_ticket_json(body, rt.settings.limits)
        stored, created = submit_ticket(ticket, rt.enricher, rt.store, outbox=rt.outbox)
        record_enrichment(stored, created, time.perf_counter() - started)
        return _json(
            201 if created else 200, stored.as_dict(), {"Location": f"/tickets/{stored.id}"}
        )

    @app.get(TICKET)
    def get_ticket(ticket_id: str) -> Response[str]:
        rt = runtime()
        logger.append_keys(ticket_id=ticket_id)
        found = rt.store.get(ticket_id).as_dict()
        if rt.outbox is not None:
            delivery = rt.outbox.delivery(ticket_id)
            found["delivery"] = None if delivery is None else delivery.as_dict()
        return _json(200, found)

    def invalid(exc: InvalidTicket) -> Response[str]:
        status, code = refusal(exc)  # TicketTooLarge, a subclass, lands here too
        logger.info("ticket rejected", code=code, problems=_dicts(exc))
        return _error(status, code, str(exc), exc.problems)

    def not_found(exc: TicketNotFound) -> Response[str]:
        return _error(404, "ticket_not_found", str(exc))

    def no_route(exc: NotFoundError) -> Response[str]:
        event = app.current_event
        allowed = allowed_methods(event.path)
        logger.info("no route", method=event.http_method, path=event.path, allowed=allowed)
        if allowed:
            headers = {"Allow": ", ".join(allowed)}
            return _error(405, "method_not_allowed", "Method Not Allowed", headers=headers)
        return _error(404, "not_found", "Not Found")

    def unavailable(exc: TicketEnrichError) -> Response[str]:
        logger.exception("store or model unavailable")
        return _error(
            503,
            "service_unavailable",
            "the ticket store or the model is unavailable; retry later",
            headers={"Retry-After": _RETRY_AFTER_S},
        )

    def unexpected(exc: Exception) -> Response[str]:
        logger.exception("unhandled error")
        return _error(500, "internal_error", "the service failed; this was logged")

    # Registered by call: the decorator form is untyped.
    app.exception_handler(InvalidTicket)(invalid)
    app.exception_handler(TicketNotFound)(not_found)
    # Powertools raises NotFoundError for a request no route matches; without its own handler
    # the catch-all below would answer it 500.
    app.exception_handler(NotFoundError)(no_route)
    app.exception_handler([StoreError, ArtifactError])(unavailable)
    app.exception_handler(Exception)(unexpected)
    return app


def _dicts(exc: InvalidTicket) -> list[dict[str, str]]:
    return [problem.as_dict() for problem in exc.problems]


# Only registers (on Lambda); the hooks do their work when Lambda takes or restores a snapshot.
register_snapstart_hooks()
rest_app = add_routes(APIGatewayRestResolver(), runtime)
http_app = add_routes(APIGatewayHttpResolver(), runtime)


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True
)
@metrics.log_metrics
def rest_api(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """API Gateway REST API (payload 1.0)."""
    return rest_app.resolve(event, context)


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True
)
@metrics.log_metrics
def http_api(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """API Gateway HTTP API (payload 2.0)."""
    return http_app.resolve(event, context)

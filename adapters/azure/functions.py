"""The Azure Functions front's handlers: HTTP in, `core.intake.submit_ticket`, HTTP out; the
outbox drain; and the retraining trigger (a closed-ticket export landed in Blob Storage → the
Azure ML retraining job submitted for it). `function_app.py` registers them with the Functions
host.

Everything is built once per worker process, on the first invocation, never at import:
`runtime()` builds the settings, the enricher (the model in this process, or the online
endpoint), the Table Storage store that is also the outbox, and the helpdesk client;
`retrain_submitter()` builds only the Azure ML client, so the trigger loads no model.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import azure.functions as func

from adapters.azure.endpoint import EndpointEnricher, EndpointUnavailable
from adapters.azure.scoring import scoring_log_from_settings, scoring_log_line
from adapters.azure.scoring_log import ScoringLog
from adapters.azure.settings import AzureSettings
from adapters.azure.table_store import TableTicketStore, tickets_table_from_settings
from core.delivery import DeliveryReport, deliver_due
from core.enricher import Enricher
from core.errors import (
    FieldProblem,
    InvalidTicket,
    StoreError,
    TicketEnrichError,
    TicketNotFound,
    error_body,
    refusal,
)
from core.intake import submit_ticket
from core.ports import HelpdeskClient
from core.schema import parse_ticket_json

if TYPE_CHECKING:
    from core.schema import Ticket

_log = logging.getLogger(__name__)
_RETRY_AFTER_S = "5"


@dataclass
class FunctionsRuntime:
    """What the Functions share within one worker process."""

    settings: AzureSettings
    enricher: Enricher | EndpointEnricher
    store: TableTicketStore
    helpdesk: HelpdeskClient | None = None
    scoring_log: ScoringLog | None = None

    def helpdesk_client(self) -> HelpdeskClient:
        """The helpdesk connector, built on first use (only the drain needs it)."""
        if self.helpdesk is None:
            from adapters.helpdesk.factory import helpdesk_from_settings

            self.helpdesk = helpdesk_from_settings(self.settings)
        return self.helpdesk


def build_runtime(
    settings: AzureSettings,
    *,
    store: TableTicketStore | None = None,
    enricher: Enricher | EndpointEnricher | None = None,
    helpdesk: HelpdeskClient | None = None,
    scoring_log: ScoringLog | None = None,
) -> FunctionsRuntime:
    """Wire the Functions from settings; tests pass their own collaborators."""
    if enricher is None:
        if settings.azure_enrich_via == "endpoint":
            if not settings.azure_endpoint_url:
                raise TicketEnrichError(
                    "TICKET_ENRICH_AZURE_ENRICH_VIA=endpoint needs TICKET_ENRICH_AZURE_ENDPOINT_URL"
                )
            key = settings.azure_endpoint_key
            enricher = EndpointEnricher(
                settings.azure_endpoint_url,
                None if key is None else key.get_secret_value(),
                limits=settings.limits,
                timeout_s=settings.azure_endpoint_timeout_s,
            )
        else:
            from core import load_enricher

            enricher = load_enricher(
                settings.serving_model_dir, limits=settings.limits, options=settings.enrich_options
            )
    if store is None:
        store = tickets_table_from_settings(settings)
        store.create_table()
    if scoring_log is None and settings.azure_enrich_via == "core":
        # Through the endpoint, the endpoint logs what it scores; here the Function does.
        scoring_log = scoring_log_from_settings(settings)
    return FunctionsRuntime(settings, enricher, store, helpdesk, scoring_log)


@functools.cache
def runtime() -> FunctionsRuntime:
    """The worker's runtime, built on the first invocation."""
    from adapters.azure.logs import install_json_logging

    install_json_logging()
    return build_runtime(AzureSettings())


def _json(body: Any, status: int, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, ensure_ascii=False),
        status_code=status,
        mimetype="application/json",
        charset="utf-8",
        headers=headers,
    )


def _error(
    status: int,
    code: str,
    message: str,
    problems: Sequence[FieldProblem] = (),
    headers: dict[str, str] | None = None,
) -> func.HttpResponse:
    return _json(error_body(code, message, problems), status, headers)


def _request_id(req: func.HttpRequest) -> str | None:
    for name in ("x-ms-client-request-id", "x-request-id"):
        value: str | None = req.headers.get(name)
        if value:
            return value[:256]
    return None


def submit(req: func.HttpRequest, rt: FunctionsRuntime) -> func.HttpResponse:
    """POST /api/tickets: 201 with the stored ticket, 200 with the first one for a repeated
    external id, 4xx naming the field, 503 when the store or the endpoint is down."""
    request_id = _request_id(req)
    try:
        # The core checks the size before decoding anything, then UTF-8, JSON and the schema.
        ticket: Ticket = parse_ticket_json(req.get_body(), rt.settings.limits)
        outbox = rt.store if rt.settings.deliver else None
        # EndpointEnricher has the parse/enrich pair submit_ticket uses (see its docstring).
        stored, created = submit_ticket(
            ticket, cast(Enricher, rt.enricher), rt.store, outbox=outbox
        )
    except InvalidTicket as exc:
        return _rejected(exc, request_id)
    except (StoreError, EndpointUnavailable) as exc:
        _log.warning("ticket not taken in", extra={"request_id": request_id, "error": str(exc)})
        return _unavailable("the ticket store or the model endpoint is unavailable; retry later")
    if created and rt.scoring_log is not None:
        line = scoring_log_line(
            stored.as_dict(), request_id or stored.id, redacted=rt.settings.redact_pii
        )
        rt.scoring_log.record(request_id or stored.id, [line])
    _log.info(
        "ticket taken in",
        extra={"request_id": request_id, "ticket_id": stored.id, "new": created},
    )
    return _json(stored.as_dict(), 201 if created else 200)


def get_ticket(req: func.HttpRequest, rt: FunctionsRuntime) -> func.HttpResponse:
    """GET /api/tickets/{ticket_id}: the stored ticket with its delivery, or 404."""
    ticket_id = req.route_params.get("ticket_id", "")
    try:
        stored = rt.store.get(ticket_id)
        delivery = rt.store.delivery(ticket_id)
    except TicketNotFound as exc:
        return _error(404, "ticket_not_found", str(exc))
    except StoreError as exc:
        _log.warning("ticket not read", extra={"ticket_id": ticket_id, "error": str(exc)})
        return _unavailable("the ticket store is unavailable; retry later")
    body = stored.as_dict()
    body["delivery"] = None if delivery is None else delivery.as_dict()
    return _json(body, 200)


def _unavailable(message: str) -> func.HttpResponse:
    # The code API Gateway answers with; Retry-After says when to try again.
    return _error(503, "service_unavailable", message, headers={"Retry-After": _RETRY_AFTER_S})


def _rejected(exc: InvalidTicket, request_id: str | None) -> func.HttpResponse:
    status, code = refusal(exc)
    problems = [p.as_dict() for p in exc.problems]
    _log.info(
        "ticket rejected", extra={"request_id": request_id, "code": code, "problems": problems}
    )
    return _error(status, code, str(exc), exc.problems)


def drain(rt: FunctionsRuntime, *, clock: Callable[[], float] = time.monotonic) -> DeliveryReport:
    """Deliver what is due, pass after pass, through the configured helpdesk connector, until a
    pass finds less than a full batch or the time budget (within the Function's timeout) runs
    out; the next tick goes on from there."""
    settings = rt.settings
    client = rt.helpdesk_client()
    total = DeliveryReport()
    deadline = clock() + settings.azure_drain_budget_s
    while True:
        report = deliver_due(
            rt.store, client, policy=settings.retry_policy, limit=settings.delivery_batch_size
        )
        total.delivered += report.delivered
        total.retrying += report.retrying
        total.dead += report.dead
        if report.claimed < settings.delivery_batch_size or clock() >= deadline:
            break
    _log.info(
        "outbox drained",
        extra={
            "delivered": len(total.delivered),
            "retrying": len(total.retrying),
            "dead": len(total.dead),
        },
    )
    return total


# Where `ticket-enrich deploy azure` stages the retraining job in the Functions app: the job
# definition, its environment and the code it runs, beside function_app.py.
STAGED_RETRAIN_JOB = Path(__file__).resolve().parents[2] / "retrain" / "retrain-job.yml"
_BLOB_CREATED = "Microsoft.Storage.BlobCreated"


@dataclass
class RetrainSubmitter:
    """What the retraining trigger needs: the settings, an `azure.ai.ml.MLClient` (or a test
    double: no Azure ML emulator exists) and the staged job definition."""

    settings: AzureSettings
    client: Any
    job_file: Path = STAGED_RETRAIN_JOB


@functools.cache
def retrain_submitter() -> RetrainSubmitter:
    """The worker's Azure ML client, built on the first export that lands."""
    from adapters.azure.logs import install_json_logging

    install_json_logging()
    settings = AzureSettings()
    where = {
        "TICKET_ENRICH_AZURE_SUBSCRIPTION_ID": settings.azure_subscription_id,
        "TICKET_ENRICH_AZURE_RESOURCE_GROUP": settings.azure_resource_group,
        "TICKET_ENRICH_AZURE_ML_WORKSPACE": settings.azure_ml_workspace,
    }
    missing = [name for name, value in where.items() if not value]
    if missing:
        raise TicketEnrichError(f"the retraining trigger needs {', '.join(missing)}")
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    client = MLClient(
        DefaultAzureCredential(),
        settings.azure_subscription_id,
        settings.azure_resource_group,
        settings.azure_ml_workspace,
    )
    return RetrainSubmitter(settings, client)


def retrain_job_name(url: str, etag: str) -> str:
    """One job name per version of an export: the same event delivered twice names the same
    job; the same blob uploaded again (a new ETag) names a new one."""
    return "retrain-" + hashlib.sha256(f"{url}\n{etag}".encode()).hexdigest()[:24]


def _container_of(subject: str) -> str | None:
    # Subjects read /blobServices/default/containers/<container>/blobs/<name>.
    parts = subject.split("/")
    return parts[4] if len(parts) > 5 and parts[3] == "containers" else None


def _job_exists(jobs: Any, name: str) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        jobs.get(name)
    except ResourceNotFoundError:
        return False
    return True


def submit_retrain(event: func.EventGridEvent, submitter: RetrainSubmitter) -> str | None:
    """An export landed in the closed-tickets container: submit the retraining job with the
    blob's URL as its input, once per blob version; the job's name if one was submitted or
    found. Any other event is ignored. A failure raises, so that Event Grid delivers again."""
    from azure.core.exceptions import HttpResponseError

    container = _container_of(event.subject)
    wanted = submitter.settings.azure_closed_tickets_container
    data = event.get_json()
    if event.event_type != _BLOB_CREATED or container != wanted or not data.get("contentLength"):
        _log.info(
            "event ignored",
            extra={"event_id": event.id, "type": event.event_type, "subject": event.subject},
        )
        return None
    url, etag = str(data["url"]), str(data["eTag"])
    name = retrain_job_name(url, etag)
    jobs = submitter.client.jobs
    if _job_exists(jobs, name):
        _log.info("retraining already submitted", extra={"job": name, "export": url})
        return name
    from azure.ai.ml import load_job

    job = load_job(
        submitter.job_file,
        params_override=[
            {"name": name},
            {"inputs.closed_tickets": {"type": "uri_file", "path": url, "mode": "download"}},
            {"tags.export": url},
            {"tags.export_etag": etag},
        ],
    )
    try:
        jobs.create_or_update(job)
    except HttpResponseError:
        # Another delivery of the same event may have created it in between.
        if not _job_exists(jobs, name):
            raise
        _log.info("retraining already submitted", extra={"job": name, "export": url})
        return name
    _log.info("retraining submitted", extra={"job": name, "export": url, "etag": etag})
    return name

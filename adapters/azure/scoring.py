"""The Azure ML scoring logic behind `score.py`: raw JSON in, `Enricher.enrich`, JSON out.

`score.py` keeps the `init()` / `run(raw_data)` contract of Azure ML online endpoints and only
translates this module's `ScoreResult` into the inference server's response type.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapters.azure.scoring_log import BlobScoringLog, NullScoringLog, ScoringLog
from adapters.azure.settings import AzureSettings
from core import Enricher, load_enricher
from core.errors import FieldProblem, InvalidTicket, TicketTooLarge, error_body
from core.schema import decode_json, normalize_ticket

_log = logging.getLogger(__name__)

# The headers that carry a request id, in the order they are trusted: Azure ML's front end sets
# x-request-id on every request; a caller's own id comes in x-ms-client-request-id.
REQUEST_ID_HEADERS = ("x-request-id", "x-ms-client-request-id", "x-ms-request-id")


@dataclass(frozen=True)
class ScoreResult:
    """What `run()` answers: an HTTP status and a JSON-ready body."""

    status: int
    body: Any


def request_id_from(headers: Mapping[str, str] | None) -> str | None:
    """The request id the server passed in the headers, if any."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in REQUEST_ID_HEADERS:
        value = lowered.get(name, "").strip()
        if value:
            return value[:256]
    return None


def _error(status: int, code: str, exc: InvalidTicket) -> ScoreResult:
    return ScoreResult(status, error_body(code, str(exc), exc.problems))


def _prefixed(exc: InvalidTicket, index: int) -> InvalidTicket:
    problems = [FieldProblem(f"[{index}].{p.field}", p.message) for p in exc.problems]
    return type(exc)(problems)


class Scorer:
    """Scores request bodies with one loaded `Enricher` and logs them for retraining."""

    def __init__(
        self,
        enricher: Enricher,
        scoring_log: ScoringLog,
        *,
        max_body_bytes: int,
        max_batch: int,
    ) -> None:
        self.enricher = enricher
        self.scoring_log = scoring_log
        self.max_body_bytes = max_body_bytes
        self.max_batch = max_batch

    def score(self, raw_data: str | bytes, request_id: str | None = None) -> ScoreResult:
        """One ticket (a JSON object) or several (a JSON array) in; the enriched ticket(s) out,
        200, or 400 (malformed JSON, invalid field) or 413 (too large), naming the field."""
        request_id = request_id or str(uuid.uuid4())
        started = time.perf_counter()
        try:
            tickets, single = self._parse(raw_data)
        except TicketTooLarge as exc:
            return self._rejected(413, "too_large", exc, request_id)
        except InvalidTicket as exc:
            code = "malformed_body" if any(p.field == "body" for p in exc.problems) else "invalid"
            return self._rejected(400, code, exc, request_id)
        enriched = [self.enricher.enrich(ticket) for ticket in tickets]
        redacted = self.enricher.options.redact
        self.scoring_log.record(
            request_id, [scoring_log_line(e, request_id, redacted=redacted) for e in enriched]
        )
        _log.info(
            "scored",
            extra={
                "request_id": request_id,
                "tickets": len(enriched),
                "model_version": self.enricher.model_version,
                "duration_ms": round((time.perf_counter() - started) * 1000.0, 3),
            },
        )
        return ScoreResult(200, enriched[0] if single else enriched)

    def _rejected(self, status: int, code: str, exc: InvalidTicket, request_id: str) -> ScoreResult:
        result = _error(status, code, exc)
        _log.info(
            "request rejected",
            extra={"request_id": request_id, "status": status, "problems": result.body["error"]},
        )
        return result

    def _parse(self, raw_data: str | bytes) -> tuple[list[Any], bool]:
        body = raw_data.encode("utf-8", "surrogatepass") if isinstance(raw_data, str) else raw_data
        if len(body) > self.max_body_bytes:
            message = f"is {len(body)} bytes, over the {self.max_body_bytes} limit"
            raise TicketTooLarge([FieldProblem("body", message)])
        # The core's one JSON reader: UTF-8, nesting, number size, lone surrogates.
        data = decode_json(body, self.enricher.limits, max_bytes=self.max_body_bytes)
        # `normalize_ticket` rather than `Enricher.parse`: a well-formed ticket is checked
        # without building the pydantic ticket model (tens of milliseconds of the cold start),
        # and anything else is refused by that model with the same messages.
        limits = self.enricher.limits
        if isinstance(data, dict):
            return [normalize_ticket(data, limits)], True
        if not isinstance(data, list) or not data:
            raise InvalidTicket(
                [FieldProblem("body", "must be a ticket (JSON object) or a non-empty array")]
            )
        if len(data) > self.max_batch:
            message = f"has {len(data)} tickets, over the {self.max_batch} limit"
            raise TicketTooLarge([FieldProblem("body", message)])
        parsed = []
        for index, item in enumerate(data):
            if not isinstance(item, dict):
                raise InvalidTicket([FieldProblem(f"[{index}]", "must be a JSON object")])
            try:
                parsed.append(normalize_ticket(item, limits))
            except InvalidTicket as exc:
                raise _prefixed(exc, index) from None
        return parsed, False


def scoring_log_line(
    enriched: Mapping[str, Any], request_id: str, *, redacted: bool
) -> dict[str, Any]:
    """The scoring-log line of one enriched ticket: the ticket with its subject and description
    redacted (by the core's redaction, here if ``redacted`` says the enricher did not) and the
    requester reduced to their tier, the predictions, the model and the request id."""
    ticket = dict(enriched["ticket"])
    if not redacted:
        # The logs are for retraining, never for reading people's data: they are redacted
        # even where the responses are not.
        from core.redaction import redact

        for field in ("subject", "description"):
            ticket[field], _found = redact(ticket.get(field, ""))
    # Who wrote the ticket does not help a model learn priorities; only the tier stays.
    requester = ticket.pop("requester", None)
    if isinstance(requester, dict) and requester.get("tier"):
        ticket["requester"] = {"tier": requester["tier"]}
    enrichment = enriched["enrichment"]
    return {
        "request_id": request_id,
        "logged_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "model": enrichment.get("model"),
        "ticket": ticket,
        "prediction": {k: v for k, v in enrichment.items() if k != "model"},
    }


def scoring_log_from_settings(settings: AzureSettings) -> ScoringLog:
    """The Blob Storage scoring log the settings name, or one that keeps nothing."""
    conn = settings.azure_scoring_log_connection_string
    url = settings.azure_scoring_log_account_url
    if conn is None and url is None:
        return NullScoringLog()
    from azure.storage.blob import BlobServiceClient

    options: dict[str, Any] = {
        "retry_total": settings.azure_storage_retries,
        "connection_timeout": settings.azure_storage_timeout_s,
        "read_timeout": settings.azure_storage_timeout_s,
    }
    if conn is not None:
        service = BlobServiceClient.from_connection_string(conn.get_secret_value(), **options)
    else:
        from azure.identity import DefaultAzureCredential

        assert url is not None
        service = BlobServiceClient(url, credential=DefaultAzureCredential(), **options)
    return BlobScoringLog(
        service.get_container_client(settings.azure_scoring_log_container),
        prefix=settings.azure_scoring_log_prefix,
        queue_max=settings.azure_scoring_log_queue_max,
    )


def build_scorer(settings: AzureSettings, scoring_log: ScoringLog | None = None) -> Scorer:
    """Load and verify the model the settings point at, and wire the scoring log."""
    enricher = load_enricher(
        settings.scoring_model_dir, limits=settings.limits, options=settings.enrich_options
    )
    return Scorer(
        enricher,
        scoring_log if scoring_log is not None else scoring_log_from_settings(settings),
        max_body_bytes=settings.azure_request_max_bytes,
        max_batch=settings.azure_batch_max,
    )

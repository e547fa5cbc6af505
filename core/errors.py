"""One error hierarchy for the whole product; adapters map these to their platform's responses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class TicketEnrichError(Exception):
    """Base class of every error the product raises on purpose."""


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with one field of an input, as a caller should read it."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        """The problem as a JSON-ready mapping."""
        return {"field": self.field, "message": self.message}


class InvalidTicket(TicketEnrichError):
    """A ticket failed validation; ``problems`` names each field and what is wrong with it."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))


class TicketTooLarge(InvalidTicket):
    """A ticket, or one of its fields, is larger than the configured limit."""


class IdempotencyKeyReused(InvalidTicket):
    """An idempotency key came back with a different ticket: the first request stands."""


class TicketNotFound(TicketEnrichError):
    """No stored ticket has the requested id."""

    def __init__(self, ticket_id: str) -> None:
        self.ticket_id = ticket_id
        super().__init__(f"no ticket with id {ticket_id!r}")


class ArtifactError(TicketEnrichError):
    """A model artifact is missing, modified, truncated or of an unknown format."""


class TrainingDataError(TicketEnrichError):
    """Closed-ticket data cannot be trained on; names the column and row where it can."""

    def __init__(self, message: str, *, column: str | None = None, row: int | None = None) -> None:
        self.column = column
        self.row = row
        where = []
        if column is not None:
            where.append(f"column {column!r}")
        if row is not None:
            where.append(f"row {row}")
        prefix = f"{', '.join(where)}: " if where else ""
        super().__init__(prefix + message)


class StoreError(TicketEnrichError):
    """The ticket store failed in a way the caller cannot fix by changing its input."""


class HelpdeskError(TicketEnrichError):
    """Delivering an enriched ticket to a helpdesk failed."""


class HelpdeskUnavailable(HelpdeskError):
    """The helpdesk is down, slow or rate-limiting: retry later (after ``retry_after`` seconds
    when it said so), never drop the ticket."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class HelpdeskRejected(HelpdeskError):
    """The helpdesk refused the ticket for good (a 4xx other than 408, 409 or 429): retrying
    cannot help, so the delivery goes to the dead-letter state."""


class DeliveryNotFound(TicketEnrichError):
    """No delivery was enqueued for the requested ticket id."""

    def __init__(self, ticket_id: str) -> None:
        self.ticket_id = ticket_id
        super().__init__(f"no delivery for ticket {ticket_id!r}")


class DeliveryNotDead(TicketEnrichError):
    """Only a dead delivery can be requeued; this one is still pending, retrying or delivered."""

    def __init__(self, ticket_id: str, status: str) -> None:
        self.ticket_id = ticket_id
        self.status = status
        super().__init__(f"delivery of ticket {ticket_id!r} is {status}, not dead")


class RegistryError(TicketEnrichError):
    """The model registry cannot do what was asked (unknown version or stage, bad artifact)."""


class RateLimited(TicketEnrichError):
    """A client sent more than its rate limit allows; it may retry after ``retry_after_s``."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message)


def refusal(exc: InvalidTicket) -> tuple[int, str]:
    """The HTTP status and error code a refused ticket is answered with at every HTTP entry
    point: 413 ``ticket_too_large``; 409 ``idempotency_key_reused``; 400 ``malformed_body`` when
    the bytes were not a JSON ticket at all (a problem with the ``body``); else 422
    ``invalid_ticket``."""
    if isinstance(exc, TicketTooLarge):
        return 413, "ticket_too_large"
    if isinstance(exc, IdempotencyKeyReused):
        return 409, "idempotency_key_reused"
    if any(problem.field == "body" for problem in exc.problems):
        return 400, "malformed_body"
    return 422, "invalid_ticket"


def error_body(code: str, message: str, problems: Sequence[FieldProblem] = ()) -> dict[str, Any]:
    """The JSON body of every error answer: ``{"error": {"code", "message", "problems"}}``."""
    return {
        "error": {
            "code": code,
            "message": message,
            "problems": [problem.as_dict() for problem in problems],
        }
    }


class InvalidRules(ArtifactError):
    """A priority rules file cannot be used; the message names the rule at fault."""

    def __init__(self, message: str, *, rule: str | None = None) -> None:
        self.rule = rule
        super().__init__(message)

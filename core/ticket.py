"""The ticket's pydantic models: the API schema (OpenAPI, adapters) and the validator that words
every refusal.

Importing pydantic and building these models takes tens of milliseconds, so the enrichment path
does not: `core.schema.normalize_ticket` accepts a well-formed ticket on its own and comes here
only to refuse one (or to read a form it does not handle itself, such as `created_at`), so that
every message is pydantic's, as it always was. `core.schema` re-exports `Ticket` and `Requester`
on first use.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.errors import FieldProblem, InvalidTicket
from core.schema import EMAIL_RE, EMPTY_TICKET

CustomValue = str | int | float | bool | None


class Requester(BaseModel):
    """The customer who wrote the ticket."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)

    email: Annotated[str, Field(max_length=254)] | None = None
    name: Annotated[str, Field(max_length=256)] | None = None
    tier: Annotated[str, Field(max_length=64)] | None = None

    @field_validator("email")
    @classmethod
    def _email_shape(cls, value: str | None) -> str | None:
        if value is not None and not EMAIL_RE.match(value):
            raise ValueError("is not an e-mail address")
        return value


class Ticket(BaseModel):
    """A new support ticket: at least a subject or a description, plus optional context."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    subject: str = ""
    description: str = ""
    requester: Requester | None = None
    channel: Annotated[str, Field(max_length=64)] | None = None
    custom_fields: dict[Annotated[str, Field(max_length=128)], CustomValue] = Field(
        default_factory=dict, max_length=200
    )
    created_at: datetime | None = None
    external_id: Annotated[str, Field(min_length=1, max_length=256)] | None = None

    @model_validator(mode="after")
    def _has_text(self) -> Ticket:
        if not self.subject.strip() and not self.description.strip():
            raise ValueError(EMPTY_TICKET)
        return self


def _problems_from(error: ValidationError) -> list[FieldProblem]:
    problems = []
    for item in error.errors(include_url=False):
        loc = ".".join(str(part) for part in item["loc"]) or "ticket"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "is not a known ticket field"
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        problems.append(FieldProblem(loc, message))
    return problems


def validate(data: Any) -> Ticket:
    """``data`` as a `Ticket`, or `InvalidTicket` naming each bad field (no size checks: the
    caller has made them)."""
    try:
        return Ticket.model_validate(data)
    except ValidationError as exc:
        raise InvalidTicket(_problems_from(exc)) from None

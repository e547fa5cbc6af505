"""The ticket as it arrives, validated once at the edge of the core."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.errors import FieldProblem, InvalidTicket, TicketTooLarge

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

CustomValue = str | int | float | bool | None


@dataclass(frozen=True)
class Limits:
    """Size limits, in UTF-8 bytes, that every entry point enforces before anything else."""

    subject_bytes: int = 1024
    description_bytes: int = 64 * 1024
    ticket_bytes: int = 256 * 1024


class Requester(BaseModel):
    """The customer who wrote the ticket."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)

    email: Annotated[str, Field(max_length=254)] | None = None
    name: Annotated[str, Field(max_length=256)] | None = None
    tier: Annotated[str, Field(max_length=64)] | None = None

    @field_validator("email")
    @classmethod
    def _email_shape(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL_RE.match(value):
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
            raise ValueError("a ticket needs a non-empty subject or description")
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


def _unrepresentable(value: Any, path: str) -> FieldProblem | None:
    """The first value JSON cannot carry back out: a lone surrogate or a non-finite number."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return FieldProblem(path, "contains an unpaired UTF-16 surrogate")
    elif isinstance(value, float) and not math.isfinite(value):
        return FieldProblem(path, "must be a finite number")
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            problem = _unrepresentable(key, child) or _unrepresentable(item, child)
            if problem:
                return problem
    elif isinstance(value, list):
        for i, item in enumerate(value):
            problem = _unrepresentable(item, f"{path}.{i}")
            if problem:
                return problem
    return None


def parse_ticket(data: Any, limits: Limits | None = None) -> Ticket:
    """Validate a decoded JSON value as a ticket, enforcing size limits; raise InvalidTicket."""
    limits = limits or Limits()
    if isinstance(data, Ticket):
        data = data.model_dump()
    if not isinstance(data, dict):
        raise InvalidTicket([FieldProblem("ticket", "must be a JSON object")])
    too_large = []
    for name, limit in (
        ("subject", limits.subject_bytes),
        ("description", limits.description_bytes),
    ):
        value = data.get(name)
        if isinstance(value, str) and len(value.encode("utf-8", "surrogatepass")) > limit:
            too_large.append(FieldProblem(name, f"is longer than {limit} bytes"))
    if too_large:
        raise TicketTooLarge(too_large)
    problem = _unrepresentable(data, "")
    if problem:
        raise InvalidTicket([problem])
    try:
        ticket = Ticket.model_validate(data)
    except ValidationError as exc:
        raise InvalidTicket(_problems_from(exc)) from None
    return ticket


def parse_ticket_json(body: bytes, limits: Limits | None = None) -> Ticket:
    """Decode and validate a raw request body; every failure names what is wrong."""
    limits = limits or Limits()
    if len(body) > limits.ticket_bytes:
        raise TicketTooLarge(
            [FieldProblem("ticket", f"is {len(body)} bytes, over the {limits.ticket_bytes} limit")]
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidTicket(
            [FieldProblem("body", f"is not valid UTF-8 (byte {exc.start})")]
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidTicket(
            [
                FieldProblem(
                    "body", f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
                )
            ]
        ) from None
    return parse_ticket(data, limits)

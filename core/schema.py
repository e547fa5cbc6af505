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
    """The limits every entry point enforces before anything else: sizes in UTF-8 bytes, and
    the shape of any JSON it reads (nesting, number size)."""

    subject_bytes: int = 1024
    description_bytes: int = 64 * 1024
    ticket_bytes: int = 256 * 1024
    # A ticket nests three levels; nothing the product reads needs more than a few.
    json_depth: int = 32
    # Digits of a JSON integer (Python itself refuses past 4,300, with a ValueError).
    json_int_digits: int = 64
    # Bodies other than a ticket (sign-in, corrections, settings): small by nature.
    form_bytes: int = 16 * 1024
    # Characters of a field name quoted back in an error.
    quoted_name_chars: int = 64
    # The largest offset a listing accepts (SQLite's integers stop at 2**63 - 1).
    offset_max: int = 1_000_000_000


def quoted_name(name: Any, limits: Limits | None = None) -> str:
    """A field name fit to quote in an error body: valid UTF-8 (a lone surrogate becomes its
    escape) and short."""
    limit = (limits or Limits()).quoted_name_chars
    text = str(name).encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


def check_json_value(value: Any, limits: Limits | None = None, path: str = "") -> None:
    """Refuse a decoded JSON value the product cannot carry back out or should not walk: nesting
    deeper than the limit, a lone UTF-16 surrogate in a string or a key, a non-finite number.
    Iterative, so no input can exhaust the interpreter's stack."""
    limits = limits or Limits()
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        field = where or "body"
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidTicket(
                    [FieldProblem(field, "contains an unpaired UTF-16 surrogate")]
                ) from None
        elif isinstance(item, float) and not math.isfinite(item):
            raise InvalidTicket([FieldProblem(field, "must be a finite number")])
        elif isinstance(item, dict | list):
            if depth >= limits.json_depth:
                raise InvalidTicket(
                    [FieldProblem(field, f"nests deeper than {limits.json_depth} levels")]
                )
            if isinstance(item, dict):
                for key, child in item.items():
                    name = quoted_name(key, limits)
                    child_path = f"{where}.{name}" if where else name
                    if isinstance(key, str):
                        try:
                            key.encode("utf-8")
                        except UnicodeEncodeError:
                            raise InvalidTicket(
                                [FieldProblem(child_path, "has a name with an unpaired surrogate")]
                            ) from None
                    stack.append((child, child_path, depth + 1))
            else:
                stack.extend((child, f"{where}.{i}", depth + 1) for i, child in enumerate(item))


def decode_json(
    body: bytes | str,
    limits: Limits | None = None,
    *,
    max_bytes: int | None = None,
    what: str = "body",
) -> Any:
    """Decode a JSON document within the core's limits, or raise `InvalidTicket` (or
    `TicketTooLarge`) naming what is wrong: too many bytes, not UTF-8, not JSON, nested too
    deeply, an integer too long, NaN or Infinity, a lone surrogate. The one JSON reader of every
    entry point."""
    limits = limits or Limits()
    max_bytes = limits.ticket_bytes if max_bytes is None else max_bytes
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    if len(raw) > max_bytes:
        raise TicketTooLarge(
            [FieldProblem(what, f"is {len(raw)} bytes, over the {max_bytes} limit")]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidTicket(
            [FieldProblem(what, f"is not valid UTF-8 (byte {exc.start})")]
        ) from None

    def bounded_int(digits: str) -> int:
        if len(digits.lstrip("-")) > limits.json_int_digits:
            raise ValueError(f"has an integer longer than {limits.json_int_digits} digits")
        return int(digits)

    try:
        # NaN and Infinity decode as floats, which `check_json_value` refuses with their field.
        data = json.loads(text, parse_int=bounded_int)
    except json.JSONDecodeError as exc:
        raise InvalidTicket(
            [
                FieldProblem(
                    what, f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
                )
            ]
        ) from None
    except RecursionError:
        raise InvalidTicket(
            [FieldProblem(what, f"nests deeper than {limits.json_depth} levels")]
        ) from None
    except ValueError as exc:
        raise InvalidTicket([FieldProblem(what, str(exc))]) from None
    check_json_value(data, limits)
    return data


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
    check_json_value(data, limits)
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
    return parse_ticket(decode_json(body, limits), limits)

"""The ticket as it arrives, validated once at the edge of the core."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.errors import FieldProblem, InvalidTicket, TicketTooLarge

if TYPE_CHECKING:
    from core.ticket import CustomValue as CustomValue
    from core.ticket import Requester as Requester
    from core.ticket import Ticket as Ticket

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EMPTY_TICKET = "a ticket needs a non-empty subject or description"


def __getattr__(name: str) -> Any:
    # The pydantic models load on first use: the enrichment path never needs them.
    if name in ("Ticket", "Requester", "CustomValue"):
        from core import ticket

        return getattr(ticket, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    # An admin's priority rules document (PUT /rules): a helpdesk's own rule set with its
    # phrase lists can be many times the shipped one (about 9 KiB).
    rules_bytes: int = 256 * 1024
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


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
            # An ASCII string (most) cannot hold a surrogate: no need to encode it.
            if not item.isascii() and not _encodes(item):
                raise InvalidTicket([FieldProblem(field, "contains an unpaired UTF-16 surrogate")])
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


def _check_sizes(data: Any, limits: Limits) -> None:
    if not isinstance(data, dict):
        raise InvalidTicket([FieldProblem("ticket", "must be a JSON object")])
    too_large = []
    for name, limit in (
        ("subject", limits.subject_bytes),
        ("description", limits.description_bytes),
    ):
        value = data.get(name)
        # A character takes at most 4 bytes: only a long value needs encoding to be measured.
        if (
            isinstance(value, str)
            and len(value) * 4 > limit
            and len(value.encode("utf-8", "surrogatepass")) > limit
        ):
            too_large.append(FieldProblem(name, f"is longer than {limit} bytes"))
    if too_large:
        raise TicketTooLarge(too_large)
    check_json_value(data, limits)


def parse_ticket(data: Any, limits: Limits | None = None) -> Ticket:
    """Validate a decoded JSON value as a ticket, enforcing size limits; raise InvalidTicket."""
    from core.ticket import Ticket, validate

    limits = limits or Limits()
    if isinstance(data, Ticket):
        data = data.model_dump()
    _check_sizes(data, limits)
    return validate(data)


_TICKET_KEYS = frozenset(
    ("subject", "description", "requester", "channel", "custom_fields", "created_at", "external_id")
)
# Requester: (field, most characters once stripped).
_REQUESTER_FIELDS = (("email", 254), ("name", 256), ("tier", 64))
_REQUESTER_KEYS = frozenset(name for name, _ in _REQUESTER_FIELDS)
_ASCII_SPACE = " \t\n\r\x0b\x0c"
_CUSTOM_VALUE_TYPES = frozenset((str, int, float, bool, type(None)))


def _as_dumped(data: dict[str, Any]) -> dict[str, Any] | None:
    """The ticket as `Ticket.model_dump(mode="json", exclude_none=True)` gives it, when ``data``
    is a ticket in the plain form almost every caller sends (exact types, nothing to convert);
    None for anything else, valid or not, which the pydantic model then decides."""
    if not _TICKET_KEYS.issuperset(data):
        return None
    subject = data.get("subject", "")
    description = data.get("description", "")
    if type(subject) is not str or type(description) is not str:
        return None
    if not subject.strip() and not description.strip():
        return None
    out: dict[str, Any] = {"subject": subject, "description": description}
    requester = data.get("requester")
    if requester is not None:
        if type(requester) is not dict or not _REQUESTER_KEYS.issuperset(requester):
            return None
        person: dict[str, str] = {}
        for name, most in _REQUESTER_FIELDS:
            value = requester.get(name)
            if value is None:
                continue
            if type(value) is not str:
                return None
            value = value.strip(_ASCII_SPACE)
            if value != value.strip():
                return None  # other white space, which pydantic and Python may strip apart
            if len(value) > most or (name == "email" and not EMAIL_RE.match(value)):
                return None
            person[name] = value
        out["requester"] = person
    channel = data.get("channel")
    if channel is not None:
        if type(channel) is not str or len(channel) > 64:
            return None
        out["channel"] = channel
    fields = data.get("custom_fields", {})
    if type(fields) is not dict or len(fields) > 200:
        return None
    for key, value in fields.items():
        if type(key) is not str or len(key) > 128 or type(value) not in _CUSTOM_VALUE_TYPES:
            return None
    out["custom_fields"] = dict(fields)
    if data.get("created_at") is not None:
        return None  # a date in any of the forms pydantic reads: it converts and writes it
    external_id = data.get("external_id")
    if external_id is not None:
        if type(external_id) is not str or not 1 <= len(external_id) <= 256:
            return None
        out["external_id"] = external_id
    return out


def normalize_ticket(data: Any, limits: Limits | None = None) -> dict[str, Any]:
    """Validate a decoded JSON value as a ticket, as `parse_ticket` does, and return it as the
    JSON an enriched ticket carries (`Ticket.model_dump(mode="json", exclude_none=True)`).

    A ticket in the plain form (strings, a requester object, form fields of JSON scalars, no
    `created_at`) is checked here without pydantic; anything else goes through the `Ticket`
    model, so every refusal names the same fields with the same messages as `parse_ticket`.
    """
    limits = limits or Limits()
    _check_sizes(data, limits)
    dumped = _as_dumped(data)
    if dumped is not None:
        return dumped
    from core.ticket import validate

    return validate(data).model_dump(mode="json", exclude_none=True)


def parse_ticket_json(body: bytes, limits: Limits | None = None) -> Ticket:
    """Decode and validate a raw request body; every failure names what is wrong."""
    limits = limits or Limits()
    if len(body) > limits.ticket_bytes:
        raise TicketTooLarge(
            [FieldProblem("ticket", f"is {len(body)} bytes, over the {limits.ticket_bytes} limit")]
        )
    return parse_ticket(decode_json(body, limits), limits)

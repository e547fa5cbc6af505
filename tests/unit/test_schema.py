import json

import pytest

from core.errors import InvalidTicket, TicketTooLarge
from core.schema import Limits, decode_json, parse_ticket, parse_ticket_json, quoted_name


def fields(exc: InvalidTicket) -> list[str]:
    return [p.field for p in exc.problems]


def test_a_full_ticket_is_accepted_and_normalised() -> None:
    ticket = parse_ticket(
        {
            "subject": "Cannot log in",
            "description": "Since this morning",
            "requester": {"email": " ann@example.com ", "name": "Ann", "tier": "gold"},
            "channel": "email",
            "custom_fields": {"product": "cloud", "seats": 3},
            "created_at": "2024-03-01T10:00:00Z",
            "external_id": "ZD-1",
        }
    )
    assert ticket.requester is not None and ticket.requester.email == "ann@example.com"
    assert ticket.custom_fields == {"product": "cloud", "seats": 3}
    assert ticket.created_at is not None and ticket.created_at.year == 2024


def test_subject_alone_or_description_alone_is_enough() -> None:
    assert parse_ticket({"subject": "x"}).description == ""
    assert parse_ticket({"description": "y"}).subject == ""


@pytest.mark.parametrize("data", [{}, {"subject": "  ", "description": "\n"}])
def test_an_empty_ticket_is_refused(data: dict[str, str]) -> None:
    with pytest.raises(InvalidTicket, match="non-empty subject or description"):
        parse_ticket(data)


def test_wrong_types_name_the_field() -> None:
    with pytest.raises(InvalidTicket) as info:
        parse_ticket({"subject": 42, "requester": {"email": "not-an-address"}})
    assert fields(info.value) == ["subject", "requester.email"]
    assert "not an e-mail address" in str(info.value)


def test_unknown_fields_are_named() -> None:
    with pytest.raises(InvalidTicket) as info:
        parse_ticket({"subject": "x", "priority": "urgent"})
    assert fields(info.value) == ["priority"]
    assert "not a known ticket field" in str(info.value)


def test_a_non_object_is_refused() -> None:
    with pytest.raises(InvalidTicket) as info:
        parse_ticket(["subject"])
    assert fields(info.value) == ["ticket"]


def test_size_limits_are_configurable_and_name_the_field() -> None:
    limits = Limits(subject_bytes=10, description_bytes=20, ticket_bytes=1000)
    with pytest.raises(TicketTooLarge) as info:
        parse_ticket({"subject": "é" * 6, "description": "ok"}, limits)
    assert fields(info.value) == ["subject"]
    with pytest.raises(TicketTooLarge) as info:
        parse_ticket({"subject": "ok", "description": "x" * 21}, limits)
    assert fields(info.value) == ["description"]
    assert parse_ticket({"subject": "x" * 10}, limits).subject == "x" * 10


def test_default_limits_match_the_documented_sizes() -> None:
    parse_ticket({"subject": "s" * 1024, "description": "d" * 65536})
    with pytest.raises(TicketTooLarge):
        parse_ticket({"subject": "s" * 1025})


def test_raw_bodies_malformed_json_non_utf8_and_oversized() -> None:
    with pytest.raises(InvalidTicket) as info:
        parse_ticket_json(b'{"subject": ')
    assert fields(info.value) == ["body"] and "not valid JSON" in str(info.value)
    with pytest.raises(InvalidTicket) as info:
        parse_ticket_json(b'{"subject": "caf\xe9"}')
    assert fields(info.value) == ["body"] and "UTF-8" in str(info.value)
    with pytest.raises(TicketTooLarge):
        parse_ticket_json(json.dumps({"description": "x" * 300_000}).encode())
    assert parse_ticket_json('{"subject": "café"}'.encode()).subject == "café"


def test_values_json_cannot_carry_are_refused_with_their_field() -> None:
    with pytest.raises(InvalidTicket) as info:
        parse_ticket_json(b'{"subject": "x", "custom_fields": {"n": NaN}}')
    assert fields(info.value) == ["custom_fields.n"]
    with pytest.raises(InvalidTicket) as info:
        parse_ticket_json(b'{"subject": "x", "custom_fields": {"n": 1e999}}')
    assert fields(info.value) == ["custom_fields.n"]
    with pytest.raises(InvalidTicket) as info:
        parse_ticket_json(b'{"subject": "bad \\ud800 surrogate"}')
    assert fields(info.value) == ["subject"]


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        (b"[" * 1000 + b"]" * 1000, "body", "nests deeper"),
        (b"[" * 100_000, "body", "nests deeper"),
        (
            b'{"subject": "x", "custom_fields": ' + b'{"a": ' * 40 + b"1" + b"}" * 41,
            "custom_fields",
            "nests deeper",
        ),
        (
            b'{"subject": "x", "custom_fields": {"n": ' + b"9" * 5000 + b"}}",
            "body",
            "integer longer than 64",
        ),
        (
            b'{"subject": "x", "custom_fields": {"n": ' + b"9" * 65 + b"}}",
            "body",
            "integer longer than 64",
        ),
        (
            b'{"subject": "x", "custom_fields": {"\\udc00": 1}}',
            "custom_fields.\\udc00",
            "surrogate",
        ),
        (b'{"subject": "x", "requester": {"name": "\\ud800"}}', "requester.name", "surrogate"),
    ],
)
def test_hostile_json_is_a_named_refusal_never_a_crash(body: bytes, field: str, says: str) -> None:
    with pytest.raises(InvalidTicket) as info:
        parse_ticket_json(body)
    assert fields(info.value)[0].startswith(field)
    assert says in str(info.value)
    # The refusal itself can always be sent back as JSON.
    json.dumps([p.as_dict() for p in info.value.problems]).encode("utf-8")


def test_decode_json_serves_other_bodies_with_their_own_limit() -> None:
    assert decode_json(b'{"agent": "ann"}', max_bytes=64) == {"agent": "ann"}
    with pytest.raises(TicketTooLarge):
        decode_json(b'{"agent": "' + b"a" * 100 + b'"}', max_bytes=64, what="feedback")
    assert quoted_name("x" * 500).endswith("…") and len(quoted_name("x" * 500)) == 64

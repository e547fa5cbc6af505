"""How a refused ticket is answered: one status and code for each kind of refusal, one body."""

from __future__ import annotations

import pytest

from core.errors import FieldProblem, InvalidTicket, TicketTooLarge, error_body, refusal


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (TicketTooLarge([FieldProblem("description", "over 64 KiB")]), (413, "ticket_too_large")),
        # Too large wins even when the body is what was too large.
        (TicketTooLarge([FieldProblem("body", "over 1 MiB")]), (413, "ticket_too_large")),
        (InvalidTicket([FieldProblem("body", "not JSON")]), (400, "malformed_body")),
        (
            InvalidTicket([FieldProblem("subject", "required"), FieldProblem("body", "x")]),
            (400, "malformed_body"),
        ),
        (InvalidTicket([FieldProblem("requester.email", "not an email")]), (422, "invalid_ticket")),
    ],
)
def test_each_refusal_has_its_status_and_code(
    exc: InvalidTicket, expected: tuple[int, str]
) -> None:
    assert refusal(exc) == expected


def test_the_error_body_names_every_problem() -> None:
    problems = [FieldProblem("subject", "required"), FieldProblem("channel", "unknown")]
    assert error_body("invalid_ticket", "2 problems", problems) == {
        "error": {
            "code": "invalid_ticket",
            "message": "2 problems",
            "problems": [
                {"field": "subject", "message": "required"},
                {"field": "channel", "message": "unknown"},
            ],
        }
    }
    assert error_body("ticket_not_found", "no ticket t1")["error"]["problems"] == []

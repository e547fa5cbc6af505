"""Reading a request body within a size limit, for every endpoint that takes a ticket."""

from __future__ import annotations

from fastapi import Request

from core.errors import FieldProblem, TicketTooLarge


def too_large(limit: int, what: str = "ticket") -> TicketTooLarge:
    """The error for a body (``what`` it holds) over ``limit`` bytes."""
    return TicketTooLarge([FieldProblem(what, f"is over the {limit}-byte limit")])


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with `TicketTooLarge` as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    # Read in chunks rather than `await request.body()`: a chunked upload has no Content-Length,
    # and an oversized one must be refused without first being buffered whole.
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large(limit)
    return bytes(body)

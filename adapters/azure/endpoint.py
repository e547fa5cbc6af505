"""Enriching through the Azure ML online endpoint instead of in the Function's own process.

httpx and the ticket schema's model are imported when an `EndpointEnricher` is built, not with
this module: the Functions app imports it whichever way it enriches, and enriching in process
(the default) needs neither (httpx alone, with the command-line extras it loads, is a few
hundred milliseconds of every cold start).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from core.errors import FieldProblem, InvalidTicket, TicketEnrichError, TicketTooLarge
from core.schema import Limits, parse_ticket

if TYPE_CHECKING:
    import httpx

    from core.schema import Ticket


class EndpointUnavailable(TicketEnrichError):
    """The online endpoint timed out, refused the connection or answered 5xx: retry later."""


class EndpointEnricher:
    """The `parse`/`enrich` half of `core.Enricher` that `core.intake.submit_ticket` uses,
    answered by the scoring endpoint (`adapters/azure/score.py`).

    Tickets are validated here first, with the same schema and limits, so an invalid one costs
    no round trip; the endpoint's own 4xx is mapped back to the same errors.
    """

    def __init__(
        self,
        url: str,
        key: str | None,
        *,
        limits: Limits | None = None,
        timeout_s: float = 10.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = url
        self.limits = limits or Limits()
        headers = {"content-type": "application/json"}
        if key:
            headers["authorization"] = f"Bearer {key}"
        if client is None:
            import httpx

            client = httpx.Client(timeout=timeout_s)
        self._client = client
        self._headers = headers

    def parse(self, ticket: Mapping[str, Any] | Ticket) -> Ticket:
        """Validate a ticket against the schema and the size limits."""
        from core.schema import Ticket

        return ticket if isinstance(ticket, Ticket) else parse_ticket(ticket, self.limits)

    def enrich(self, ticket: Mapping[str, Any] | Ticket) -> dict[str, Any]:
        """``{"ticket": {...}, "enrichment": {...}}`` from the endpoint."""
        import httpx

        valid = self.parse(ticket)
        headers = self._headers
        try:
            response = self._client.post(
                self.url, content=valid.model_dump_json(exclude_none=True), headers=headers
            )
        except httpx.HTTPError as exc:
            raise EndpointUnavailable(f"scoring endpoint: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 200:
            body: dict[str, Any] = response.json()
            return body
        if response.status_code in (400, 413, 422):
            problems = [
                FieldProblem(str(p.get("field", "ticket")), str(p.get("message", "")))
                for p in _problems(response)
            ] or [
                FieldProblem("ticket", f"refused by the scoring endpoint ({response.status_code})")
            ]
            raise (TicketTooLarge if response.status_code == 413 else InvalidTicket)(problems)
        raise EndpointUnavailable(f"scoring endpoint answered {response.status_code}")

    def close(self) -> None:
        """Release the HTTP connections."""
        self._client.close()


def _problems(response: httpx.Response) -> list[dict[str, Any]]:
    try:
        problems = response.json()["error"]["problems"]
    except (ValueError, KeyError, TypeError):
        return []
    return [p for p in problems if isinstance(p, dict)] if isinstance(problems, list) else []

"""What the helpdesks without an idempotency header (Freshdesk, Jira, Request Tracker) share.

Each created ticket carries a token derived from the idempotency key (``te-<hash>``, from
`FieldMapping.idempotency_tag`), and ``create_ticket`` first searches for a ticket carrying
it: a retry after a lost response returns the ticket the earlier attempt made instead of
making a second. A connector says where its tickets are created, how to search for the token,
which field of a response is the ticket's id and what an agent's link to it is.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from adapters.helpdesk.mapping import FieldMapping
from adapters.helpdesk.transport import ErrorMessage, first_hit, get_json, post_json
from core.errors import HelpdeskUnavailable
from core.ports import HelpdeskRef, StoredTicket


class SearchedHelpdesk:
    """The search-then-create half of a `HelpdeskClient`; a subclass adds ``payload`` (the
    JSON that creates a ticket), ``search`` and ``ticket_url``, and reads outcomes itself."""

    name: str
    create_path: ClassVar[str]
    # The field of a created (or found) ticket that is its id, and what it is called in errors.
    id_field: ClassVar[str] = "id"
    id_noun: ClassVar[str] = "a ticket id"

    # Set by the subclass's constructor.
    base_url: str
    mapping: FieldMapping
    error_message: ErrorMessage  # the helpdesk's own message in an error response
    _http: httpx.Client

    def payload(self, ticket: StoredTicket, idempotency_key: str) -> dict[str, Any]:
        """The JSON body that creates this ticket."""
        raise NotImplementedError

    def search(self, token: str) -> tuple[str, dict[str, Any], str]:
        """The search for tickets carrying ``token``: path, query parameters and the key of
        the response's list of hits."""
        raise NotImplementedError

    def ticket_url(self, ticket_id: str) -> str:
        """Where an agent opens the ticket."""
        raise NotImplementedError

    def find_ticket(self, idempotency_key: str) -> HelpdeskRef | None:
        """The ticket an earlier call with this key created, if the search sees one."""
        path, params, items = self.search(self.mapping.idempotency_tag(idempotency_key))
        hit = first_hit(
            self._http,
            self.name,
            path,
            params=params,
            items=items,
            error_message=self.error_message,
        )
        return self.ref(hit) if hit is not None else None

    def create_ticket(self, ticket: StoredTicket, idempotency_key: str) -> HelpdeskRef:
        """Return the ticket this key created before, else create it."""
        found = self.find_ticket(idempotency_key)
        if found is not None:
            return found
        body = post_json(
            self._http,
            self.name,
            self.create_path,
            self.payload(ticket, idempotency_key),
            error_message=self.error_message,
        )
        return self.ref(body)

    def read(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET one of the helpdesk's resources as JSON, its errors mapped as on create."""
        return get_json(
            self._http, self.name, path, params=params, error_message=self.error_message
        )

    def ref(self, body: Any) -> HelpdeskRef:
        """The reference to the ticket a create or search response describes."""
        try:
            ticket_id = str(body[self.id_field])
        except (KeyError, TypeError) as exc:
            raise HelpdeskUnavailable(f"{self.name}: response without {self.id_noun}") from exc
        return HelpdeskRef(self.name, ticket_id, self.ticket_url(ticket_id))

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

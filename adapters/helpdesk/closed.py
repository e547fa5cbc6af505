"""Reading closed tickets out of each helpdesk, a page at a time, for training.

Each reader asks its helpdesk's own bulk API for solved or closed tickets and turns one page of
the answer into `ClosedTicket`s and the cursor of the next page (None after the last), so that
`adapters.helpdesk.pull` can keep the cursor and resume an interrupted pull where it stopped:

- Zendesk: the cursor-based incremental ticket export
  (``GET /api/v2/incremental/tickets/cursor.json``, ``start_time`` then ``cursor``, until
  ``end_of_stream``), with ``include=metric_sets`` for each ticket's ``solved_at``.
- Freshdesk: the ticket list (``GET /api/v2/tickets``) filtered by ``updated_since`` and
  ordered by update, ``page`` after page, with ``include=description,stats`` for the text and
  ``resolved_at``; only statuses 4 (resolved) and 5 (closed) are kept. (Freshdesk's search API
  filters by status too, but stops after 10 pages of 30 tickets, too few to train on.)
- Jira: a JQL search for the project's issues in the done category, oldest first, with
  ``nextPageToken`` (Jira Cloud, ``/rest/api/2/search/jql``) or ``startAt`` (Data Center,
  ``/rest/api/2/search``).
- Request Tracker 5: a REST 2 TicketSQL search of the queue for resolved tickets by id, ``page``
  after page, and each ticket's first text attachment as its description (two JSON searches a
  page: the tickets' Create transactions, then their text/plain attachments).

A page whose body is not what the API documents raises `PageUnreadable`; HTTP failures raise the
transport's errors (`HelpdeskUnavailable` to retry, `HelpdeskRejected` for good).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from adapters.helpdesk.mapping import FieldMapping
from adapters.helpdesk.transport import ErrorMessage, send
from core.errors import HelpdeskError

PAGE_SIZE = 100


class PageUnreadable(HelpdeskError):
    """A page of closed tickets arrived but is not shaped as the helpdesk's API documents."""


@dataclass(frozen=True)
class ClosedTicket:
    """One solved or closed ticket as the helpdesk holds it, its priority the helpdesk's own."""

    id: str
    subject: str
    description: str
    priority: Any
    status: str
    created_at: str | None
    solved_at: str | None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Page:
    """The closed tickets of one page and where the next page starts (None: this was the last)."""

    tickets: list[ClosedTicket]
    cursor: str | None


class ClosedTicketReader(Protocol):
    """Reads a helpdesk's closed tickets page by page."""

    system: str
    mapping: FieldMapping

    def page(self, cursor: str | None) -> Page:
        """The page at ``cursor`` (None: the first)."""
        ...

    def label(self, priority: Any) -> str | None:
        """The product's label for a closing priority, None when it has none."""
        ...


def _get(
    http: httpx.Client,
    system: str,
    path: str,
    params: Mapping[str, Any],
    error_message: ErrorMessage,
) -> tuple[Any, httpx.Response]:
    response = send(http, system, "GET", path, params=dict(params), error_message=error_message)
    try:
        return response.json(), response
    except ValueError as exc:
        shown = response.text[:80].replace("\n", " ")
        raise PageUnreadable(
            f"{system}: HTTP {response.status_code} from {path} is not JSON ({exc}): {shown!r}"
        ) from None


def _items(body: Any, key: str, system: str, what: str) -> list[dict[str, Any]]:
    items = body.get(key) if isinstance(body, dict) else body if key == "" else None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        shown = json.dumps(body)[:120] if not isinstance(body, str) else body[:120]
        raise PageUnreadable(f"{system}: {what} has no list of tickets under {key!r}: {shown}")
    return items


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _single_label(mapping: FieldMapping, priority: Any) -> str | None:
    labels = mapping.labels_for(priority)
    return labels[0] if len(labels) == 1 else None


class _ClosedSource:
    """What every helpdesk's closed-ticket source holds: the HTTP client, the priority mapping
    the push uses, how to read the helpdesk's error bodies, and the page size."""

    def __init__(
        self,
        http: httpx.Client,
        mapping: FieldMapping,
        error_message: ErrorMessage,
        per_page: int = PAGE_SIZE,
    ) -> None:
        self.http = http
        self.mapping = mapping
        self.error_message = error_message
        self.per_page = per_page

    def label(self, priority: Any) -> str | None:
        """The helpdesk's priority back onto the product's labels, when exactly one fits."""
        return _single_label(self.mapping, priority)


class ZendeskClosed(_ClosedSource):
    """Solved and closed Zendesk tickets from the incremental ticket export."""

    system = "zendesk"
    path = "/api/v2/incremental/tickets/cursor.json"

    def page(self, cursor: str | None) -> Page:
        """One page of the export; ``end_of_stream`` ends it."""
        params: dict[str, Any] = {"include": "metric_sets", "per_page": self.per_page}
        params.update({"cursor": cursor} if cursor else {"start_time": 0})
        body, _ = _get(self.http, self.system, self.path, params, self.error_message)
        tickets = _items(body, "tickets", self.system, "the incremental export")
        solved = {
            str(m.get("ticket_id")): m.get("solved_at")
            for m in body.get("metric_sets") or []
            if isinstance(m, dict)
        }
        closed = [
            ClosedTicket(
                id=str(t.get("id")),
                subject=_text(t.get("subject")),
                description=_text(t.get("description")),
                priority=t.get("priority"),
                status=_text(t.get("status")),
                created_at=t.get("created_at"),
                solved_at=solved.get(str(t.get("id"))) or t.get("updated_at"),
                fields={
                    str(f["id"]): f.get("value")
                    for f in t.get("custom_fields") or []
                    if isinstance(f, dict) and "id" in f and f.get("value") not in (None, "")
                },
            )
            for t in tickets
            if t.get("status") in ("solved", "closed")
        ]
        after = body.get("after_cursor")
        if body.get("end_of_stream") or not after:
            return Page(closed, None)
        return Page(closed, str(after))


class FreshdeskClosed(_ClosedSource):
    """Resolved and closed Freshdesk tickets from the ticket list, oldest update first."""

    system = "freshdesk"
    path = "/api/v2/tickets"
    since = "2000-01-01T00:00:00Z"

    def page(self, cursor: str | None) -> Page:
        """One page of the list; a short page, or one without a ``next`` link, is the last."""
        number = int(cursor) if cursor else 1
        params = {
            "updated_since": self.since,
            "order_by": "updated_at",
            "order_type": "asc",
            "include": "description,stats",
            "per_page": self.per_page,
            "page": number,
        }
        body, response = _get(self.http, self.system, self.path, params, self.error_message)
        tickets = _items(body, "", self.system, f"page {number} of the ticket list")
        closed = []
        for t in tickets:
            if t.get("status") not in (4, 5):
                continue
            found = t.get("stats")
            stats: dict[str, Any] = found if isinstance(found, dict) else {}
            closed.append(
                ClosedTicket(
                    id=str(t.get("id")),
                    subject=_text(t.get("subject")),
                    description=_text(t.get("description_text") or t.get("description")),
                    priority=t.get("priority"),
                    status={4: "resolved", 5: "closed"}[t["status"]],
                    created_at=t.get("created_at"),
                    solved_at=stats.get("resolved_at") or stats.get("closed_at"),
                    fields={
                        **{k: v for k in ("type", "source") if (v := t.get(k)) is not None},
                        **{
                            k: v
                            for k, v in (t.get("custom_fields") or {}).items()
                            if v not in (None, "")
                        },
                    },
                )
            )
        more = "next" in response.links or len(tickets) >= self.per_page
        return Page(closed, str(number + 1) if more and tickets else None)


class JiraClosed(_ClosedSource):
    """A project's Jira issues in the done category, oldest first, by JQL."""

    system = "jira"
    fields = "summary,description,priority,status,created,resolutiondate,issuetype,components"

    def __init__(
        self,
        http: httpx.Client,
        mapping: FieldMapping,
        error_message: ErrorMessage,
        project_key: str,
        search_path: str,
        per_page: int = PAGE_SIZE,
    ) -> None:
        super().__init__(http, mapping, error_message, per_page)
        self.project_key = project_key
        self.search_path = search_path

    def page(self, cursor: str | None) -> Page:
        """One page of the search: ``nextPageToken`` on Jira Cloud, ``startAt`` on Data Center."""
        project = self.project_key.replace("\\", "\\\\").replace('"', '\\"')
        params: dict[str, Any] = {
            "jql": f'project = "{project}" AND statusCategory = Done ORDER BY created ASC',
            "fields": self.fields,
            "maxResults": self.per_page,
        }
        kind, _, value = (cursor or "").partition(":")
        if kind == "token":
            params["nextPageToken"] = value
        elif kind == "at":
            params["startAt"] = int(value)
        body, _ = _get(self.http, self.system, self.search_path, params, self.error_message)
        issues = _items(body, "issues", self.system, "the JQL search")
        closed = []
        for issue in issues:
            f = issue.get("fields")
            if not isinstance(f, dict):
                raise PageUnreadable(f"{self.system}: issue {issue.get('key')} has no fields")
            priority = f.get("priority")
            status = f.get("status")
            kind_of = f.get("issuetype")
            closed.append(
                ClosedTicket(
                    id=_text(issue.get("key")),
                    subject=_text(f.get("summary")),
                    description=_text(f.get("description")),
                    priority=priority.get("name") if isinstance(priority, dict) else None,
                    status=_text(status.get("name") if isinstance(status, dict) else status),
                    created_at=f.get("created"),
                    solved_at=f.get("resolutiondate"),
                    fields={
                        k: v
                        for k, v in {
                            "issuetype": kind_of.get("name") if isinstance(kind_of, dict) else None,
                            "components": ",".join(
                                str(c.get("name"))
                                for c in f.get("components") or []
                                if isinstance(c, dict)
                            ),
                        }.items()
                        if v
                    },
                )
            )
        token = body.get("nextPageToken")
        if token and not body.get("isLast", False):
            return Page(closed, f"token:{token}")
        total = body.get("total")
        start = int(body.get("startAt") or 0)
        if isinstance(total, int) and issues and start + len(issues) < total:
            return Page(closed, f"at:{start + len(issues)}")
        return Page(closed, None)


class RTClosed(_ClosedSource):
    """A Request Tracker queue's resolved tickets, by id, with their first text attachment."""

    system = "rt"
    path = "/REST/2.0/tickets"

    def __init__(
        self,
        http: httpx.Client,
        mapping: FieldMapping,
        error_message: ErrorMessage,
        queue: str,
        per_page: int = PAGE_SIZE,
    ) -> None:
        super().__init__(http, mapping, error_message, per_page)
        self.queue = queue

    def page(self, cursor: str | None) -> Page:
        """One page of the TicketSQL search; ``pages`` says how many there are."""
        number = int(cursor) if cursor else 1
        queue = self.queue.replace("\\", "\\\\").replace("'", "\\'")
        params = {
            "query": f"Queue = '{queue}' AND Status = 'resolved'",
            "fields": "Subject,Priority,Status,Created,Resolved",
            "orderby": "id",
            "order": "ASC",
            "per_page": self.per_page,
            "page": number,
        }
        body, _ = _get(self.http, self.system, self.path, params, self.error_message)
        items = _items(body, "items", self.system, f"page {number} of the search")
        descriptions = self._first_texts([_text(t.get("id")) for t in items])
        closed = [
            ClosedTicket(
                id=_text(t.get("id")),
                subject=_text(t.get("Subject")),
                description=descriptions.get(_text(t.get("id")), ""),
                priority=t.get("Priority"),
                status=_text(t.get("Status")),
                created_at=t.get("Created"),
                solved_at=t.get("Resolved"),
                fields={"queue": self.queue},
            )
            for t in items
        ]
        pages = body.get("pages")
        more = isinstance(pages, int) and number < pages
        return Page(closed, str(number + 1) if more else None)

    def _search(self, collection: str, query: list[dict[str, Any]], fields: str) -> list[Any]:
        """Every item of a REST 2 JSON search (``POST /REST/2.0/<collection>``), page by page."""
        found: list[dict[str, Any]] = []
        number = 1
        while True:
            response = send(
                self.http,
                self.system,
                "POST",
                f"/REST/2.0/{collection}",
                params={"fields": fields, "per_page": PAGE_SIZE, "page": number},
                json=query,
                error_message=self.error_message,
            )
            try:
                body = response.json()
            except ValueError:
                what = f"the {collection} search"
                raise PageUnreadable(f"{self.system}: {what} is not JSON") from None
            found += _items(body, "items", self.system, f"the {collection} search")
            pages = body.get("pages")
            if not isinstance(pages, int) or number >= pages:
                return found
            number += 1

    def _first_texts(self, ticket_ids: list[str]) -> dict[str, str]:
        """Each ticket's first text/plain attachment, what its requestor wrote, in two searches
        for the whole page (its Create transactions, then their text attachments) rather than
        one request a ticket: RT checks the token on every request, which costs far more than
        the search itself."""
        if not ticket_ids:
            return {}
        created = self._search(
            "transactions",
            [
                {"field": "ObjectType", "value": "RT::Ticket"},
                {"field": "Type", "value": "Create"},
                {"field": "ObjectId", "operator": "IN", "value": [int(i) for i in ticket_ids]},
            ],
            "ObjectId",
        )
        ticket_of = {_text(t.get("id")): _text(t.get("ObjectId")) for t in created}
        if not ticket_of:
            return {}
        attachments = self._search(
            "attachments",
            [
                {"field": "TransactionId", "operator": "IN", "value": [int(i) for i in ticket_of]},
                {"field": "ContentType", "value": "text/plain"},
            ],
            "TransactionId,Content",
        )
        texts: dict[str, str] = {}
        for item in sorted(attachments, key=lambda a: int(_text(a.get("id")) or 0)):
            ticket = ticket_of.get(_text(item.get("TransactionId")))
            if ticket is not None and ticket not in texts and item.get("Content"):
                texts[ticket] = str(item["Content"])
        return texts

    def label(self, priority: Any) -> str | None:
        """The label of the highest configured RT priority the number reaches (90 urgent,
        70 high, 50 normal, 20 low by default; 1-19 low too); 0, RT's "not set", has none."""
        try:
            number = int(str(priority))
        except ValueError:
            return None
        if number <= 0:
            return None
        floors = sorted(
            ((int(v), label) for label, v in self.mapping.priorities.items() if str(v).isdigit()),
            reverse=True,
        )
        reached = [label for value, label in floors if number >= value]
        return reached[0] if reached else (floors[-1][1] if floors else None)


def closed_reader(client: object, per_page: int = PAGE_SIZE) -> ClosedTicketReader:
    """The reader of closed tickets for a connector built by `helpdesk_from_settings`: the same
    account, credentials, field mapping and HTTP client the push uses."""
    from adapters.helpdesk import freshdesk, jira, rt, zendesk

    # Pulling sends nothing, so the requester-minimising wrapper of the push is looked through.
    client = getattr(client, "inner", client)
    # The connectors' HTTP client and error parser are shared on purpose: one configuration.
    if isinstance(client, zendesk.ZendeskClient):
        return ZendeskClosed(client._http, client.mapping, zendesk._error_message, per_page)
    if isinstance(client, freshdesk.FreshdeskClient):
        return FreshdeskClosed(client._http, client.mapping, client.error_message, per_page)
    if isinstance(client, jira.JiraClient):
        return JiraClosed(
            client._http,
            client.mapping,
            client.error_message,
            client.project_key,
            client.search_path,
            per_page,
        )
    if isinstance(client, rt.RTClient):
        return RTClosed(client._http, client.mapping, client.error_message, client.queue, per_page)
    raise HelpdeskError(
        f"{getattr(client, 'name', type(client).__name__)} cannot be pulled from: closed tickets "
        "are read from zendesk, freshdesk, jira or rt"
    )

"""Zendesk, Freshdesk and Jira answering the bulk reads that training pulls closed tickets with,
shaped as their public API documentation shows them:

- Zendesk: ``GET /api/v2/incremental/tickets/cursor.json`` (``start_time`` or ``cursor``,
  ``per_page``, ``include=metric_sets``) → ``{"tickets", "metric_sets", "after_cursor",
  "after_url", "before_cursor", "before_url", "end_of_stream"}``.
- Freshdesk: ``GET /api/v2/tickets`` (``updated_since``, ``order_by``, ``order_type``,
  ``per_page``, ``page``, ``include=description,stats``) → a JSON list, with a ``Link: <…>;
  rel="next"`` header while more pages follow.
- Jira Cloud: ``GET /rest/api/2/search/jql`` (``jql``, ``fields``, ``maxResults``,
  ``nextPageToken``) → ``{"issues", "nextPageToken", "isLast"}``; Jira Data Center:
  ``GET /rest/api/2/search`` (``startAt``) → ``{"startAt", "maxResults", "total", "issues"}``.

They share the failure script of `helpdesk_fakes` (``fail_next_read``: 429 with Retry-After, 500,
503 with an HTTP date, "pass"), and ``garble_next_read`` answers 200 with a maintenance page.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from tests.integration.helpdesk_fakes import (
    FakeFreshdesk,
    FakeHelpdesk,
    FakeJira,
    FakeZendesk,
    Reply,
    Request,
)

GARBLED = "<html><body>Down for maintenance</body></html>"

# What each seeded ticket talks about, by the priority an agent finally gave it.
TEXTS = {
    "urgent": ("Production down for every user", "Nobody can log in since the deploy."),
    "high": ("Export times out for large accounts", "The monthly export stops after a minute."),
    "normal": ("Settings page does not save", "Pressing save does nothing on the form."),
    "low": ("Typo on the pricing page", "It says anual instead of annual."),
}
LABELS = ("urgent", "high", "normal", "low")
START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def seeded(n_closed: int, n_open: int, n_unset: int) -> list[tuple[int, str | None, bool]]:
    """(number, label or None for no priority, closed) for each seeded ticket, in time order."""
    rows: list[tuple[int, str | None, bool]] = []
    for i in range(n_closed):
        rows.append((i, LABELS[i % 4], True))
    for i in range(n_open):
        rows.append((n_closed + i, "urgent", False))
    for i in range(n_unset):
        rows.append((n_closed + n_open + i, None, True))
    return sorted(rows, key=lambda r: (r[0] * 7919) % 97)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Garbling(FakeHelpdesk):
    garbled = 0

    def garble_next_read(self, count: int = 1) -> None:
        self.garbled += count

    def maybe_garbled(self) -> Reply | None:
        if self.garbled:
            self.garbled -= 1
            return Reply(200, GARBLED)
        return None


class ZendeskExport(FakeZendesk, _Garbling):
    """Zendesk with ``seed``ed tickets in its incremental export."""

    ZENDESK_PRIORITY: ClassVar[dict[str, str]] = {
        "urgent": "urgent",
        "high": "high",
        "normal": "normal",
        "low": "low",
    }

    def seed(self, rows: list[tuple[int, str | None, bool]]) -> None:
        self.exported: list[dict[str, Any]] = []
        for number, label, closed in rows:
            created = START + timedelta(hours=5 * number)
            subject, description = TEXTS[label or "normal"]
            self.exported.append(
                {
                    "url": f"{self.base_url}/api/v2/tickets/{1000 + number}.json",
                    "id": 1000 + number,
                    "created_at": _iso(created),
                    "updated_at": _iso(created + timedelta(hours=30)),
                    "type": "incident",
                    "subject": f"{subject} ({number})",
                    "raw_subject": f"{subject} ({number})",
                    "description": f"{description} Reach me at bo{number}@example.com.",
                    "priority": None if label is None else self.ZENDESK_PRIORITY[label],
                    "status": "solved" if closed else "open",
                    "requester_id": 20,
                    "submitter_id": 20,
                    "assignee_id": 30,
                    "tags": ["web"],
                    "custom_fields": [{"id": 360001, "value": "billing"}, {"id": 360002}],
                    "via": {"channel": "web"},
                }
            )

    def answer(self, request: Request) -> Reply:
        if request.path != "/api/v2/incremental/tickets/cursor.json":
            return super().answer(request)
        garbled = self.maybe_garbled()
        if garbled is not None:
            return garbled
        per_page = int(request.query.get("per_page", "1000"))
        if "cursor" in request.query:
            start = int(base64.b64decode(request.query["cursor"]).decode())
        elif request.query.get("start_time") is not None:
            start = 0
        else:
            return Reply(400, {"error": "InvalidValue", "description": "start_time is missing"})
        page = self.exported[start : start + per_page]
        end = start + len(page)
        cursor = base64.b64encode(str(end).encode()).decode()
        body: dict[str, Any] = {
            "tickets": page,
            "after_cursor": cursor,
            "after_url": f"{self.base_url}{request.path}?cursor={cursor}",
            "before_cursor": None,
            "before_url": None,
            "end_of_stream": end >= len(self.exported),
        }
        if request.query.get("include") == "metric_sets":
            body["metric_sets"] = [
                {"ticket_id": t["id"], "solved_at": t["updated_at"], "reopens": 0}
                for t in page
                if t["status"] in ("solved", "closed")
            ]
        return Reply(200, body)


class FreshdeskList(FakeFreshdesk, _Garbling):
    """Freshdesk with ``seed``ed tickets in its ticket list."""

    FRESHDESK_PRIORITY: ClassVar[dict[str, int]] = {"urgent": 4, "high": 3, "normal": 2, "low": 1}

    def seed(self, rows: list[tuple[int, str | None, bool]]) -> None:
        self.listed: list[dict[str, Any]] = []
        for number, label, closed in rows:
            created = START + timedelta(hours=5 * number)
            subject, description = TEXTS[label or "normal"]
            self.listed.append(
                {
                    "id": 1 + number,
                    "subject": f"{subject} ({number})",
                    "description": f"<div>{description} Call +44 20 7946 0{number:03d}.</div>",
                    "description_text": f"{description} Call +44 20 7946 0{number:03d}.",
                    "status": 5 if closed else 2,
                    # Freshdesk requires a priority; a ticket "without" one is played by None.
                    "priority": None if label is None else self.FRESHDESK_PRIORITY[label],
                    "source": 2,
                    "type": "Incident",
                    "requester_id": 77,
                    "created_at": _iso(created),
                    "updated_at": _iso(created + timedelta(hours=30)),
                    "due_by": _iso(created + timedelta(days=3)),
                    "tags": [],
                    "custom_fields": {"cf_product": "Payroll", "cf_region": None},
                    "stats": {
                        "resolved_at": _iso(created + timedelta(hours=20)) if closed else None,
                        "closed_at": _iso(created + timedelta(hours=30)) if closed else None,
                        "first_responded_at": _iso(created + timedelta(hours=1)),
                    },
                }
            )
        self.listed.sort(key=lambda t: t["updated_at"])

    def answer(self, request: Request) -> Reply:
        if (request.method, request.path) != ("GET", "/api/v2/tickets"):
            return super().answer(request)
        garbled = self.maybe_garbled()
        if garbled is not None:
            return garbled
        if request.query.get("order_by") != "updated_at" or "updated_since" not in request.query:
            return Reply(400, {"description": "Validation failed", "errors": []})
        per_page = min(100, int(request.query.get("per_page", "30")))
        number = int(request.query.get("page", "1"))
        page = self.listed[(number - 1) * per_page : number * per_page]
        headers = {}
        if number * per_page < len(self.listed):
            headers["Link"] = (
                f'<{self.base_url}/api/v2/tickets?per_page={per_page}&page={number + 1}>; rel="next"'
            )
        shown = [
            {k: v for k, v in t.items() if k not in ("description", "description_text", "stats")}
            | (
                {"description": t["description"], "description_text": t["description_text"]}
                if "description" in request.query.get("include", "")
                else {}
            )
            | ({"stats": t["stats"]} if "stats" in request.query.get("include", "") else {})
            for t in page
        ]
        return Reply(200, shown, headers)


class JiraSearch(FakeJira, _Garbling):
    """Jira with ``seed``ed issues, searched by JQL (Cloud's tokens or Data Center's startAt)."""

    JIRA_PRIORITY: ClassVar[dict[str, str]] = {
        "urgent": "Highest",
        "high": "High",
        "normal": "Medium",
        "low": "Low",
    }
    DONE_JQL = 'project = "SUP" AND statusCategory = Done ORDER BY created ASC'

    def seed(self, rows: list[tuple[int, str | None, bool]]) -> None:
        self.issues: list[dict[str, Any]] = []
        for number, label, closed in sorted(rows):
            created = START + timedelta(hours=5 * number)
            subject, description = TEXTS[label or "normal"]
            self.issues.append(
                {
                    "id": str(20000 + number),
                    "key": f"SUP-{1 + number}",
                    "self": f"{self.base_url}/rest/api/2/issue/{20000 + number}",
                    "fields": {
                        "summary": f"{subject} ({number})",
                        "description": f"{description} Token: sk-live-{number:04d}abcdefabcdef",
                        "priority": None
                        if label is None
                        else {"name": self.JIRA_PRIORITY[label], "id": "3"},
                        "status": {
                            "name": "Done" if closed else "In Progress",
                            "statusCategory": {"key": "done" if closed else "indeterminate"},
                        },
                        "created": created.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
                        "resolutiondate": (created + timedelta(hours=20)).strftime(
                            "%Y-%m-%dT%H:%M:%S.000+0000"
                        )
                        if closed
                        else None,
                        "issuetype": {"name": "Service Request"},
                        "components": [{"name": "Billing"}],
                    },
                }
            )

    def answer(self, request: Request) -> Reply:
        cloud = request.path == "/rest/api/2/search/jql"
        if not (cloud or request.path == "/rest/api/2/search") or request.method != "GET":
            return super().answer(request)
        if request.query.get("jql") != self.DONE_JQL:
            return super().answer(request)
        garbled = self.maybe_garbled()
        if garbled is not None:
            return garbled
        done = [i for i in self.issues if i["fields"]["status"]["statusCategory"]["key"] == "done"]
        size = int(request.query.get("maxResults", "50"))
        if cloud:
            start = int(request.query.get("nextPageToken", "0").removeprefix("tok-") or 0)
        else:
            start = int(request.query.get("startAt", "0"))
        page = done[start : start + size]
        if cloud:
            body: dict[str, Any] = {"issues": page, "isLast": start + size >= len(done)}
            if not body["isLast"]:
                body["nextPageToken"] = f"tok-{start + size}"
            return Reply(200, body)
        return Reply(
            200, {"startAt": start, "maxResults": size, "total": len(done), "issues": page}
        )

"""Local HTTP servers that answer as Zendesk, Freshdesk and Jira document their APIs.

Each fake checks authentication and the payload's shape, keeps the tickets it created, records
every request, and can be told to fail its next ticket creation in the ways real helpdesks do:
429 with Retry-After, 5xx, a response slower than the client's timeout, or a connection dropped
after the request was received (the ticket is created in both of the last two, as happens when
only the response is lost).

They also answer a read of one ticket (``GET``) as the real APIs do, so that the connectors can
learn how a ticket closed; `settle` plays the agent who closes it (status and priority), and
`fail_next_read` fails the next reads the same ways.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

SLOW_LIMIT_SECONDS = 30.0


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class FakeHelpdesk:
    """State and failure script shared by the fakes; subclasses implement `answer`."""

    def __init__(self) -> None:
        self.base_url = ""
        self.tickets: list[dict[str, Any]] = []
        self.requests: list[Request] = []
        self.failures: list[str] = []
        self.read_failures: list[str] = []
        self.release = threading.Event()
        self.lock = threading.Lock()

    def fail_next_create(self, *failures: str) -> None:
        """Fail the next creations with "429", "500", "503-date", "slow" or "drop"."""
        self.failures.extend(failures)

    def fail_next_read(self, *failures: str) -> None:
        """Fail the next GET requests with "429", "500" or "503-date" ("pass" lets one through)."""
        self.read_failures.extend(failures)

    def settle(self, ticket_id: str, **fields: Any) -> None:
        """Change a created ticket as an agent would (status, priority); subclasses say how."""
        raise NotImplementedError

    def creates(self) -> list[Request]:
        return [r for r in self.requests if r.method == "POST"]

    def authorised(self, request: Request) -> bool:
        raise NotImplementedError

    def answer(self, request: Request) -> Reply:
        raise NotImplementedError

    def handle(self, request: Request) -> tuple[Reply | None, bool]:
        """The reply, and whether to hold it until released (slow); None drops the connection."""
        with self.lock:
            self.requests.append(request)
            if not self.authorised(request):
                return self.unauthorised(), False
            failure = self.failures.pop(0) if request.method == "POST" and self.failures else None
            if request.method == "GET" and self.read_failures:
                failure = self.read_failures.pop(0)
            if failure == "429":
                return Reply(429, {"error": "rate limited"}, {"Retry-After": "7"}), False
            if failure == "500":
                return Reply(500, {"error": "internal"}), False
            if failure == "503-date":
                return Reply(503, {"error": "maintenance"}, {"Retry-After": _http_date(60)}), False
            reply = self.answer(request)
            if failure == "drop":
                return None, False
            return reply, failure == "slow"

    def unauthorised(self) -> Reply:
        return Reply(401, {"error": "Couldn't authenticate you"})


def _http_date(seconds_from_now: int) -> str:
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds_from_now), usegmt=True)


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class FakeZendesk(FakeHelpdesk):
    """``POST /api/v2/tickets.json`` with ``Idempotency-Key``; 422 RecordInvalid on bad fields."""

    EMAIL, TOKEN = "agent@example.com", "z-token"
    PRIORITIES = frozenset({"urgent", "high", "normal", "low"})

    def __init__(self) -> None:
        super().__init__()
        self.by_key: dict[str, Reply] = {}

    def authorised(self, request: Request) -> bool:
        return request.headers.get("authorization") == basic_auth(f"{self.EMAIL}/token", self.TOKEN)

    def settle(self, ticket_id: str, **fields: Any) -> None:
        """``status`` (new, open, pending, hold, solved, closed) and ``priority``."""
        with self.lock:
            next(t for t in self.tickets if str(t["id"]) == ticket_id).update(fields)

    def answer(self, request: Request) -> Reply:
        read = re.fullmatch(r"/api/v2/tickets/(\d+)(?:\.json)?", request.path)
        if request.method == "GET" and read is not None:
            found = [t for t in self.tickets if str(t["id"]) == read.group(1)]
            if not found:
                return Reply(404, {"error": "RecordNotFound", "description": "Not found"})
            return Reply(200, {"ticket": found[0]})
        if (request.method, request.path) != ("POST", "/api/v2/tickets.json"):
            return Reply(404, {"error": "InvalidEndpoint"})
        key = request.headers.get("idempotency-key")
        if key in self.by_key:
            first = self.by_key[key]
            return Reply(first.status, first.body, {"x-idempotency-lookup": "hit"})
        ticket = request.body.get("ticket") if isinstance(request.body, dict) else None
        details: dict[str, list[dict[str, str]]] = {}
        if not isinstance(ticket, dict) or not isinstance(
            ticket.get("comment", {}).get("body"), str
        ):
            details["base"] = [
                {"description": "Description: cannot be blank", "error": "BlankValue"}
            ]
        else:
            if ticket.get("priority", "normal") not in self.PRIORITIES:
                details["priority"] = [
                    {
                        "description": f"Priority: {ticket['priority']} is not valid",
                        "error": "InvalidValue",
                    }
                ]
            if any(" " in t for t in ticket.get("tags", [])):
                details["tags"] = [
                    {"description": "Tags: cannot contain spaces", "error": "InvalidValue"}
                ]
            if "@" not in ticket.get("requester", {}).get("email", "@"):
                details["requester"] = [
                    {"description": "Requester: Email is invalid", "error": "InvalidValue"}
                ]
        if details:
            return Reply(
                422,
                {
                    "error": "RecordInvalid",
                    "description": "Record validation errors",
                    "details": details,
                },
            )
        assert isinstance(ticket, dict)
        ticket_id = 35436 + len(self.tickets)
        stored = {
            **ticket,
            "id": ticket_id,
            "url": f"{self.base_url}/api/v2/tickets/{ticket_id}.json",
            "status": "new",
            "description": ticket["comment"]["body"],
        }
        self.tickets.append(stored)
        reply = Reply(201, {"ticket": stored}, {"Location": stored["url"]})
        if key is not None:
            self.by_key[key] = reply
        return reply


class FakeFreshdesk(FakeHelpdesk):
    """``POST /api/v2/tickets`` and ``GET /api/v2/search/tickets?query="tag:'…'"``."""

    API_KEY = "f-key"
    _TAG_QUERY = re.compile(r"^\"tag:'([^']+)'\"$")

    def authorised(self, request: Request) -> bool:
        return request.headers.get("authorization") == basic_auth(self.API_KEY, "X")

    def unauthorised(self) -> Reply:
        return Reply(
            401,
            {
                "code": "invalid_credentials",
                "message": "You have to be logged in to perform this action.",
            },
        )

    def settle(self, ticket_id: str, **fields: Any) -> None:
        """``status`` (2 open, 3 pending, 4 resolved, 5 closed) and ``priority`` (1–4)."""
        with self.lock:
            next(t for t in self.tickets if str(t["id"]) == ticket_id).update(fields)

    def answer(self, request: Request) -> Reply:
        read = re.fullmatch(r"/api/v2/tickets/(\d+)", request.path)
        if request.method == "GET" and read is not None:
            found = [t for t in self.tickets if str(t["id"]) == read.group(1)]
            if not found:
                return Reply(404, {"code": "resource_not_found", "message": "Not found"})
            return Reply(200, found[0])
        if (request.method, request.path) == ("GET", "/api/v2/search/tickets"):
            match = self._TAG_QUERY.match(request.query.get("query", ""))
            if match is None:
                return Reply(
                    400,
                    {
                        "description": "Validation failed",
                        "errors": [
                            {
                                "field": "query",
                                "message": "Given query is invalid",
                                "code": "invalid_value",
                            }
                        ],
                    },
                )
            results = [t for t in self.tickets if match.group(1) in t["tags"]]
            return Reply(200, {"results": results, "total": len(results)})
        if (request.method, request.path) != ("POST", "/api/v2/tickets"):
            return Reply(404, {"code": "invalid_url"})
        body = request.body if isinstance(request.body, dict) else {}
        errors = []
        if not body.get("email"):
            errors.append(
                {
                    "field": "requester_id",
                    "message": "Please fill at least 1 of requester_id, phone, email, twitter_id, facebook_id, unique_external_id fields",
                    "code": "missing_field",
                }
            )
        if body.get("priority") not in (1, 2, 3, 4):
            errors.append(
                {
                    "field": "priority",
                    "message": "It should be one of these values: '1,2,3,4'",
                    "code": "invalid_value",
                }
            )
        if body.get("status") not in (2, 3, 4, 5):
            errors.append(
                {
                    "field": "status",
                    "message": "It should be one of these values: '2,3,4,5'",
                    "code": "invalid_value",
                }
            )
        if not isinstance(body.get("description"), str) or not body.get("subject"):
            errors.append(
                {
                    "field": "description",
                    "message": "It should be a/an String",
                    "code": "missing_field",
                }
            )
        if errors:
            return Reply(400, {"description": "Validation failed", "errors": errors})
        ticket_id = 1 + len(self.tickets)
        stored = {
            **body,
            "id": ticket_id,
            "tags": body.get("tags", []),
            "custom_fields": body.get("custom_fields", {}),
        }
        self.tickets.append(stored)
        return Reply(201, stored, {"Location": f"{self.base_url}/api/v2/tickets/{ticket_id}"})


# Jira's status categories (new, indeterminate, done) of the statuses the fake's workflow has.
_JIRA_CATEGORIES = {
    "To Do": "new",
    "In Progress": "indeterminate",
    "Done": "done",
    "Resolved": "done",
}


class FakeJira(FakeHelpdesk):
    """``POST /rest/api/2/issue`` and ``GET /rest/api/2/search/jql`` with a labels JQL clause."""

    EMAIL, TOKEN, PROJECT = "ann@example.com", "j-token", "SUP"
    PRIORITIES = frozenset({"Highest", "High", "Medium", "Low", "Lowest"})
    _LABEL_JQL = re.compile(r'^project = "([^"]+)" AND labels = "([^"]+)"$')

    def authorised(self, request: Request) -> bool:
        return request.headers.get("authorization") == basic_auth(self.EMAIL, self.TOKEN)

    def unauthorised(self) -> Reply:
        return Reply(
            401,
            {
                "errorMessages": [
                    "You are not authenticated. Authentication required to perform this operation."
                ],
                "errors": {},
            },
        )

    def settle(self, ticket_id: str, **fields: Any) -> None:
        """``status`` (To Do, In Progress, Done or Resolved) and ``priority``."""
        with self.lock:
            issue = next(i for i in self.tickets if ticket_id in (i["key"], i["id"]))
            if "status" in fields:
                issue["status"] = fields["status"]
            if "priority" in fields:
                issue["fields"]["priority"] = {"name": fields["priority"]}

    def answer(self, request: Request) -> Reply:
        read = re.fullmatch(r"/rest/api/2/issue/([^/]+)", request.path)
        if request.method == "GET" and read is not None:
            found = [i for i in self.tickets if read.group(1) in (i["key"], i["id"])]
            if not found:
                message = "Issue does not exist or you do not have permission to see it."
                return Reply(404, {"errorMessages": [message], "errors": {}})
            issue = found[0]
            status = issue.get("status", "To Do")
            every = {
                "status": {
                    "name": status,
                    "statusCategory": {"key": _JIRA_CATEGORIES[status], "name": status},
                },
                "priority": issue["fields"].get("priority"),
            }
            wanted = request.query.get("fields")
            fields = {k: v for k, v in every.items() if wanted is None or k in wanted.split(",")}
            return Reply(200, {"id": issue["id"], "key": issue["key"], "fields": fields})
        if (request.method, request.path) == ("GET", "/rest/api/2/search/jql"):
            match = self._LABEL_JQL.match(request.query.get("jql", ""))
            if match is None:
                return Reply(400, {"errorMessages": ["Error in the JQL Query"], "errors": {}})
            issues = [
                {"id": i["id"], "key": i["key"], "self": i["self"]}
                for i in self.tickets
                if i["fields"]["project"]["key"] == match.group(1)
                and match.group(2) in i["fields"]["labels"]
            ]
            return Reply(
                200,
                {"issues": issues[: int(request.query.get("maxResults", "50"))], "isLast": True},
            )
        if (request.method, request.path) != ("POST", "/rest/api/2/issue"):
            return Reply(404, {"errorMessages": ["Not found"], "errors": {}})
        fields = request.body.get("fields", {}) if isinstance(request.body, dict) else {}
        errors = {}
        if fields.get("project", {}).get("key") != self.PROJECT:
            errors["project"] = "Specify a valid project ID or key"
        if fields.get("issuetype", {}).get("name") not in {"Task", "Service Request"}:
            errors["issuetype"] = "Specify an issue type"
        if not fields.get("summary"):
            errors["summary"] = "You must specify a summary of the issue."
        if "priority" in fields and fields["priority"].get("name") not in self.PRIORITIES:
            errors["priority"] = "Specify a valid 'id' or 'name' for Priority"
        if any(" " in label for label in fields.get("labels", [])):
            errors["labels"] = "The label can't contain spaces."
        if errors:
            return Reply(400, {"errorMessages": [], "errors": errors})
        issue_id = str(10000 + len(self.tickets))
        key = f"{self.PROJECT}-{1 + len(self.tickets)}"
        issue = {"id": issue_id, "key": key, "self": f"{self.base_url}/rest/api/2/issue/{issue_id}"}
        self.tickets.append({**issue, "fields": fields})
        return Reply(201, issue)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        request = Request(
            self.command,
            url.path,
            {k: v[0] for k, v in parse_qs(url.query).items()},
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        reply, slow = self.server.fake.handle(request)
        if reply is None:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if slow:
            self.server.fake.release.wait(SLOW_LIMIT_SECONDS)
        data = json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up waiting for a slow reply

    do_GET = _serve
    do_POST = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeHelpdesk) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


@contextmanager
def serving(fake: FakeHelpdesk) -> Iterator[FakeHelpdesk]:
    """Run the fake on a free loopback port until the block ends."""
    server = _Server(fake)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.release.set()
        server.shutdown()
        server.server_close()
        thread.join()

"""Jira (and Jira Service Management projects): creates issues through the REST API v2.

Plain httpx rather than the ``jira`` package: its session retries 429 and 5xx itself, sleeping
in the caller, which would hide ``Retry-After`` from the outbox that owns retries, and it wraps
every status in one ``JIRAError``. Two endpoints are used; mapping them directly is shorter.

Idempotency: Jira has no idempotency header, so the issue carries a label derived from the key
(``te-<hash>``) and ``create_ticket`` first searches with JQL for an issue with that label.
Jira's search index is eventually consistent: a retry within moments of a creation whose
response was lost may not see it yet, so the outbox should not retry immediately.

Outcomes: ``ticket_outcome`` reads ``GET /rest/api/2/issue/{key}?fields=status,priority``; an
issue is closed once its status is in the ``done`` category (whatever the workflow names it), and
its priority's name maps back onto the product's labels.

``search_path`` is ``/rest/api/2/search/jql`` on Jira Cloud (the older ``/rest/api/2/search``
is withdrawn there) and ``/rest/api/2/search`` on Jira Data Center; both answer
``{"issues": [{"id", "key"}, ...]}``.
"""

from __future__ import annotations

from typing import Any

import httpx

from adapters.helpdesk.mapping import FieldMapping, subject_of
from adapters.helpdesk.searched import SearchedHelpdesk
from adapters.helpdesk.transport import DEFAULT_TIMEOUT_SECONDS, build_client, path_segment
from core.errors import HelpdeskError
from core.ports import HelpdeskOutcome, HelpdeskRef, StoredTicket

SYSTEM = "jira"
CLOUD_SEARCH_PATH = "/rest/api/2/search/jql"
DATA_CENTER_SEARCH_PATH = "/rest/api/2/search"


class JiraClient(SearchedHelpdesk):
    """A `HelpdeskClient` that creates issues in one Jira project."""

    name = SYSTEM
    create_path = "/rest/api/2/issue"
    id_field = "key"
    id_noun = "an issue key"

    def __init__(
        self,
        base_url: str,
        email: str,
        api_token: str,
        project_key: str,
        *,
        issue_type: str = "Task",
        mapping: FieldMapping | None = None,
        search_path: str = CLOUD_SEARCH_PATH,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.project_key = project_key
        self.issue_type = issue_type
        self.mapping = mapping or FieldMapping.for_system(SYSTEM)
        self.search_path = search_path
        self.error_message = _error_message
        self._http = build_client(
            self.base_url,
            auth=(email, api_token),
            headers={"Content-Type": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    def payload(self, ticket: StoredTicket, idempotency_key: str) -> dict[str, Any]:
        """The JSON body that creates this issue."""
        fields: dict[str, Any] = {
            "project": {"key": self.project_key},
            "issuetype": {"name": self.issue_type},
            "summary": subject_of(ticket, max_chars=255),
            "description": self.mapping.description(ticket),
            "labels": self.mapping.tags(ticket.enrichment, idempotency_key),
        }
        priority = self.mapping.priority_for(ticket.enrichment)
        if priority is not None:
            fields["priority"] = {"name": str(priority)}
        fields.update(self.mapping.custom_fields(ticket.enrichment))
        return {"fields": fields}

    def search(self, token: str) -> tuple[str, dict[str, Any], str]:
        """A JQL search of the project for issues with the label."""
        jql = f'project = "{self.project_key}" AND labels = "{token}"'
        return self.search_path, {"jql": jql, "fields": "key", "maxResults": 1}, "issues"

    def ticket_url(self, ticket_id: str) -> str:
        """The issue's page."""
        return f"{self.base_url}/browse/{ticket_id}"

    def ticket_outcome(self, ref: HelpdeskRef) -> HelpdeskOutcome:
        """The issue's status and priority: closed once its status is in the done category."""
        body = self.read(f"/rest/api/2/issue/{path_segment(ref.id)}", {"fields": "status,priority"})
        fields = body.get("fields") if isinstance(body, dict) else None
        status = fields.get("status") if isinstance(fields, dict) else None
        name = status.get("name") if isinstance(status, dict) else None
        if not isinstance(fields, dict) or not isinstance(name, str):
            raise HelpdeskError(f"{SYSTEM}: issue {ref.id} was read without a status")
        category = status.get("statusCategory") if isinstance(status, dict) else None
        priority = fields.get("priority")
        return self.mapping.outcome(
            ref,
            name,
            closed=isinstance(category, dict) and category.get("key") == "done",
            priority=priority.get("name") if isinstance(priority, dict) else None,
        )


def _error_message(body: Any) -> str | None:
    """Jira's errors: ``{"errorMessages": [...], "errors": {field: message}}``."""
    if not isinstance(body, dict):
        return None
    parts = [str(m) for m in body.get("errorMessages") or []]
    errors = body.get("errors")
    if isinstance(errors, dict):
        parts.extend(f"{field_name}: {message}" for field_name, message in errors.items())
    text = "; ".join(p for p in parts if p)
    return text or None

"""The Jira fakes the connector tests run against answer as Jira's published OpenAPI description
says: every reply of the pull (Cloud's token-paged `search/jql`, Data Center's `startAt`
search), the push (create, read back, search by label) and their error bodies is validated
against the schemas of `tests/corpus/schemas/jira-platform.json` (an unchanged extract of
Atlassian's Jira Cloud platform REST API description, Apache 2.0; see the README beside it).

Zendesk's and Freshdesk's fakes are not checked this way: Freshdesk publishes no schema, and
Zendesk's description states no licence for copies, so none is kept here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from tests.integration.helpdesk_fakes import FakeJira, basic_auth, serving
from tests.integration.pull_fakes import JiraSearch, seeded

SCHEMAS = Path(__file__).parents[1] / "corpus" / "schemas" / "jira-platform.json"
DOCUMENT_URI = "urn:jira-platform"


def _validator(name: str) -> Draft7Validator:
    document = json.loads(SCHEMAS.read_text())
    registry: Registry = Registry().with_resource(
        DOCUMENT_URI, Resource.from_contents(document, default_specification=DRAFT7)
    )
    return Draft7Validator(
        {"$ref": f"{DOCUMENT_URI}#/components/schemas/{name}"}, registry=registry
    )


def _check(name: str, body: Any) -> None:
    errors = sorted(_validator(name).iter_errors(body), key=lambda e: list(e.path))
    assert not errors, f"{name}: " + "; ".join(
        f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors[:5]
    )


@pytest.fixture()
def jira() -> Iterator[tuple[JiraSearch, httpx.Client]]:
    with serving(JiraSearch()) as fake:
        fake.seed(seeded(n_closed=7, n_open=2, n_unset=1))
        auth = {"Authorization": basic_auth(FakeJira.EMAIL, FakeJira.TOKEN)}
        with httpx.Client(base_url=fake.base_url, headers=auth, timeout=10) as client:
            yield fake, client


def _issue_fields(issue: dict[str, Any]) -> None:
    fields = issue["fields"]
    if fields.get("priority") is not None:
        _check("Priority", fields["priority"])
    if "status" in fields:
        _check("StatusDetails", fields["status"])


def test_cloud_search_pages_match_the_published_schema(
    jira: tuple[JiraSearch, httpx.Client],
) -> None:
    _, client = jira
    params: dict[str, str] = {"jql": JiraSearch.DONE_JQL, "maxResults": "3"}
    pages = 0
    while True:
        reply = client.get("/rest/api/2/search/jql", params=params)
        assert reply.status_code == 200
        page = reply.json()
        _check("SearchAndReconcileResults", page)
        for issue in page["issues"]:
            _issue_fields(issue)
        pages += 1
        if page["isLast"]:
            break
        params["nextPageToken"] = page["nextPageToken"]
    assert pages == 3  # 8 closed issues (one without a priority), three to a page


def test_data_center_search_pages_match_the_published_schema(
    jira: tuple[JiraSearch, httpx.Client],
) -> None:
    _, client = jira
    reply = client.get(
        "/rest/api/2/search", params={"jql": JiraSearch.DONE_JQL, "startAt": "3", "maxResults": "3"}
    )
    assert reply.status_code == 200
    _check("SearchResults", reply.json())
    assert reply.json()["startAt"] == 3


def test_create_read_and_label_search_match_the_published_schema(
    jira: tuple[JiraSearch, httpx.Client],
) -> None:
    _, client = jira
    fields = {
        "project": {"key": FakeJira.PROJECT},
        "issuetype": {"name": "Task"},
        "summary": "Printer on fire",
        "priority": {"name": "Highest"},
        "labels": ["te-abc"],
    }
    created = client.post("/rest/api/2/issue", json={"fields": fields})
    assert created.status_code == 201
    _check("CreatedIssue", created.json())
    read = client.get(f"/rest/api/2/issue/{created.json()['key']}")
    _check("IssueBean", read.json())
    _issue_fields(read.json())
    found = client.get(
        "/rest/api/2/search/jql",
        params={"jql": f'project = "{FakeJira.PROJECT}" AND labels = "te-abc"'},
    )
    _check("SearchAndReconcileResults", found.json())
    assert [i["key"] for i in found.json()["issues"]] == [created.json()["key"]]


def test_error_bodies_match_the_published_schema(jira: tuple[JiraSearch, httpx.Client]) -> None:
    fake, client = jira
    refused = client.post("/rest/api/2/issue", json={"fields": {"summary": ""}})
    assert refused.status_code == 400
    _check("ErrorCollection", refused.json())
    missing = client.get("/rest/api/2/issue/SUP-999")
    assert missing.status_code == 404
    _check("ErrorCollection", missing.json())
    with httpx.Client(base_url=fake.base_url, timeout=10) as anonymous:
        unauthorised = anonymous.get("/rest/api/2/search/jql", params={"jql": "x"})
    assert unauthorised.status_code == 401
    _check("ErrorCollection", unauthorised.json())


def test_the_check_catches_a_reply_off_the_schema() -> None:
    # A Cloud page whose token is a number, and an issue with a field Jira does not send.
    with pytest.raises(AssertionError, match="nextPageToken"):
        _check("SearchAndReconcileResults", {"issues": [], "isLast": False, "nextPageToken": 3})
    with pytest.raises(AssertionError, match="Additional properties"):
        _check("IssueBean", {"id": "1", "key": "SUP-1", "fields": {}, "summary": "x"})

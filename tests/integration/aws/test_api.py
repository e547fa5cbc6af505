"""API Gateway REST (payload 1.0) and HTTP (payload 2.0) events, as `sam local generate-event`
records them, through the Lambda handlers against moto's DynamoDB."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest

from adapters.aws import api
from tests.integration.aws.conftest import FakeLambdaContext, client, load_event
from tests.support import bad_ticket_bodies

TICKET = {
    "subject": "NameNode fails to start after upgrade",
    "description": "All DataNodes are down, the cluster is unusable.",
    "requester": {"email": "ann@example.com", "name": "Ann"},
    "external_id": "ZD-1042",
}


def _with_body(event: dict[str, Any], body: str | bytes) -> dict[str, Any]:
    raw = body.encode() if isinstance(body, str) else body
    # Both recorded events carry their body base64-encoded, as API Gateway does for binary media.
    event["body"] = base64.b64encode(raw).decode()
    event["isBase64Encoded"] = True
    return event


def _post(kind: str, body: str | bytes) -> dict[str, Any]:
    event = _with_body(load_event(f"{kind}_post_ticket.json"), body)
    handler = api.rest_api if kind == "rest" else api.http_api
    response: dict[str, Any] = handler(event, FakeLambdaContext())
    return response


def _get(kind: str, ticket_id: str) -> dict[str, Any]:
    event = load_event(f"{kind}_get_ticket.json")
    if kind == "rest":
        event["path"] = event["path"].replace("TICKET_ID", ticket_id)
        event["pathParameters"] = {"ticket_id": ticket_id}
        event["requestContext"]["path"] = event["requestContext"]["path"].replace(
            "TICKET_ID", ticket_id
        )
        response: dict[str, Any] = api.rest_api(event, FakeLambdaContext())
    else:
        event["rawPath"] = event["rawPath"].replace("TICKET_ID", ticket_id)
        event["requestContext"]["http"]["path"] = event["rawPath"]
        event["pathParameters"] = {"ticket_id": ticket_id}
        response = api.http_api(event, FakeLambdaContext())
    return response


def _json(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def _header(response: dict[str, Any], name: str) -> str:
    """A response header: payload 1.0 answers carry multiValueHeaders, 2.0 answers headers."""
    if "multiValueHeaders" in response:
        (value,) = response["multiValueHeaders"][name]
        return str(value)
    return str(response["headers"][name])


def _items(endpoint: str, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client("dynamodb", endpoint).scan(TableName=table)["Items"]
    return items


@pytest.mark.parametrize("kind", ["rest", "http"])
def test_the_recorded_post_is_enriched_stored_and_read_back(
    kind: str, configure: Any, aws_env: str, table: str
) -> None:
    configure()
    event = load_event(f"{kind}_post_ticket.json")
    response = (api.rest_api if kind == "rest" else api.http_api)(event, FakeLambdaContext())

    assert response["statusCode"] == 201, response["body"]
    created = _json(response)
    assert created["external_id"] == "ZD-1042"
    assert created["ticket"]["subject"] == TICKET["subject"]
    assert created["enrichment"]["priority"]["label"] in {"urgent", "normal"}
    assert _header(response, "Location") == f"/tickets/{created['id']}"
    items = _items(aws_env, table)
    assert [i["pk"]["S"] for i in items] == [f"ticket#{created['id']}"]

    read = _get(kind, created["id"])
    assert read["statusCode"] == 200
    assert _json(read) == created


def test_the_same_ticket_twice_is_stored_once_and_the_second_answer_is_the_first(
    configure: Any, aws_env: str, table: str
) -> None:
    configure(TICKET_ENRICH_DELIVER="true")
    first = _post("rest", json.dumps(TICKET))
    second = _post("http", json.dumps(TICKET))

    assert (first["statusCode"], second["statusCode"]) == (201, 200)
    assert _json(first) == _json(second)
    keys = sorted(i["pk"]["S"] for i in _items(aws_env, table))
    ticket_id = _json(first)["id"]
    assert keys == [f"delivery#{ticket_id}", f"ticket#{ticket_id}"]
    assert _json(_get("rest", ticket_id))["delivery"]["status"] == "pending"


@pytest.mark.parametrize("kind", ["rest", "http"])
def test_a_body_that_is_not_json_is_a_400_naming_the_body(
    kind: str, configure: Any, aws_env: str, table: str
) -> None:
    configure()
    response = _post(kind, '{"subject": "unterminated')

    assert response["statusCode"] == 400
    error = _json(response)["error"]
    assert error["code"] == "malformed_body"
    assert [p["field"] for p in error["problems"]] == ["body"]
    assert _items(aws_env, table) == []


@pytest.mark.parametrize("kind", ["rest", "http"])
def test_a_wrong_field_is_a_422_naming_the_field(
    kind: str, configure: Any, aws_env: str, table: str
) -> None:
    configure()
    bad = {**TICKET, "requester": {"email": "not an address"}, "priority_hint": "high"}
    response = _post(kind, json.dumps(bad))

    assert response["statusCode"] == 422
    fields = {p["field"] for p in _json(response)["error"]["problems"]}
    assert fields == {"requester.email", "priority_hint"}
    assert _items(aws_env, table) == []


@pytest.mark.parametrize("kind", ["rest", "http"])
def test_a_300_kb_body_is_a_413(kind: str, configure: Any, aws_env: str, table: str) -> None:
    configure()
    body = json.dumps({"subject": "big", "custom_fields": {"log": "x" * 300_000}})
    assert len(body.encode()) > 300_000
    response = _post(kind, body)

    assert response["statusCode"] == 413
    assert _json(response)["error"]["code"] == "ticket_too_large"
    assert _json(response)["error"]["problems"][0]["field"] == "ticket"
    assert _items(aws_env, table) == []


@pytest.mark.parametrize("kind", ["rest", "http"])
def test_an_unknown_id_is_a_404(kind: str, configure: Any) -> None:
    configure()
    response = _get(kind, "0b7e8a52-0000-4000-8000-000000000000")

    assert response["statusCode"] == 404
    assert _json(response)["error"]["code"] == "ticket_not_found"


def test_an_unreachable_table_is_a_503_with_retry_after_not_a_502(configure: Any) -> None:
    configure(TICKET_ENRICH_TICKETS_TABLE="no-such-table")
    response = _post("rest", json.dumps(TICKET))

    assert response["statusCode"] == 503
    assert _header(response, "Retry-After") == "5"
    assert _json(response)["error"]["code"] == "service_unavailable"


def test_a_model_that_cannot_load_is_a_503(configure: Any, tmp_path: Any) -> None:
    configure(TICKET_ENRICH_MODEL_DIR=str(tmp_path / "nothing-here"))
    response = _post("http", json.dumps(TICKET))

    assert response["statusCode"] == 503
    assert json.loads(response["body"])["error"]["code"] == "service_unavailable"


def test_logs_are_json_with_the_request_and_ticket_ids(
    configure: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    configure()
    logs = io.StringIO()
    # The logger keeps the stream it was created with; the metrics print to the current stdout.
    stream = api.logger.registered_handler.setStream(logs)  # type: ignore[attr-defined]
    try:
        response = _post("rest", json.dumps(TICKET))
    finally:
        api.logger.registered_handler.setStream(stream)  # type: ignore[attr-defined]
    ticket_id = _json(response)["id"]

    lines = [json.loads(line) for line in logs.getvalue().splitlines() if line.strip()]
    lines += [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    enriched = [line for line in lines if line.get("message") == "ticket enriched"]
    assert len(enriched) == 1
    assert enriched[0]["ticket_id"] == ticket_id
    assert enriched[0]["function_request_id"] == FakeLambdaContext.aws_request_id
    assert enriched[0]["correlation_id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    emf = [line for line in lines if "_aws" in line]
    assert len(emf) == 1
    names = {m["Name"] for m in emf[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"EnrichmentLatency", "TicketsEnriched", "NeedsReview"} <= names
    label = _json(response)["enrichment"]["priority"]["label"]
    assert emf[0][f"Priority_{label}"] == [1.0]


@pytest.mark.parametrize("kind", ["rest", "http"])
def test_an_unexpected_failure_is_a_500_json_body_not_a_502(
    kind: str, configure: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr("adapters.aws.api.submit_ticket", broken)
    response = _post(kind, json.dumps(TICKET))

    assert response["statusCode"] == 500
    assert _json(response)["error"] == {
        "code": "internal_error",
        "message": "the service failed; this was logged",
        "problems": [],
    }


def _local_answer(enricher: Any, tmp_path: Any, method: str, path: str) -> tuple[int, Any, str]:
    """What the local service answers the same request (status, body, Allow header)."""
    from fastapi.testclient import TestClient

    from adapters.local.app import create_app
    from adapters.local.sqlite_store import SQLiteTicketStore
    from core.settings import Settings

    db = tmp_path / "local.sqlite3"
    app = create_app(enricher, SQLiteTicketStore(db), Settings(database=db, api_key="k" * 32))
    with TestClient(app) as local:
        reply = local.request(method, path, headers={"X-API-Key": "k" * 32})
    return reply.status_code, reply.json(), reply.headers.get("allow", "")


@pytest.mark.parametrize(
    ("name", "status", "allow", "local_request"),
    [
        # SAM's default events: a path the API does not have.
        ("rest_default.json", 404, None, ("POST", "/path/to/resource")),
        ("http_default.json", 404, None, ("POST", "/path/to/resource")),
        ("rest_list_tickets.json", 405, "POST", None),
        ("http_list_tickets.json", 405, "POST", None),
        ("rest_delete_ticket.json", 405, "GET", ("DELETE", "/tickets/TICKET_ID")),
        ("http_delete_ticket.json", 405, "GET", ("DELETE", "/tickets/TICKET_ID")),
    ],
)
def test_an_unknown_route_is_a_404_and_a_wrong_method_a_405_as_the_local_service_answers(
    name: str,
    status: int,
    allow: str | None,
    local_request: tuple[str, str] | None,
    configure: Any,
    enricher: Any,
    tmp_path: Any,
) -> None:
    configure()
    handler = api.rest_api if name.startswith("rest") else api.http_api

    response = handler(load_event(name), FakeLambdaContext())

    assert response["statusCode"] == status, response["body"]
    code = "not_found" if status == 404 else "method_not_allowed"
    assert _json(response)["error"]["code"] == code
    if allow is not None:
        assert _header(response, "Allow") == allow
    if local_request is not None:
        local_status, local_body, local_allow = _local_answer(enricher, tmp_path, *local_request)
        assert (local_status, local_body) == (status, _json(response))
        if allow is not None:
            assert local_allow == allow


@pytest.mark.parametrize("kind", ["rest", "http"])
@pytest.mark.parametrize(
    ("name", "body"), bad_ticket_bodies(), ids=[n for n, _ in bad_ticket_bodies()]
)
def test_the_bad_input_corpus_is_a_4xx_and_stores_nothing(
    kind: str, name: str, body: bytes, configure: Any, aws_env: str, table: str
) -> None:
    configure()
    response = _post(kind, body)
    assert 400 <= response["statusCode"] < 500, (name, response)
    assert _json(response)["error"]["code"]
    assert _items(aws_env, table) == []

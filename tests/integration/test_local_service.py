"""The local service as a client sees it: a real uvicorn server on a free port, over HTTP."""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from adapters.local.app import create_app
from adapters.local.sqlite_store import SQLiteTicketStore
from core import Enricher, load_enricher
from core.logs import JsonFormatter
from core.ports import StoredTicket, TicketPage, TicketQuery
from core.settings import Settings

PAGE_SIZE_MAX = 20
API_KEY = "test-api-key"
# Machine clients of the JSON API authenticate with the API key.
_AUTH = {"X-API-Key": API_KEY}
_STARTUP_LIMIT_SECONDS = 30.0


@contextmanager
def _serving(app: FastAPI) -> Iterator[str]:
    """Run the app on uvicorn in a background thread; yield its base URL."""
    # Binding port 0 here and handing uvicorn the socket avoids racing another process for a
    # port picked in advance.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + _STARTUP_LIMIT_SECONDS
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        if not server.started:
            raise RuntimeError("uvicorn did not start")
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(_STARTUP_LIMIT_SECONDS)
        sock.close()


@dataclass
class Service:
    """A running service, a client for it and the store behind it."""

    client: httpx.Client
    store: SQLiteTicketStore
    db_path: Path

    def total(self) -> int:
        response = self.client.get("/tickets")
        assert response.status_code == 200
        total = response.json()["total"]
        assert isinstance(total, int)
        return total


@pytest.fixture(scope="session")
def enricher(model_dir: Path) -> Enricher:
    return load_enricher(model_dir)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "tickets.sqlite3"


def _settings(db_path: Path) -> Settings:
    return Settings(database=db_path, page_size_max=PAGE_SIZE_MAX, api_key=API_KEY)


@contextmanager
def _service(enricher: Enricher, db_path: Path) -> Iterator[Service]:
    store = SQLiteTicketStore(db_path)
    try:
        with (
            _serving(create_app(enricher, store, _settings(db_path))) as url,
            httpx.Client(base_url=url, timeout=30.0, headers=_AUTH) as client,
        ):
            yield Service(client, store, db_path)
    finally:
        store.close()


@pytest.fixture
def service(enricher: Enricher, db_path: Path) -> Iterator[Service]:
    with _service(enricher, db_path) as running:
        yield running


def _ticket(**overrides: Any) -> dict[str, Any]:
    ticket: dict[str, Any] = {
        "subject": "NameNode crashes on startup and loses data",
        "description": "After upgrading, the NameNode crashes with an NPE while loading the "
        "edit log; the last blocks written are lost.",
        "requester": {"email": "ops@example.com", "name": "Ops", "tier": "enterprise"},
        "channel": "email",
        "custom_fields": {"component": "namenode"},
    }
    ticket.update(overrides)
    return ticket


_VARIED_SUBJECTS = [
    "NameNode crashes on startup and loses data",
    "Typo in the documentation of the shell command",
    "DataNode deadlock under heavy write load",
    "Add a configuration option for the balancer bandwidth",
    "Fix javadoc warnings in the build",
]


def _priority_labels(enricher: Enricher) -> list[str]:
    labels = enricher.artifact.model["targets"]["priority"]["labels"]
    assert labels
    return [str(label) for label in labels]


def _problem_fields(response: httpx.Response) -> list[str]:
    error = response.json()["error"]
    assert set(error) == {"code", "message", "problems"}
    assert error["message"]
    return [problem["field"] for problem in error["problems"]]


def test_create_returns_201_with_the_enriched_ticket(service: Service, enricher: Enricher) -> None:
    response = service.client.post("/tickets", json=_ticket(external_id="HDFS-1"))

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "external_id", "received_at", "ticket", "enrichment"}
    assert response.headers["location"] == f"/tickets/{body['id']}"
    assert body["external_id"] == "HDFS-1"
    assert body["ticket"]["subject"] == _ticket()["subject"]
    enrichment = body["enrichment"]
    priority = enrichment["priority"]
    labels = _priority_labels(enricher)
    assert priority["label"] in labels
    assert set(priority["probabilities"]) == set(labels)
    assert math.isclose(sum(priority["probabilities"].values()), 1.0, abs_tol=1e-9)
    assert priority["band"] in {"high", "medium", "low"}
    assert isinstance(enrichment["needs_review"], bool)
    assert enrichment["model"] == {"name": enricher.model_name, "version": enricher.model_version}


def test_retry_with_the_same_external_id_returns_the_stored_ticket(service: Service) -> None:
    first = service.client.post("/tickets", json=_ticket(external_id="HDFS-2"))
    retry = service.client.post("/tickets", json=_ticket(external_id="HDFS-2"))

    assert first.status_code == 201
    assert retry.status_code == 200
    assert retry.json() == first.json()
    assert retry.headers["location"] == first.headers["location"]
    assert service.total() == 1


def test_get_by_id_returns_what_create_returned(service: Service) -> None:
    created = service.client.post("/tickets", json=_ticket()).json()

    response = service.client.get(f"/tickets/{created['id']}")

    assert response.status_code == 200
    assert response.json() == created


def test_unknown_id_and_unknown_path_are_404_errors(service: Service) -> None:
    missing = service.client.get("/tickets/no-such-ticket")
    nowhere = service.client.get("/no-such-path")

    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ticket_not_found"
    assert "no-such-ticket" in missing.json()["error"]["message"]
    assert nowhere.status_code == 404
    assert _problem_fields(nowhere) == []


def test_list_filters_and_pages_newest_first(service: Service) -> None:
    created = []
    for subject in _VARIED_SUBJECTS:
        response = service.client.post("/tickets", json=_ticket(subject=subject))
        assert response.status_code == 201
        created.append(response.json())
    newest_first = [ticket["id"] for ticket in reversed(created)]

    everything = service.client.get("/tickets").json()
    pages = [
        service.client.get("/tickets", params={"limit": 2, "offset": offset}).json()
        for offset in (0, 2, 4)
    ]

    assert [item["id"] for item in everything["items"]] == newest_first
    assert everything["total"] == len(created)
    assert [(page["limit"], page["offset"], page["total"]) for page in pages] == [
        (2, 0, 5),
        (2, 2, 5),
        (2, 4, 5),
    ]
    assert [item["id"] for page in pages for item in page["items"]] == newest_first

    label = created[0]["enrichment"]["priority"]["label"]
    by_priority = service.client.get("/tickets", params={"priority": label}).json()
    expected = [t["id"] for t in reversed(created) if t["enrichment"]["priority"]["label"] == label]
    assert [item["id"] for item in by_priority["items"]] == expected
    assert by_priority["total"] == len(expected)

    flagged = service.client.get("/tickets", params={"needs_review": "true"}).json()
    unflagged = service.client.get("/tickets", params={"needs_review": "false"}).json()
    assert all(item["enrichment"]["needs_review"] is True for item in flagged["items"])
    assert all(item["enrichment"]["needs_review"] is False for item in unflagged["items"])
    assert flagged["total"] + unflagged["total"] == len(created)

    nobody = service.client.get("/tickets", params={"priority": "no-such-label"}).json()
    # The default page size is capped by the configured maximum.
    assert nobody == {"items": [], "total": 0, "limit": PAGE_SIZE_MAX, "offset": 0}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": PAGE_SIZE_MAX + 1}, "limit"),
        ({"offset": -1}, "offset"),
        ({"needs_review": "perhaps"}, "needs_review"),
    ],
)
def test_list_rejects_bad_query_parameters(
    service: Service, params: dict[str, Any], field: str
) -> None:
    response = service.client.get("/tickets", params=params)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    assert _problem_fields(response) == [field]


def test_model_describes_the_served_artifact(service: Service, enricher: Enricher) -> None:
    response = service.client.get("/model")

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == enricher.model_name
    assert body["version"] == enricher.model_version
    assert body["metrics"] == enricher.metadata["metrics"]
    assert body["custom_fields"] == list(enricher.custom_fields)


def test_healthz_and_readyz_report_the_model_and_the_store(
    service: Service, enricher: Enricher
) -> None:
    model = {"name": enricher.model_name, "version": enricher.model_version}
    health = service.client.get("/healthz")
    ready = service.client.get("/readyz")

    assert health.status_code == 200
    assert health.json() == {"status": "ok", "model": model}
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "model": model, "store": "ok"}


def test_a_failing_store_makes_readyz_503_and_tickets_retryable(service: Service) -> None:
    service.store.close()

    health = service.client.get("/healthz")
    ready = service.client.get("/readyz")
    submit = service.client.post("/tickets", json=_ticket(external_id="HDFS-3"))

    # The process is alive (no restart would help); it is not ready for traffic.
    assert health.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["store"] == "error"
    assert ready.headers["retry-after"]
    assert submit.status_code == 503
    assert submit.json()["error"]["code"] == "store_unavailable"
    assert "retry-after" in submit.headers


def test_openapi_documents_every_path_and_the_ticket_body(service: Service) -> None:
    document = service.client.get("/openapi.json").json()

    assert {"/tickets", "/tickets/{ticket_id}", "/model", "/healthz", "/readyz"} <= set(
        document["paths"]
    )
    body = document["paths"]["/tickets"]["post"]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"]
    schemas = document["components"]["schemas"]
    ticket_schema = schemas[ref.rsplit("/", 1)[-1]]
    assert {"subject", "description", "external_id", "custom_fields"} <= set(
        ticket_schema["properties"]
    )
    # Every reference in the document must resolve, or generated clients and Swagger UI break.
    refs = {
        value.rsplit("/", 1)[-1]
        for value in _walk_refs(document)
        if value.startswith("#/components/schemas/")
    }
    assert refs <= set(schemas)


def test_post_tickets_documents_its_key_and_header_and_checks_them_itself(
    service: Service,
) -> None:
    """The route is served without FastAPI resolving its parameters; the document still shows
    them, and the sign-in check and the Idempotency-Key header still apply."""
    document = service.client.get("/openapi.json").json()
    operation = document["paths"]["/tickets"]["post"]
    assert [(p["name"], p["in"]) for p in operation["parameters"]] == [
        ("Idempotency-Key", "header")
    ]
    schemes = document["components"]["securitySchemes"]
    assert [schemes[name] for entry in operation["security"] for name in entry] == [
        {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "The service's API key (TICKET_ENRICH_API_KEY), for machine clients.",
        }
    ]

    anonymous = httpx.post(f"{service.client.base_url}/tickets", json=_ticket(), timeout=30.0)
    wrong = httpx.post(
        f"{service.client.base_url}/tickets",
        json=_ticket(),
        headers={"X-API-Key": "not-the-key"},
        timeout=30.0,
    )
    assert (anonymous.status_code, wrong.status_code) == (401, 401)
    assert anonymous.json()["error"]["code"] == "unauthorized"
    assert service.total() == 0

    first = service.client.post("/tickets", json=_ticket(), headers={"Idempotency-Key": "k-1"})
    again = service.client.post("/tickets", json=_ticket(), headers={"Idempotency-Key": "k-1"})
    other = service.client.post(
        "/tickets", json=_ticket(subject="Another one"), headers={"Idempotency-Key": "k-1"}
    )
    assert (first.status_code, again.status_code, other.status_code) == (201, 201, 409)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert first.headers["location"] == f"/tickets/{first.json()['id']}"
    too_long = service.client.post(
        "/tickets", json=_ticket(), headers={"Idempotency-Key": "k" * 300}
    )
    assert too_long.status_code == 422
    assert too_long.json()["error"]["problems"][0]["field"] == "Idempotency-Key"
    assert service.total() == 1


def _walk_refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _walk_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk_refs(value)


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    ("content", "status", "code", "field"),
    [
        pytest.param(b'{"subject": "NameNode', 400, "malformed_body", "body", id="malformed-json"),
        pytest.param(
            b'{"subject": "\xff\xfe crash"}', 400, "malformed_body", "body", id="not-utf8"
        ),
        pytest.param(_json({"subject": 42}), 422, "invalid_ticket", "subject", id="wrong-type"),
        pytest.param(_json({}), 422, "invalid_ticket", "ticket", id="empty-ticket"),
        pytest.param(_json(["crash"]), 422, "invalid_ticket", "ticket", id="not-an-object"),
        pytest.param(
            _json(_ticket(severity="high")), 422, "invalid_ticket", "severity", id="unknown-field"
        ),
        pytest.param(
            _json(_ticket(requester={"email": "not-an-address"})),
            422,
            "invalid_ticket",
            "requester.email",
            id="bad-email",
        ),
        pytest.param(
            _json(_ticket(subject="x" * 1025)), 413, "ticket_too_large", "subject", id="subject-1kb"
        ),
        pytest.param(
            _json(_ticket(description="é" * 40_000)),
            413,
            "ticket_too_large",
            "description",
            id="description-64kb",
        ),
        pytest.param(
            _json(_ticket(custom_fields={"log": "x" * (256 * 1024)})),
            413,
            "ticket_too_large",
            "ticket",
            id="body-256kb",
        ),
    ],
)
def test_bad_tickets_are_refused_stored_nowhere_and_the_service_goes_on(
    service: Service, content: bytes, status: int, code: str, field: str
) -> None:
    response = service.client.post(
        "/tickets", content=content, headers={"content-type": "application/json"}
    )

    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert field in _problem_fields(response)
    assert service.total() == 0
    assert service.client.post("/tickets", json=_ticket()).status_code == 201
    assert service.total() == 1


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"subject": "crash", "custom_fields": {"n": NaN}}', id="nan"),
        pytest.param(b'{"subject": "crash", "custom_fields": {"n": 1e999}}', id="infinity"),
        pytest.param(b'{"subject": "crash \\ud800 here"}', id="lone-surrogate"),
    ],
)
def test_json_that_cannot_be_served_back_is_never_stored(service: Service, content: bytes) -> None:
    response = service.client.post(
        "/tickets", content=content, headers={"content-type": "application/json"}
    )

    # The status is the core's call (today these pass its schema and fail in the store); what
    # this adapter guarantees is that such a ticket is not stored and cannot break the listing.
    assert response.status_code >= 400
    assert service.total() == 0
    assert service.client.post("/tickets", json=_ticket()).status_code == 201


def test_an_oversized_body_without_content_length_is_refused(service: Service) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"subject": "crash", "description": "'
        for _ in range(300):
            yield b"x" * 1024
        yield b'"}'

    response = service.client.post(
        "/tickets", content=chunks(), headers={"content-type": "application/json"}
    )

    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert _problem_fields(response) == ["ticket"]
    assert service.total() == 0


class _FailingOnceStore:
    """A store whose first `add` fails the way a bug would, not the way a store outage would."""

    def __init__(self, inner: SQLiteTicketStore) -> None:
        self.inner = inner
        self.failed = False

    def add(self, ticket: StoredTicket) -> tuple[StoredTicket, bool]:
        if not self.failed:
            self.failed = True
            raise RuntimeError("secret internal detail")
        return self.inner.add(ticket)

    def get(self, ticket_id: str) -> StoredTicket:
        return self.inner.get(ticket_id)

    def list(self, query: TicketQuery) -> TicketPage:
        return self.inner.list(query)


def test_an_unexpected_error_is_a_generic_500_and_the_service_goes_on(
    enricher: Enricher, db_path: Path
) -> None:
    store = SQLiteTicketStore(db_path)
    app = create_app(enricher, _FailingOnceStore(store), _settings(db_path))
    try:
        with (
            _serving(app) as url,
            httpx.Client(base_url=url, timeout=30.0, headers=_AUTH) as client,
        ):
            failed = client.post("/tickets", json=_ticket())
            succeeded = client.post("/tickets", json=_ticket())
    finally:
        store.close()

    assert failed.status_code == 500
    assert failed.json()["error"]["code"] == "internal_error"
    assert "secret" not in failed.text
    assert succeeded.status_code == 201


def test_each_enrichment_is_logged_as_json_with_the_ticket_id(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.local.app")

    created = service.client.post("/tickets", json=_ticket(external_id="HDFS-4")).json()

    records = [r for r in caplog.records if getattr(r, "ticket_id", None) == created["id"]]
    assert len(records) == 1
    line = json.loads(JsonFormatter().format(records[0]))
    assert line["ticket_id"] == created["id"]
    assert line["external_id"] == "HDFS-4"
    assert line["priority"] == created["enrichment"]["priority"]["label"]
    assert line["level"] == "INFO"


def test_tickets_survive_a_restart_on_the_same_database(enricher: Enricher, db_path: Path) -> None:
    with _service(enricher, db_path) as before:
        created = before.client.post("/tickets", json=_ticket(external_id="HDFS-5")).json()

    with _service(enricher, db_path) as after:
        fetched = after.client.get(f"/tickets/{created['id']}")
        retried = after.client.post("/tickets", json=_ticket(external_id="HDFS-5"))
        total = after.total()

    assert fetched.status_code == 200
    assert fetched.json() == created
    assert retried.status_code == 200
    assert retried.json()["id"] == created["id"]
    assert total == 1

"""The Azure Functions front, called with `azure.functions` request objects as the host would,
storing tickets and their outbox in Azurite's Table Storage and delivering to a loopback
webhook receiver."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.data.tables import TableClient
from azure.storage.blob import BlobServiceClient

from adapters.azure import functions as handlers
from adapters.azure.function_app import app
from adapters.azure.settings import AzureSettings
from adapters.azure.table_store import TableTicketStore, tickets_table_from_settings
from core.ports import StoredTicket, TicketQuery
from tests.integration.azure.conftest import Azurite, InferenceServer, free_port
from tests.integration.azure.webhook_receiver import SECRET, Receiver, receiving
from tests.support import bad_ticket_bodies

EVENTS = Path(__file__).resolve().parents[2] / "events" / "azure"


@functools.cache
def _functions() -> dict[str, Any]:
    # The host indexes the app once; get_functions() refuses to index the same app twice.
    return {f.get_function_name(): f.get_user_function() for f in app.get_functions()}


def _registered(name: str) -> Any:
    assert name in _functions(), f"no function {name} registered"
    return _functions()[name]


def _request(body: bytes | dict[str, Any], **headers: str) -> func.HttpRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return func.HttpRequest(
        "POST",
        "https://ticket-enrich-func.azurewebsites.net/api/tickets",
        headers={"content-type": "application/json", **headers},
        body=raw,
    )


def _recorded_request() -> func.HttpRequest:
    event = json.loads((EVENTS / "function_http_ticket.json").read_text())
    return func.HttpRequest(
        event["method"],
        event["url"],
        headers=event["headers"],
        params=event["params"],
        route_params=event["route_params"],
        body=json.dumps(event["body"]).encode(),
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as running:
        yield running


@pytest.fixture
def table_name() -> str:
    return f"t{uuid.uuid4().hex[:20]}"


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch,
    azurite: Azurite,
    receiver: Receiver,
    table_name: str,
    small_model_dir: Path,
) -> Iterator[None]:
    """The Functions app's settings as the host would hand them over, as environment."""
    for name, value in {
        "TICKET_ENRICH_MODEL_DIR": str(small_model_dir),
        "TICKET_ENRICH_DELIVER": "true",
        "TICKET_ENRICH_HELPDESK": "webhook",
        "TICKET_ENRICH_HELPDESK_WEBHOOK_URL": receiver.url + "/hooks/tickets",
        "TICKET_ENRICH_HELPDESK_WEBHOOK_SECRET": SECRET,
        "TICKET_ENRICH_DELIVERY_RETRY_BASE_S": "0",
        "TICKET_ENRICH_AZURE_TABLES_CONNECTION_STRING": azurite.connection_string,
        "TICKET_ENRICH_AZURE_TICKETS_TABLE": table_name,
    }.items():
        monkeypatch.setenv(name, value)
    handlers.runtime.cache_clear()
    yield
    if handlers.runtime.cache_info().currsize:
        rt = handlers.runtime()
        rt.store.close()
        if rt.helpdesk is not None:
            rt.helpdesk.close()
        if rt.scoring_log is not None:
            rt.scoring_log.close()
    handlers.runtime.cache_clear()


def _store(azurite: Azurite, table_name: str) -> TableTicketStore:
    return TableTicketStore(
        TableClient.from_connection_string(azurite.connection_string, table_name)
    )


@pytest.mark.usefixtures("env")
def test_same_ticket_twice_is_stored_once_and_delivered_once(
    azurite: Azurite, table_name: str, receiver: Receiver
) -> None:
    submit = _registered("submit_ticket")
    drain = _registered("drain_outbox")

    first = submit(_recorded_request())
    assert first.status_code == 201, first.get_body()
    stored = json.loads(first.get_body())
    assert stored["external_id"] == "ZD-77001"
    assert "4111 1111 1111 1111" not in stored["ticket"]["description"]
    again = submit(_recorded_request())
    assert again.status_code == 200
    assert json.loads(again.get_body())["id"] == stored["id"]

    store = _store(azurite, table_name)
    assert store.list(TicketQuery()).total == 1
    assert [d.status for d in store.deliveries()] == ["pending"]

    drain(None)
    drain(None)  # nothing due any more: nothing sent twice
    assert len(receiver.created) == 1 and receiver.requests == 1
    assert receiver.bad_signatures == 0
    (delivered,) = receiver.created.values()
    assert delivered["ticket"]["id"] == stored["id"]
    delivery = store.delivery(stored["id"])
    assert delivery is not None and delivery.status == "delivered"
    assert delivery.ref is not None and delivery.ref.id == delivered["id"]

    read = _registered("get_ticket")(
        func.HttpRequest(
            "GET",
            f"https://x/api/tickets/{stored['id']}",
            route_params={"ticket_id": stored["id"]},
            body=b"",
        )
    )
    assert read.status_code == 200
    assert json.loads(read.get_body())["delivery"]["status"] == "delivered"
    missing = _registered("get_ticket")(
        func.HttpRequest(
            "GET", "https://x/api/tickets/nope", route_params={"ticket_id": "nope"}, body=b""
        )
    )
    assert missing.status_code == 404
    assert json.loads(missing.get_body())["error"]["code"] == "ticket_not_found"


@pytest.mark.usefixtures("env")
def test_helpdesk_down_is_retried_then_delivered_once(
    azurite: Azurite, table_name: str, receiver: Receiver
) -> None:
    receiver.fail_next = [503]
    submit = _registered("submit_ticket")
    response = submit(_request({"subject": "Disk full on node 7", "external_id": "ZD-9"}))
    assert response.status_code == 201
    ticket_id = json.loads(response.get_body())["id"]

    report = handlers.drain(handlers.runtime())
    assert report.retrying == [ticket_id]
    store = _store(azurite, table_name)
    retrying = store.delivery(ticket_id)
    assert retrying is not None and retrying.status == "retrying" and retrying.attempts == 1
    assert "503" in (retrying.last_error or "")

    report = handlers.drain(handlers.runtime())
    assert report.delivered == [ticket_id]
    assert len(receiver.created) == 1


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b'{"subject": "half', 400, "body"),
        (b"\xff\xfe not utf-8", 400, "body"),
        (json.dumps({"channel": "email"}).encode(), 422, "ticket"),
        (
            json.dumps({"subject": "x", "requester": {"email": "nope"}}).encode(),
            422,
            "requester.email",
        ),
        (json.dumps({"subject": "x", "priority": "urgent"}).encode(), 422, "priority"),
        (json.dumps({"subject": "x", "description": "y" * (300 * 1024)}).encode(), 413, "ticket"),
    ],
)
def test_invalid_tickets_are_refused_naming_the_field(
    body: bytes, status: int, field: str, azurite: Azurite, table_name: str
) -> None:
    response = _registered("submit_ticket")(_request(body))
    assert response.status_code == status
    error = json.loads(response.get_body())["error"]
    assert field in [p["field"] for p in error["problems"]]
    assert _store(azurite, table_name).list(TicketQuery()).total == 0


@pytest.mark.usefixtures("env")
def test_store_down_is_503_with_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv(
        "TICKET_ENRICH_AZURE_TABLES_CONNECTION_STRING",
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        f"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1;",
    )
    monkeypatch.setenv("TICKET_ENRICH_AZURE_STORAGE_RETRIES", "0")
    settings = AzureSettings()
    store = tickets_table_from_settings(settings)
    runtime = handlers.build_runtime(settings, store=store)
    response = handlers.submit(_request({"subject": "Disk full", "external_id": "X-1"}), runtime)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert json.loads(response.get_body())["error"]["code"] == "service_unavailable"


def _stored(ticket_id: str, description: str, priority: str, at: datetime) -> StoredTicket:
    return StoredTicket(
        id=ticket_id,
        external_id=None,
        received_at=at.isoformat(timespec="milliseconds"),
        ticket={"subject": "s", "description": description},
        enrichment={"priority": {"label": priority}, "needs_review": priority == "normal"},
    )


def test_table_store_keeps_large_tickets_lists_and_leases(
    azurite: Azurite, table_name: str
) -> None:
    store = _store(azurite, table_name)
    store.create_table()
    now = datetime.now(UTC)
    big = "Ünïcödé 🚀 " * 7000  # ~70 K characters, astral ones included: several chunks
    tickets = [
        _stored(f"id-{i}", big if i == 0 else f"ticket {i}", "urgent" if i % 2 else "normal",
                now + timedelta(seconds=i))
        for i in range(5)
    ]  # fmt: skip
    for ticket in tickets:
        assert store.add_with_delivery(ticket, now)[1] is True
    assert store.add_with_delivery(tickets[0], now)[1] is False
    assert store.get("id-0").ticket["description"] == big

    page = store.list(TicketQuery(priority="urgent", limit=1, offset=1))
    assert page.total == 2 and [t.id for t in page.items] == ["id-1"]
    assert store.list(TicketQuery(needs_review=True)).total == 3

    lease = now + timedelta(seconds=60)
    claimed = store.claim_due(now, lease, limit=3)
    assert [d.ticket_id for d, _ in claimed] == ["id-0", "id-1", "id-2"]
    # A second worker at the same moment gets only what the first did not lease.
    assert [d.ticket_id for d, _ in store.claim_due(now, lease, limit=10)] == ["id-3", "id-4"]
    assert store.claim_due(now, lease, limit=10) == []
    # An expired lease (a worker that died) makes the delivery due again.
    later = lease + timedelta(seconds=1)
    assert len(store.claim_due(later, later + timedelta(seconds=60), limit=10)) == 5


def test_table_store_counts_deliveries_by_status_over_every_page(
    azurite: Azurite, table_name: str
) -> None:
    table = TableClient.from_connection_string(azurite.connection_string, table_name)
    store = TableTicketStore(table, page_size=2)
    store.create_table()
    now = datetime.now(UTC)
    assert store.count_by_status() == {"pending": 0, "retrying": 0, "delivered": 0, "dead": 0}
    store.add(_stored("no-delivery", "s", "normal", now))  # a ticket alone is not counted
    statuses = ["pending"] * 3 + ["retrying"] * 2 + ["dead"]
    for i, status in enumerate(statuses):
        store.add_with_delivery(_stored(f"id-{i}", "s", "normal", now), now)
        delivery = store.delivery(f"id-{i}")
        assert delivery is not None
        store.save(replace(delivery, status=status))

    # Two delivery rows to a page: the counts below add up over three pages.
    pages = table.query_entities("RowKey eq 'delivery'", results_per_page=2).by_page()
    assert len(list(next(pages))) == 2
    expected = {"pending": 3, "retrying": 2, "delivered": 0, "dead": 1}
    assert store.count_by_status() == expected
    assert TableTicketStore(table).count_by_status() == expected
    with pytest.raises(ValueError):
        TableTicketStore(table, page_size=0)


@pytest.mark.usefixtures("env")
def test_endpoint_mode_enriches_through_the_scoring_server(
    monkeypatch: pytest.MonkeyPatch,
    scoring_server: InferenceServer,
    azurite: Azurite,
    table_name: str,
    small_model_dir: Path,
) -> None:
    monkeypatch.setenv("TICKET_ENRICH_AZURE_ENRICH_VIA", "endpoint")
    monkeypatch.setenv("TICKET_ENRICH_AZURE_ENDPOINT_URL", scoring_server.url + "/score")
    monkeypatch.setenv("TICKET_ENRICH_AZURE_ENDPOINT_KEY", "endpoint-key")
    handlers.runtime.cache_clear()
    submit = _registered("submit_ticket")

    response = submit(_recorded_request())
    assert response.status_code == 201, response.get_body()
    stored = json.loads(response.get_body())
    version = json.loads((small_model_dir / "metadata.json").read_text())["version"]
    assert stored["enrichment"]["model"]["version"] == version
    assert _store(azurite, table_name).get(stored["id"]).enrichment == stored["enrichment"]
    assert submit(_recorded_request()).status_code == 200

    refused = submit(_request({"subject": "x", "requester": {"email": "nope"}}))
    assert refused.status_code == 422
    assert json.loads(refused.get_body())["error"]["problems"][0]["field"] == "requester.email"


@pytest.mark.usefixtures("env")
def test_endpoint_down_is_503(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKET_ENRICH_AZURE_ENRICH_VIA", "endpoint")
    monkeypatch.setenv("TICKET_ENRICH_AZURE_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}/score")
    handlers.runtime.cache_clear()
    response = _registered("submit_ticket")(
        _request({"subject": "Disk full", "external_id": "E-1"})
    )
    assert response.status_code == 503
    assert json.loads(response.get_body())["error"]["code"] == "service_unavailable"


@pytest.mark.usefixtures("env")
def test_one_timer_run_drains_more_than_one_batch(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    monkeypatch.setenv("TICKET_ENRICH_DELIVERY_BATCH_SIZE", "2")
    handlers.runtime.cache_clear()
    submit = _registered("submit_ticket")
    for i in range(5):
        assert (
            submit(_request({"subject": f"Disk {i} full", "external_id": f"B-{i}"})).status_code
            == 201
        )
    _registered("drain_outbox")(None)
    assert len(receiver.created) == 5


@pytest.mark.usefixtures("env")
def test_tickets_enriched_in_the_function_reach_the_scoring_logs(
    monkeypatch: pytest.MonkeyPatch, azurite: Azurite
) -> None:
    container = f"fn-logs-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(
        "TICKET_ENRICH_AZURE_SCORING_LOG_CONNECTION_STRING", azurite.connection_string
    )
    monkeypatch.setenv("TICKET_ENRICH_AZURE_SCORING_LOG_CONTAINER", container)
    handlers.runtime.cache_clear()
    submit = _registered("submit_ticket")
    assert submit(_recorded_request()).status_code == 201
    assert submit(_recorded_request()).status_code == 200  # a duplicate is not logged again
    rt = handlers.runtime()
    assert rt.scoring_log is not None and rt.scoring_log.flush(30)

    client = BlobServiceClient.from_connection_string(azurite.connection_string)
    blobs = client.get_container_client(container)
    lines = [
        json.loads(line)
        for blob in blobs.list_blobs()
        for line in blobs.download_blob(blob.name).readall().decode().splitlines()
    ]
    assert len(lines) == 1
    (line,) = lines
    assert line["request_id"] == "3e0d3c4e-59f4-4c58-8f0b-0d9c0f1f2a11"
    assert line["ticket"]["external_id"] == "ZD-77001"
    assert "4111" not in json.dumps(line) and "bo@example.com" not in json.dumps(line)
    assert line["prediction"]["priority"]["label"]


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize(
    ("name", "body"), bad_ticket_bodies(), ids=[n for n, _ in bad_ticket_bodies()]
)
def test_the_bad_input_corpus_is_a_4xx_and_stores_nothing(
    name: str, body: bytes, azurite: Azurite, table_name: str
) -> None:
    response = _registered("submit_ticket")(_request(body))
    assert 400 <= response.status_code < 500, (name, response.get_body()[:300])
    assert json.loads(response.get_body())["error"]["code"]
    assert _store(azurite, table_name).list(TicketQuery()).total == 0


def test_table_store_answers_a_new_ticket_as_written_and_reads_back_only_a_duplicate(
    azurite: Azurite, table_name: str
) -> None:
    calls: list[str] = []
    table = TableClient.from_connection_string(
        azurite.connection_string,
        table_name,
        raw_request_hook=lambda request: calls.append(request.http_request.method),
    )
    store = TableTicketStore(table)
    store.create_table()
    now = datetime.now(UTC)

    calls.clear()
    first, created = store.add(_stored("one", "x" * 70_000, "urgent", now))
    assert (created, calls) == (True, ["POST"])
    assert first == store.get("one")

    calls.clear()
    again, created_again = store.add(_stored("one", "other", "low", now))
    assert (created_again, calls) == (False, ["POST", "GET"])
    assert again == first

    calls.clear()
    queued, created_queued = store.add_with_delivery(_stored("two", "s", "normal", now), now)
    assert (created_queued, calls) == (True, ["POST"])  # one entity-group transaction
    assert queued == store.get("two")

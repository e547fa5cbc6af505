"""The scoring script under Microsoft's Azure ML inference server on 127.0.0.1, with its scoring
logs going to Azurite's Blob Storage and read back."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.storage.blob import BlobServiceClient

from tests.integration.azure.conftest import (
    Azurite,
    InferenceServer,
    free_port,
    inference_server,
    listening_addresses,
    wait_until,
)

EVENTS = Path(__file__).resolve().parents[2] / "events" / "azure"


def _event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


@pytest.fixture(scope="module")
def server(scoring_server: InferenceServer) -> InferenceServer:
    return scoring_server


@pytest.fixture(scope="module")
def container(scoring_container: str) -> str:
    return scoring_container


def _score(server: InferenceServer, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        server.url + "/score",
        content=body,
        headers={"content-type": "application/json", **headers},
        timeout=30.0,
    )


def _log_lines(azurite: Azurite, container: str) -> list[dict[str, Any]]:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    client = service.get_container_client(container)
    if not client.exists():
        return []
    lines = []
    for blob in client.list_blobs(name_starts_with="enrichments/"):
        data = client.download_blob(blob.name).readall().decode("utf-8")
        lines += [json.loads(line) for line in data.splitlines() if line]
    return lines


def test_binds_loopback_only(server: InferenceServer) -> None:
    assert listening_addresses(server.port) == {"127.0.0.1"}


def test_one_ticket(server: InferenceServer) -> None:
    ticket = _event("score_one.json")
    response = _score(server, json.dumps(ticket).encode(), **{"x-request-id": "req-one-1"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["enrichment"]["priority"]["label"] in {"urgent", "normal"}
    assert body["ticket"]["external_id"] == "AZ-1001"
    assert "ann.lee@example.com" not in body["ticket"]["description"]
    assert response.headers["x-request-id"] == "req-one-1"


def test_a_list(server: InferenceServer) -> None:
    tickets = _event("score_list.json")
    response = _score(server, json.dumps(tickets).encode())
    assert response.status_code == 200, response.text
    body = response.json()
    assert [b["ticket"]["external_id"] for b in body] == ["AZ-1002", "AZ-1003"]
    assert all("priority" in b["enrichment"] for b in body)


def test_malformed_json_is_400_naming_the_body(server: InferenceServer) -> None:
    response = _score(server, b'{"subject": "half a ticket", ')
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "malformed_body"
    assert [p["field"] for p in error["problems"]] == ["body"]


def test_not_utf8_is_400(server: InferenceServer) -> None:
    response = _score(server, b'{"subject": "caf\xe9"}')
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")


def test_missing_field_is_400_naming_it(server: InferenceServer) -> None:
    response = _score(server, json.dumps({"channel": "email"}).encode())
    assert response.status_code == 400
    problems = response.json()["error"]["problems"]
    assert problems[0]["field"] == "ticket"
    assert "subject or description" in problems[0]["message"]


def test_invalid_field_in_a_list_names_its_position(server: InferenceServer) -> None:
    tickets = [{"subject": "fine"}, {"subject": "x", "requester": {"email": "not-an-address"}}]
    response = _score(server, json.dumps(tickets).encode())
    assert response.status_code == 400
    fields = [p["field"] for p in response.json()["error"]["problems"]]
    assert fields == ["[1].requester.email"]


def test_oversized_body_is_413(server: InferenceServer) -> None:
    body = json.dumps({"subject": "big", "description": "x" * (70 * 1024)}).encode()
    response = _score(server, body)
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["problems"][0]["field"] == "body"
    assert "65536" in error["problems"][0]["message"]


def test_scoring_logs_reach_blob_storage_redacted(
    server: InferenceServer, azurite: Azurite, container: str
) -> None:
    request_id = f"req-{uuid.uuid4()}"
    ticket = _event("score_one.json")
    assert _score(server, json.dumps(ticket).encode(), **{"x-request-id": request_id}).is_success
    # Without an id from the caller the server makes one up and returns it; the log uses it too.
    anonymous = _score(server, json.dumps(_event("score_list.json")).encode())
    server_id = anonymous.headers["x-request-id"]

    def mine() -> list[dict[str, Any]]:
        return [
            line
            for line in _log_lines(azurite, container)
            if line["request_id"] in (request_id, server_id)
        ]

    wait_until(lambda: len(mine()) == 3, "three scoring log lines in Blob Storage")
    lines = mine()
    one = next(line for line in lines if line["request_id"] == request_id)
    assert one["ticket"]["external_id"] == "AZ-1001"
    assert "ann.lee@example.com" not in json.dumps(one)
    assert "7946" not in one["ticket"]["description"]
    assert one["ticket"]["requester"] == {"tier": "gold"}
    assert one["model"]["version"]
    assert one["prediction"]["priority"]["label"] in {"urgent", "normal"}
    assert sorted(line["ticket"]["external_id"] for line in lines if line is not one) == [
        "AZ-1002",
        "AZ-1003",
    ]
    # One blob per hour and per serving process, under a date=/hour= layout.
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    names = [b.name for b in service.get_container_client(container).list_blobs()]
    assert all(n.startswith("enrichments/date=") and "/hour=" in n for n in names)
    assert server.logs().count(request_id) >= 1


def test_storage_down_never_fails_a_request(small_model_dir: Path) -> None:
    closed_port = free_port()
    dead_storage = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        f"BlobEndpoint=http://127.0.0.1:{closed_port}/devstoreaccount1;"
    )
    env = {
        "TICKET_ENRICH_AZURE_SCORING_LOG_CONNECTION_STRING": dead_storage,
        "TICKET_ENRICH_AZURE_STORAGE_RETRIES": "0",
    }
    with inference_server(small_model_dir, env) as running:
        response = _score(running, json.dumps(_event("score_one.json")).encode())
        assert response.status_code == 200, response.text
        wait_until(lambda: "scoring log write failed" in running.logs(), "the failure to be logged")
        failure = next(
            json.loads(line)
            for line in running.logs().splitlines()
            if "scoring log write failed" in line and line.startswith("{")
        )
        assert failure["scoring_log"]["failed"] == 1
        assert failure["request_id"] == response.headers["x-request-id"]

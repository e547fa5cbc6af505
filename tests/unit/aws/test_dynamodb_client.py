"""The standard-library DynamoDB client: its SigV4 signature against botocore's signer, and its
retries, CRC check and error mapping against a scripted HTTP server on loopback (the store's
tests run it against moto's server, and tests/integration/aws/test_dynamodb_signing.py against
moto with signatures enforced)."""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from adapters.aws.dynamodb_client import (
    Credentials,
    DynamoDBClient,
    DynamoDBError,
    DynamoDBUnavailable,
    default_endpoint,
    environment_credentials,
    sign,
)

NOW = datetime(2026, 11, 23, 15, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize("token", [None, "FQoGZXIvYXdzEJr//session+token=="])
def test_the_signature_is_botocores(token: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    body = json.dumps({"TableName": "t", "Key": {"pk": {"S": "ticket#é 1"}}}).encode()
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": "DynamoDB_20120810.GetItem",
    }
    ours = sign(
        headers,
        body,
        host="dynamodb.eu-west-1.amazonaws.com",
        region="eu-west-1",
        credentials=Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token),
        now=NOW,
    )

    request = AWSRequest(
        method="POST",
        url="https://dynamodb.eu-west-1.amazonaws.com/",
        data=body,
        headers={**headers, "Host": "dynamodb.eu-west-1.amazonaws.com"},
    )
    monkeypatch.setattr("botocore.auth.datetime.datetime", _FixedDatetime)
    SigV4Auth(
        BotoCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token),
        "dynamodb",
        "eu-west-1",
    ).add_auth(request)

    assert ours["X-Amz-Date"] == request.headers["X-Amz-Date"] == "20261123T150405Z"
    assert ours["Authorization"] == request.headers["Authorization"]
    assert ours.get("X-Amz-Security-Token") == request.headers.get("X-Amz-Security-Token")


class _FixedDatetime(datetime):
    @classmethod
    def utcnow(cls) -> _FixedDatetime:  # type: ignore[override]
        return cls(2026, 11, 23, 15, 4, 5)

    @classmethod
    def now(cls, tz: Any = None) -> _FixedDatetime:  # type: ignore[override]
        return cls(2026, 11, 23, 15, 4, 5, tzinfo=tz)


def test_endpoints_and_environment_credentials() -> None:
    assert default_endpoint("eu-west-1") == "https://dynamodb.eu-west-1.amazonaws.com"
    assert default_endpoint("cn-north-1") == "https://dynamodb.cn-north-1.amazonaws.com.cn"
    assert environment_credentials({}) is None
    found = environment_credentials(
        {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t"}
    )
    assert found == Credentials("k", "s", "t")
    with pytest.raises(ValueError, match="not an http"):
        DynamoDBClient("eu-west-1", endpoint_url="ftp://example.com")


# -- a scripted server: each request takes the next (status, body, crc override) ---------------


class _Script:
    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, Any], int | None]] = []
        self.requests: list[dict[str, Any]] = []


@pytest.fixture
def scripted() -> Iterator[tuple[_Script, str]]:
    script = _Script()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            script.requests.append(
                {
                    "target": self.headers["X-Amz-Target"],
                    "authorization": self.headers["Authorization"],
                    "body": json.loads(self.rfile.read(length)),
                }
            )
            status, body, crc = script.answers.pop(0)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("x-amz-crc32", str(zlib.crc32(payload) if crc is None else crc))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield script, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _client(endpoint: str, sleeps: list[float], attempts: int = 4) -> DynamoDBClient:
    return DynamoDBClient(
        "us-east-1",
        endpoint_url=endpoint,
        credentials=Credentials("k", "s"),
        max_attempts=attempts,
        sleep=sleeps.append,
    )


def test_an_answer_is_parsed_and_the_request_is_signed(scripted: tuple[_Script, str]) -> None:
    script, endpoint = scripted
    script.answers.append((200, {"Item": {"pk": {"S": "ticket#1"}}}, None))
    sleeps: list[float] = []
    found = _client(endpoint, sleeps).get_item(TableName="t", Key={"pk": {"S": "ticket#1"}})
    assert found == {"Item": {"pk": {"S": "ticket#1"}}}
    (request,) = script.requests
    assert request["target"] == "DynamoDB_20120810.GetItem"
    assert request["body"] == {"TableName": "t", "Key": {"pk": {"S": "ticket#1"}}}
    assert request["authorization"].startswith("AWS4-HMAC-SHA256 Credential=k/")
    assert sleeps == []


def test_throttling_and_server_errors_are_retried(scripted: tuple[_Script, str]) -> None:
    script, endpoint = scripted
    script.answers += [
        (400, {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException"}, None),
        (500, {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError"}, None),
        (200, {}, 12345),  # a damaged answer: its CRC does not match
        (200, {"Attributes": {}}, None),
    ]
    sleeps: list[float] = []
    assert _client(endpoint, sleeps, attempts=4).update_item(TableName="t") == {"Attributes": {}}
    assert len(script.requests) == 4
    assert len(sleeps) == 3
    assert all(0 <= s <= 0.05 * 2**i for i, s in enumerate(sleeps))


def test_a_refusal_is_not_retried_and_keeps_its_details(scripted: tuple[_Script, str]) -> None:
    script, endpoint = scripted
    reasons = [{"Code": "ConditionalCheckFailed"}, {"Code": "None"}]
    script.answers.append(
        (
            400,
            {
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "Message": "Transaction cancelled",
                "CancellationReasons": reasons,
            },
            None,
        )
    )
    sleeps: list[float] = []
    with pytest.raises(DynamoDBError) as caught:
        _client(endpoint, sleeps).transact_write_items(TransactItems=[])
    assert caught.value.code == "TransactionCanceledException"
    assert caught.value.response["Error"]["Message"] == "Transaction cancelled"
    assert caught.value.response["CancellationReasons"] == reasons
    assert sleeps == []
    # A transaction carries an idempotency token, as botocore's does.
    assert script.requests[0]["body"]["ClientRequestToken"]


def test_retries_give_up_with_the_last_error(scripted: tuple[_Script, str]) -> None:
    script, endpoint = scripted
    throttled = {"__type": "x#ProvisionedThroughputExceededException", "message": "slow down"}
    script.answers += [(400, throttled, None)] * 2
    sleeps: list[float] = []
    with pytest.raises(DynamoDBError, match="slow down") as caught:
        _client(endpoint, sleeps, attempts=2).put_item(TableName="t", Item={})
    assert caught.value.code == "ProvisionedThroughputExceededException"
    assert len(sleeps) == 1


def test_no_server_is_unavailable_after_the_attempts() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    sleeps: list[float] = []
    with pytest.raises(DynamoDBUnavailable, match="after 3 attempts"):
        _client(f"http://127.0.0.1:{port}", sleeps, attempts=3).get_item(TableName="t")
    assert len(sleeps) == 2

"""The standard-library DynamoDB client against moto's server with authentication enforced:
moto recomputes each request's SigV4 signature with the secret key it issued, so a request the
client signed wrongly is refused, and one signed rightly reaches the table."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from adapters.aws.dynamodb_client import Credentials, DynamoDBClient, DynamoDBError
from tests.integration.aws.conftest import REGION, _free_port

# moto checks nothing for this many requests (the test's own IAM set-up), then every request.
_UNCHECKED = 3
_POLICY = """{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["dynamodb:CreateTable", "dynamodb:PutItem",
   "dynamodb:GetItem"], "Resource": "*"}]}"""


@pytest.fixture
def enforcing_moto() -> Iterator[str]:
    """A moto server of its own (the setting is read at start) on loopback."""
    executable = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    assert executable is not None, "moto[server] is installed by tests/setup.d/20-aws.sh"
    port = _free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(_UNCHECKED)}
    process = subprocess.Popen(
        [executable, "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(endpoint + "/moto-api/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


def _issued_key(endpoint: str) -> dict[str, Any]:
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
    )
    iam.create_user(UserName="functions")
    iam.put_user_policy(UserName="functions", PolicyName="tickets", PolicyDocument=_POLICY)
    key: dict[str, Any] = iam.create_access_key(UserName="functions")["AccessKey"]
    return key


def test_only_a_correctly_signed_request_gets_through(enforcing_moto: str) -> None:
    key = _issued_key(enforcing_moto)
    right = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    client = DynamoDBClient(REGION, endpoint_url=enforcing_moto, credentials=right)
    client.call(
        "CreateTable",
        {
            "TableName": "signed",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
        },
    )
    item = {"pk": {"S": "ticket#1"}, "subject": {"S": "Ça ne marche pas — 500"}}
    client.put_item(TableName="signed", Item=item)
    assert client.get_item(TableName="signed", Key={"pk": {"S": "ticket#1"}})["Item"] == item

    wrong = Credentials(key["AccessKeyId"], key["SecretAccessKey"][:-1] + "x")
    forged = DynamoDBClient(REGION, endpoint_url=enforcing_moto, credentials=wrong)
    with pytest.raises(DynamoDBError) as caught:
        forged.get_item(TableName="signed", Key={"pk": {"S": "ticket#1"}})
    assert caught.value.status == 403
    assert "SignatureDoesNotMatch" in str(caught.value)

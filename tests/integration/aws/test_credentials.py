"""The functions' boto3 clients against moto's server with authentication enforced: moto checks
each request's SigV4 signature against the keys its IAM issued, so a request signed with a key
that IAM deleted is refused. Lambda hands a copy restored from a SnapStart snapshot credentials
of its own; the after-restore hook must make the store use them instead of those resolved
before the snapshot."""

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

from adapters.aws import runtime as aws_runtime
from adapters.aws.runtime import after_restore, build_runtime
from adapters.aws.settings import AwsSettings
from core.errors import StoreError
from core.ports import StoredTicket
from tests.integration.aws.conftest import CREDENTIALS, REGION, _free_port

# moto checks nothing for this many requests (the test's own IAM set-up), then every request.
_UNCHECKED = 3
_POLICY = """{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["dynamodb:CreateTable", "dynamodb:PutItem",
   "dynamodb:GetItem", "iam:CreateAccessKey", "iam:DeleteAccessKey"], "Resource": "*"}]}"""


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


def _iam(endpoint: str, key: dict[str, Any] | None = None) -> Any:
    """IAM as the set-up (moto checks none of its first requests), or as the key's user."""
    return boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=key["AccessKeyId"] if key else "setup",
        aws_secret_access_key=key["SecretAccessKey"] if key else "setup",
    )


def _use_key(monkeypatch: pytest.MonkeyPatch, key: dict[str, Any]) -> None:
    """The key in the environment, where Lambda puts a function's credentials."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


def _ticket(n: int) -> StoredTicket:
    return StoredTicket(f"t{n}", None, "2026-12-04T10:00:00.000+00:00", {"subject": "s"}, {})


def test_after_restore_the_store_signs_with_the_new_credentials(
    enforcing_moto: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith(("TICKET_ENRICH_", "AWS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_DEFAULT_REGION", CREDENTIALS["AWS_DEFAULT_REGION"])
    iam = _iam(enforcing_moto)
    iam.create_user(UserName="functions")
    iam.put_user_policy(UserName="functions", PolicyName="tickets", PolicyDocument=_POLICY)
    before = iam.create_access_key(UserName="functions")["AccessKey"]
    _use_key(monkeypatch, before)
    settings = AwsSettings(
        aws_endpoint_url=enforcing_moto, aws_region=REGION, tickets_table="signed"
    )
    boto3.client(
        "dynamodb",
        endpoint_url=enforcing_moto,
        region_name=REGION,
        aws_access_key_id=before["AccessKeyId"],
        aws_secret_access_key=before["SecretAccessKey"],
    ).create_table(
        TableName="signed",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    # The runtime as the before-snapshot hook builds it (the model is not what is tested).
    built = build_runtime(settings, enricher=object())  # type: ignore[arg-type]
    monkeypatch.setattr(aws_runtime, "runtime", _cached(built))
    assert built.store.add(_ticket(1))[1] is True

    # The snapshot is restored later with other credentials; the old key is gone by then.
    own = _iam(enforcing_moto, before)
    after = own.create_access_key(UserName="functions")["AccessKey"]
    own.delete_access_key(UserName="functions", AccessKeyId=before["AccessKeyId"])
    _use_key(monkeypatch, after)
    with pytest.raises(StoreError, match="UnrecognizedClientException|InvalidClientTokenId"):
        built.store.get("t1")

    after_restore()

    assert built.session.get_credentials().access_key == after["AccessKeyId"]
    assert built.store.get("t1").id == "t1"
    assert built.store.add(_ticket(2))[1] is True


def _cached(value: Any) -> Any:
    """A stand-in for the cached `runtime` function, already holding ``value``."""
    import functools

    @functools.cache
    def runtime() -> Any:
        return value

    runtime()
    return runtime

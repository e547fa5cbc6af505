"""moto's server on loopback standing in for S3, DynamoDB and Kinesis, the table created from
the SAM template's own definition, and the recorded API Gateway, S3 and Kinesis events."""

from __future__ import annotations

import copy
import json
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from adapters.aws import runtime as aws_runtime
from adapters.aws.runtime import Runtime, aws_client, build_runtime
from adapters.aws.settings import AwsSettings
from core import Enricher, load_enricher

ROOT = Path(__file__).parents[3]
EVENTS = ROOT / "tests" / "events" / "aws"
TEMPLATE = ROOT / "deploy" / "aws" / "template.yaml"
REGION = "us-east-1"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads a CloudFormation template, keeping each short-form intrinsic's argument as is."""


_CloudFormationLoader.add_multi_constructor(
    "!",
    lambda loader, suffix, node: (
        loader.construct_scalar(node)
        if isinstance(node, yaml.ScalarNode)
        else loader.construct_sequence(node)
        if isinstance(node, yaml.SequenceNode)
        else loader.construct_mapping(node)
    ),
)


def template() -> dict[str, Any]:
    """The SAM template as data."""
    with TEMPLATE.open() as handle:
        loaded: dict[str, Any] = yaml.load(handle, Loader=_CloudFormationLoader)
    return loaded


def load_event(name: str) -> dict[str, Any]:
    """A recorded event from tests/events/aws (a fresh copy each time)."""
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return copy.deepcopy(data)


@dataclass
class FakeLambdaContext:
    """The attributes of the Lambda context object that Powertools reads."""

    function_name: str = "ticket-enrich-test"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ticket-enrich-test"
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    remaining_ms: int = 60_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server on a free loopback port for the whole session."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Credentials boto3 accepts (moto checks none) and no TICKET_ENRICH_ leftovers."""
    import os

    for name in list(os.environ):
        if name.startswith(("TICKET_ENRICH_", "AWS_")):
            monkeypatch.delenv(name)
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    return moto_endpoint


def client(service: str, endpoint: str) -> Any:
    """boto3's client: the tests' independent view of what the functions wrote."""
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION)


def dynamodb(endpoint: str) -> Any:
    """The DynamoDB client as the functions build it (`adapters.aws.runtime.aws_client`)."""
    return aws_client("dynamodb", AwsSettings(aws_endpoint_url=endpoint, aws_region=REGION))


@pytest.fixture
def table(aws_env: str) -> str:
    """A fresh tickets table, created from the template's TicketsTable properties."""
    properties = template()["Resources"]["TicketsTable"]["Properties"]
    name = f"tickets-{uuid.uuid4().hex[:8]}"
    client("dynamodb", aws_env).create_table(
        TableName=name,
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
        GlobalSecondaryIndexes=properties["GlobalSecondaryIndexes"],
        BillingMode=properties["BillingMode"],
    )
    return name


@pytest.fixture(scope="session")
def enricher(small_model_dir: Path) -> Enricher:
    return load_enricher(small_model_dir)


@pytest.fixture
def configure(
    aws_env: str, monkeypatch: pytest.MonkeyPatch, small_model_dir: Path, table: str
) -> Iterator[Any]:
    """Set the functions' environment as the template does (pointing at moto), then let the
    handlers build their runtime from it on first use, as in a cold start."""

    def apply(**variables: str) -> AwsSettings:
        values = {
            "TICKET_ENRICH_AWS_ENDPOINT_URL": aws_env,
            "TICKET_ENRICH_AWS_REGION": REGION,
            "TICKET_ENRICH_TICKETS_TABLE": table,
            "TICKET_ENRICH_MODEL_DIR": str(small_model_dir),
            **variables,
        }
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        aws_runtime.runtime.cache_clear()
        aws_runtime.helpdesk.cache_clear()
        return AwsSettings()

    yield apply
    aws_runtime.runtime.cache_clear()
    aws_runtime.helpdesk.cache_clear()


@pytest.fixture
def runtime_for(aws_env: str, enricher: Enricher, table: str) -> Any:
    """A runtime built from explicit settings and the session's enricher (no env)."""

    def build(**overrides: Any) -> Runtime:
        settings = AwsSettings(
            aws_endpoint_url=aws_env, aws_region=REGION, tickets_table=table, **overrides
        )
        return build_runtime(settings, enricher=enricher)

    return build


@dataclass
class DeadLetters:
    """A dead-letter queue on moto's SQS, as the template's RejectedRecords."""

    url: str
    endpoint: str

    def read(self) -> list[dict[str, Any]]:
        """Every message in the queue (body parsed, with its ``code`` attribute), removed."""
        sqs = client("sqs", self.endpoint)
        found = []
        while True:
            messages = sqs.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                body = json.loads(message["Body"])
                body["code_attribute"] = message["MessageAttributes"]["code"]["StringValue"]
                found.append(body)
                sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def dead_letters(aws_env: str) -> DeadLetters:
    """A fresh queue for the records that can never succeed."""
    name = f"rejected-{uuid.uuid4().hex[:8]}"
    url = client("sqs", aws_env).create_queue(QueueName=name)["QueueUrl"]
    return DeadLetters(url, aws_env)

"""Wiring for the AWS functions: settings, boto3 clients, the store and the model, built once
per cold start behind a cached function (nothing networked happens at import)."""

from __future__ import annotations

import functools
import os
from typing import Any

from adapters.aws.dynamodb_client import DynamoDBClient
from adapters.aws.dynamodb_store import DynamoDBTicketStore
from adapters.aws.settings import AwsSettings
from core.enricher import Enricher, load_enricher
from core.errors import StoreError
from core.ports import HelpdeskClient, Outbox


class Runtime:
    """What a function needs, built once per container. DynamoDB is reached through the
    standard-library client (`adapters.aws.dynamodb_client`), so the API functions never
    import botocore; the S3 client (botocore's) is made on first use, by the functions that
    read or write S3."""

    def __init__(
        self,
        settings: AwsSettings,
        *,
        enricher: Enricher | None = None,
        s3: Any = None,
        dynamodb: Any = None,
    ) -> None:
        self.settings = settings
        self._s3 = s3
        dynamodb = dynamodb if dynamodb is not None else dynamodb_client(settings)
        self.store = DynamoDBTicketStore(dynamodb, settings.tickets_table)
        self.enricher = enricher if enricher is not None else self._load_model()

    @property
    def s3(self) -> Any:
        """The S3 client, created on first use."""
        if self._s3 is None:
            self._s3 = aws_client("s3", self.settings)
        return self._s3

    @property
    def outbox(self) -> Outbox | None:
        """The store's outbox when delivery to a helpdesk is on, so that intake enqueues."""
        return self.store if self.settings.deliver else None

    def _load_model(self) -> Enricher:
        """From S3 (cached under /tmp, checksums verified) when `model_s3_uri` is set, else
        the artifact bundled in the deployment package."""
        settings = self.settings
        model_dir = settings.serving_model_dir
        if settings.model_s3_uri:
            # Imported here: it needs botocore, which a bundled model never does.
            from adapters.aws.s3_model import S3ModelStore

            model_dir = S3ModelStore(self.s3, settings.model_cache_dir).fetch(
                settings.model_s3_uri, settings.model_sha256 or None
            )
        return load_enricher(model_dir, limits=settings.limits, options=settings.enrich_options)


@functools.cache
def _session() -> Any:
    # botocore's session resolves credentials and region like boto3 (environment, the Lambda
    # container's credentials); using it directly skips importing boto3 at cold start.
    import botocore.session

    return botocore.session.get_session()


def region(settings: AwsSettings) -> str:
    """The functions' region: the setting, else Lambda's ``AWS_REGION``, else
    ``AWS_DEFAULT_REGION`` (as botocore looks it up)."""
    found = (
        settings.aws_region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    )
    if not found:
        raise StoreError("no AWS region: set TICKET_ENRICH_AWS_REGION or AWS_REGION")
    return found


def dynamodb_client(settings: AwsSettings) -> DynamoDBClient:
    """The DynamoDB client, with the same timeouts and attempts as `aws_client`'s."""
    return DynamoDBClient(
        region(settings),
        endpoint_url=settings.aws_endpoint_url,
        connect_timeout_s=5,
        read_timeout_s=30,
        max_attempts=4,
    )


def aws_client(service: str, settings: AwsSettings) -> Any:
    """A client with bounded timeouts and standard retries."""
    from botocore.config import Config

    config = Config(
        connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 4}
    )
    return _session().create_client(
        service,
        endpoint_url=settings.aws_endpoint_url,
        region_name=settings.aws_region,
        config=config,
    )


def build_runtime(
    settings: AwsSettings,
    *,
    s3: Any = None,
    dynamodb: Any = None,
    enricher: Enricher | None = None,
) -> Runtime:
    """Build the runtime from settings; tests pass their own clients or enricher."""
    return Runtime(settings, enricher=enricher, s3=s3, dynamodb=dynamodb)


@functools.cache
def runtime() -> Runtime:
    """The container's runtime, built on the first invocation from the environment."""
    return build_runtime(AwsSettings())


@functools.cache
def helpdesk() -> HelpdeskClient:
    """The container's helpdesk client, from the same settings as `runtime`."""
    from adapters.helpdesk.factory import helpdesk_from_settings

    return helpdesk_from_settings(runtime().settings)

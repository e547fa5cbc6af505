"""Wiring for the AWS functions: settings, boto3 clients, the store and the model, built once
per cold start behind a cached function (nothing networked happens at import)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from adapters.aws.dynamodb_store import DynamoDBTicketStore
from adapters.aws.s3_model import S3ModelStore
from adapters.aws.settings import AwsSettings
from core.enricher import Enricher, load_enricher
from core.ports import HelpdeskClient, Outbox


@dataclass(frozen=True)
class Runtime:
    """What a function needs, built once per container."""

    settings: AwsSettings
    enricher: Enricher
    store: DynamoDBTicketStore
    s3: Any

    @property
    def outbox(self) -> Outbox | None:
        """The store's outbox when delivery to a helpdesk is on, so that intake enqueues."""
        return self.store if self.settings.deliver else None


def aws_client(service: str, settings: AwsSettings) -> Any:
    """A boto3 client with bounded timeouts and standard retries (boto3 reads the credentials)."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 4}
    )
    return boto3.session.Session().client(
        service,
        endpoint_url=settings.aws_endpoint_url,
        region_name=settings.aws_region,
        config=config,
    )


def load_model(settings: AwsSettings, s3: Any) -> Enricher:
    """The enricher: from S3 (cached under /tmp, checksums verified) when `model_s3_uri` is
    set, else from the artifact bundled in the deployment package."""
    model_dir = (
        S3ModelStore(s3, settings.model_cache_dir).fetch(
            settings.model_s3_uri, settings.model_sha256 or None
        )
        if settings.model_s3_uri
        else settings.serving_model_dir
    )
    return load_enricher(model_dir, limits=settings.limits, options=settings.enrich_options)


def build_runtime(
    settings: AwsSettings,
    *,
    s3: Any = None,
    dynamodb: Any = None,
    enricher: Enricher | None = None,
) -> Runtime:
    """Build the runtime from settings; tests pass their own clients or enricher."""
    s3 = s3 if s3 is not None else aws_client("s3", settings)
    dynamodb = dynamodb if dynamodb is not None else aws_client("dynamodb", settings)
    return Runtime(
        settings=settings,
        enricher=enricher if enricher is not None else load_model(settings, s3),
        store=DynamoDBTicketStore(dynamodb, settings.tickets_table),
        s3=s3,
    )


@functools.cache
def runtime() -> Runtime:
    """The container's runtime, built on the first invocation from the environment."""
    return build_runtime(AwsSettings())


@functools.cache
def helpdesk() -> HelpdeskClient:
    """The container's helpdesk client, from the same settings as `runtime`."""
    from adapters.helpdesk.factory import helpdesk_from_settings

    return helpdesk_from_settings(runtime().settings)

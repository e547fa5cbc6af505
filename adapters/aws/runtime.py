"""Wiring for the AWS functions: settings, boto3 clients, the store and the model, built once
per cold start behind a cached function (nothing networked happens at import)."""

from __future__ import annotations

import functools
from typing import Any

from adapters.aws.dynamodb_store import DynamoDBTicketStore
from adapters.aws.s3_model import S3ModelStore
from adapters.aws.settings import AwsSettings
from core.enricher import Enricher, load_enricher
from core.ports import HelpdeskClient, Outbox


class Runtime:
    """What a function needs, built once per container. Clients are made on first use: the
    API functions never pay for an S3 client (botocore builds each from a large service
    model), and no function pays for boto3's resource layer."""

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
        dynamodb = dynamodb if dynamodb is not None else aws_client("dynamodb", settings)
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
        model_dir = (
            S3ModelStore(self.s3, settings.model_cache_dir).fetch(
                settings.model_s3_uri, settings.model_sha256 or None
            )
            if settings.model_s3_uri
            else settings.serving_model_dir
        )
        return load_enricher(model_dir, limits=settings.limits, options=settings.enrich_options)


@functools.cache
def _session() -> Any:
    # botocore's session resolves credentials and region like boto3 (environment, the Lambda
    # container's credentials); using it directly skips importing boto3 at cold start.
    import botocore.session

    return botocore.session.get_session()


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

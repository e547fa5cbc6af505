"""Wiring for the AWS functions: settings, boto3 clients, the store and the model, built once
per execution environment behind a cached function (nothing networked happens at import).

With Lambda SnapStart (the SAM template turns it on for the serving functions), the runtime is
built before the snapshot (`prepare_snapshot`: boto3 imported, the model loaded, verified and
warmed) and every restored copy re-creates what it must not share with the others
(`after_restore`: the random generator's seed, the boto3 session with its credentials, its
clients and their connections). Without SnapStart the same runtime is built on the first
invocation instead.
"""

from __future__ import annotations

import functools
import importlib
import os
import random
from typing import Any

from adapters.aws.dead_letters import DeadLetterQueue
from adapters.aws.dynamodb_store import DynamoDBTicketStore
from adapters.aws.settings import AwsSettings
from core.enricher import Enricher, load_enricher
from core.errors import StoreError
from core.ports import HelpdeskClient, Outbox

# Enriched once before the snapshot, so that what the enricher loads on first use (the
# sentiment lexicon, the language model) is in memory in every restored copy.
_WARM_TICKET = {
    "subject": "Warm-up: the NameNode fails to start after the upgrade",
    "description": "All DataNodes are down since this morning; the cluster is unusable.",
}


class Runtime:
    """What a function needs, built once per execution environment: the settings, the model,
    and one boto3 session with its DynamoDB client (the store) and, on first use, its S3 and
    SQS (dead letters) clients. `connect` replaces the session and clients; the model is kept."""

    def __init__(
        self,
        settings: AwsSettings,
        *,
        enricher: Enricher | None = None,
        s3: Any = None,
        dynamodb: Any = None,
        sqs: Any = None,
    ) -> None:
        self.settings = settings
        self._given = {"s3": s3, "dynamodb": dynamodb, "sqs": sqs}
        self.session: Any = None
        self.connect()
        self.enricher = enricher if enricher is not None else self._load_model()

    def connect(self) -> None:
        """A new boto3 session (credentials resolved again) and new clients, sharing nothing
        with the previous ones but botocore's parsed service models (data: no credentials, no
        connections), which spares re-reading them. Clients the caller gave are kept."""
        self.session = new_session(self.session)
        self._clients: dict[str, Any] = {k: v for k, v in self._given.items() if v is not None}
        self.store = DynamoDBTicketStore(self.client("dynamodb"), self.settings.tickets_table)

    def client(self, service: str) -> Any:
        """This runtime's client for an AWS service, created on first use."""
        if service not in self._clients:
            self._clients[service] = aws_client(service, self.settings, self.session)
        return self._clients[service]

    @property
    def s3(self) -> Any:
        """The S3 client, created on first use."""
        return self.client("s3")

    @property
    def dead_letters(self) -> DeadLetterQueue | None:
        """The dead-letter queue for records that can never succeed, when one is set."""
        url = self.settings.dead_letter_queue_url
        return DeadLetterQueue(self.client("sqs"), url) if url else None

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
            from adapters.aws.s3_model import S3ModelStore

            model_dir = S3ModelStore(self.s3, settings.model_cache_dir).fetch(
                settings.model_s3_uri, settings.model_sha256 or None
            )
        return load_enricher(model_dir, limits=settings.limits, options=settings.enrich_options)


def new_session(previous: Any = None) -> Any:
    """A boto3 session of its own (not boto3's module-level default), so that replacing it
    replaces its credentials and connection pools too; with the ``previous`` one's model
    loader when given."""
    import boto3
    import botocore.session

    core = botocore.session.get_session()
    if previous is not None:
        core.register_component("data_loader", previous._session.get_component("data_loader"))
    return boto3.session.Session(botocore_session=core)


def region(settings: AwsSettings) -> str:
    """The functions' region: the setting, else Lambda's ``AWS_REGION``, else
    ``AWS_DEFAULT_REGION`` (as boto3 looks it up)."""
    found = (
        settings.aws_region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    )
    if not found:
        raise StoreError("no AWS region: set TICKET_ENRICH_AWS_REGION or AWS_REGION")
    return found


def aws_client(service: str, settings: AwsSettings, session: Any = None) -> Any:
    """A boto3 client with bounded timeouts and standard retries (a new session's unless one
    is given)."""
    from botocore.config import Config

    config = Config(
        connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 4}
    )
    return (session or new_session()).client(
        service,
        endpoint_url=settings.aws_endpoint_url,
        region_name=region(settings),
        config=config,
    )


def build_runtime(
    settings: AwsSettings,
    *,
    s3: Any = None,
    dynamodb: Any = None,
    sqs: Any = None,
    enricher: Enricher | None = None,
) -> Runtime:
    """Build the runtime from settings; tests pass their own clients or enricher."""
    return Runtime(settings, enricher=enricher, s3=s3, dynamodb=dynamodb, sqs=sqs)


@functools.cache
def runtime() -> Runtime:
    """The execution environment's runtime, built from the environment before the snapshot
    (SnapStart) or on the first invocation."""
    return build_runtime(AwsSettings())


@functools.cache
def helpdesk() -> HelpdeskClient:
    """The execution environment's helpdesk client, from the same settings as `runtime`."""
    from adapters.helpdesk.factory import helpdesk_from_settings

    return helpdesk_from_settings(runtime().settings)


def prepare_snapshot() -> None:
    """SnapStart's before-snapshot hook: build the runtime (boto3 imported, clients made, the
    model loaded, its checksums verified and its samples re-enriched) and enrich one ticket,
    so that a restored copy's first request does none of it."""
    runtime().enricher.enrich(_WARM_TICKET)


def after_restore() -> None:
    """SnapStart's after-restore hook. Every copy restored from one snapshot starts with the
    same memory: reseed the random generator (botocore's retry jitter, the delivery backoff)
    from the operating system, and replace the boto3 session, its clients, their pooled
    connections and the credentials resolved before the snapshot (which may have expired)."""
    random.seed()
    if runtime.cache_info().currsize:
        runtime().connect()
    helpdesk.cache_clear()  # its HTTP client's pooled connections


@functools.cache
def register_snapstart_hooks() -> bool:
    """Register `prepare_snapshot` and `after_restore` with Lambda's python runtime, whose
    ``snapshot_restore_py`` module exists only there; False elsewhere (tests, local runs),
    where the runtime is built on the first invocation. Registering does no work itself."""
    try:
        hooks = importlib.import_module("snapshot_restore_py")
    except ImportError:
        return False
    hooks.register_before_snapshot(prepare_snapshot)
    hooks.register_after_restore(after_restore)
    return True

"""`ticket-enrich deploy gcp`: build the source bundle and create or update the three Cloud
Functions (2nd gen) with google-cloud-functions' `FunctionServiceClient`.

``--dry-run`` builds the bundle and prints, as JSON, the `CreateFunctionRequest` of each function
(and the update mask an `UpdateFunctionRequest` would carry for one that exists), without any
network call. Without it, and with Application Default Credentials, it uploads the bundle
through `GenerateUploadUrl` and creates or updates each function. The security rules, indexes
and the Cloud Scheduler job that calls the drain are deployed with the Firebase and gcloud
commands printed at the end (see docs/gcp.md).

With a registry bucket and an exports bucket (``--registry-bucket``, ``--exports-bucket`` or
their settings), it also deploys the two retraining functions from their own source (with
scikit-learn) and creates or updates the Cloud Scheduler job that calls the scheduled one, with
google-cloud-scheduler's `CloudSchedulerClient`. ``--no-traffic`` pins each existing enrichment
function's traffic to the revision serving it before the update, so that the new revision takes
none until `ticket-enrich rollout gcp start` gives it a share.

It also declares the bad-record path: the Pub/Sub dead-letter topic (``--dead-letter-topic``,
default ``ticket-enrich-rejected``) that the enrichment functions publish tickets which can never
be enriched to, with the reason, and a pull subscription on it that keeps them for 7 days (a
topic without a subscription drops what is published to it). The functions get the topic as
``TICKET_ENRICH_DEAD_LETTER_TOPIC``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from adapters.gcp.settings import GcpSettings
from core.errors import TicketEnrichError
from core.settings import Settings
from deploy.gcp import rollout
from deploy.gcp.bundle import Bundle, build_bundle, build_retrain_bundle

if TYPE_CHECKING:
    # The retraining module imports the Functions Framework (the `gcp` extra): it is imported
    # where it is used, so that the CLI's parser builds without the extra.
    from adapters.gcp.retrain import RetrainSettings

HELP = "build the Cloud Functions bundle and create or update the functions (or --dry-run)"

FIRESTORE_CREATED = "google.cloud.firestore.document.v1.created"
DATABASE_WRITTEN = "google.firebase.database.ref.v1.written"
UPDATE_MASK = ["build_config", "service_config", "event_trigger", "labels"]
RETRAIN_UPLOAD = "ticket-enrich-retrain-upload"
RETRAIN_SCHEDULE = "ticket-enrich-retrain-schedule"
RETRAIN_JOB = "ticket-enrich-retrain"
DEAD_LETTER_TOPIC = "ticket-enrich-rejected"
# Pub/Sub's longest retention for unacknowledged messages.
DEAD_LETTER_RETENTION_S = 7 * 24 * 3600
# The functions whose new revisions a rollout splits traffic to.
ROLLOUT_FUNCTIONS = ("ticket-enrich-firestore", "ticket-enrich-rtdb")
# Event-driven 2nd-gen functions may run 9 minutes; HTTP ones 60, but Cloud Scheduler waits
# 30 minutes at most for an HTTP target, so the scheduled retraining gets that.
RETRAIN_UPLOAD_TIMEOUT_S = 540
RETRAIN_SCHEDULE_TIMEOUT_S = 1800
_RETRAIN_SETTINGS = ("registry_bucket", "exports_bucket", "exports_prefix", "retrain_preset")
# Settings passed to the functions as plain environment variables; secrets go through
# Secret Manager and are never printed or sent as values.
_PLAIN_SETTINGS = (
    "tickets_collection",
    "outbox_collection",
    "rtdb_tickets_path",
    "deliver",
    "helpdesk",
    "helpdesk_webhook_url",
    "helpdesk_url",
    "helpdesk_user",
    "helpdesk_project",
    "helpdesk_queue",
    "redact_pii",
    "dead_letter_topic",
)
_SECRETS = {
    "webhook": ("helpdesk_webhook_secret", "ticket-enrich-helpdesk-webhook-secret"),
    "zendesk": ("helpdesk_token", "ticket-enrich-helpdesk-token"),
    "freshdesk": ("helpdesk_token", "ticket-enrich-helpdesk-token"),
    "jira": ("helpdesk_token", "ticket-enrich-helpdesk-token"),
    "rt": ("helpdesk_token", "ticket-enrich-helpdesk-token"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `ticket-enrich deploy gcp` (``--dry-run`` is added by the CLI)."""
    parser.add_argument("--project", help="GCP project id (default: TICKET_ENRICH_GCP_PROJECT)")
    parser.add_argument("--region", help="functions' region (default: TICKET_ENRICH_GCP_REGION)")
    parser.add_argument("--model", type=Path, help="artifact to bundle (default: the served one)")
    parser.add_argument("--bundle", type=Path, help="where to write the zip (default: temporary)")
    parser.add_argument(
        "--service-account", help="the functions' service account e-mail (default: the runtime's)"
    )
    parser.add_argument(
        "--rtdb-instance",
        help="Realtime Database instance for the database trigger (default: from "
        "TICKET_ENRICH_RTDB_URL; without either, that function is left out)",
    )
    parser.add_argument(
        "--rtdb-region", default="us-central1", help="the Realtime Database instance's region"
    )
    parser.add_argument(
        "--registry-bucket",
        help="model registry bucket (default: TICKET_ENRICH_REGISTRY_BUCKET); with an exports "
        "bucket, the retraining functions and their schedule are deployed too",
    )
    parser.add_argument(
        "--exports-bucket",
        help="closed-ticket exports bucket (default: TICKET_ENRICH_EXPORTS_BUCKET)",
    )
    parser.add_argument(
        "--exports-region", help="the exports bucket's location (default: the functions' region)"
    )
    parser.add_argument(
        "--scheduler-service-account",
        help="service account whose OIDC token Cloud Scheduler sends to the retraining function",
    )
    parser.add_argument(
        "--dead-letter-topic",
        help="Pub/Sub topic id for tickets that can never be enriched (default: "
        f"TICKET_ENRICH_DEAD_LETTER_TOPIC, else {DEAD_LETTER_TOPIC}); created with a "
        "subscription that keeps them 7 days",
    )
    parser.add_argument(
        "--no-traffic",
        action="store_true",
        help="new revisions of existing enrichment functions take no traffic (then: rollout gcp)",
    )


def _rtdb_instance(config: GcpSettings, explicit: str | None) -> str | None:
    if explicit:
        return explicit
    if not config.rtdb_url:
        return None
    host = urlsplit(config.rtdb_url).hostname or ""
    return host.split(".", 1)[0] or None


def _environment(config: GcpSettings, project: str) -> dict[str, str]:
    env = {"TICKET_ENRICH_MODEL_DIR": "model", "TICKET_ENRICH_GCP_PROJECT": project}
    if config.rtdb_url:
        env["TICKET_ENRICH_RTDB_URL"] = config.rtdb_url
    for name in _PLAIN_SETTINGS:
        value = getattr(config, name)
        if value is not None:
            env[f"TICKET_ENRICH_{name.upper()}"] = (
                str(value).lower() if isinstance(value, bool) else str(value)
            )
    return dict(sorted(env.items()))


def functions_for(
    config: GcpSettings,
    *,
    project: str,
    region: str,
    source: Any,
    service_account: str | None,
    rtdb_instance: str | None,
    rtdb_region: str,
    retrain_source: Any = None,
    exports_region: str | None = None,
) -> list[Any]:
    """The `functions_v2.Function` of each function, built with the client library's types
    (the retraining ones when ``config`` names both buckets and ``retrain_source`` is given)."""
    from google.cloud import functions_v2

    parent = f"projects/{project}/locations/{region}"
    retry = functions_v2.EventTrigger.RetryPolicy.RETRY_POLICY_RETRY
    secret_setting, secret_name = _SECRETS[config.helpdesk]
    secrets = (
        [
            functions_v2.SecretEnvVar(
                key=f"TICKET_ENRICH_{secret_setting.upper()}",
                project_id=project,
                secret=secret_name,
                version="latest",
            )
        ]
        if config.deliver
        else []
    )

    def service(timeout_s: int, ingress: Any) -> Any:
        return functions_v2.ServiceConfig(
            available_memory="512Mi",
            available_cpu="1",
            timeout_seconds=timeout_s,
            max_instance_count=20,
            max_instance_request_concurrency=1,
            environment_variables=_environment(config, project),
            secret_environment_variables=secrets,
            ingress_settings=ingress,
            service_account_email=service_account or "",
        )

    def build(entry_point: str) -> Any:
        return functions_v2.BuildConfig(runtime="python311", entry_point=entry_point, source=source)

    internal = functions_v2.ServiceConfig.IngressSettings.ALLOW_INTERNAL_ONLY
    labels = {"app": "ticket-enrich"}
    functions = [
        functions_v2.Function(
            name=f"{parent}/functions/ticket-enrich-firestore",
            description="Enriches tickets created in Firestore tickets/{ticketId}",
            build_config=build("on_ticket_created"),
            service_config=service(60, internal),
            event_trigger=functions_v2.EventTrigger(
                trigger_region=region,
                event_type=FIRESTORE_CREATED,
                event_filters=[
                    functions_v2.EventFilter(attribute="database", value=config.firestore_database),
                    functions_v2.EventFilter(
                        attribute="document",
                        value=f"{config.tickets_collection}/{{ticketId}}",
                        operator="match-path-pattern",
                    ),
                ],
                retry_policy=retry,
                service_account_email=service_account or "",
            ),
            labels=labels,
        ),
        functions_v2.Function(
            name=f"{parent}/functions/ticket-enrich-drain",
            description="Delivers due tickets from the Firestore outbox (Cloud Scheduler)",
            build_config=build("drain_outbox"),
            # Cloud Scheduler calls it with an OIDC token: reachable, but only for principals
            # granted run.invoker (no allUsers binding is made).
            service_config=service(120, functions_v2.ServiceConfig.IngressSettings.ALLOW_ALL),
            labels=labels,
        ),
    ]
    if rtdb_instance is not None:
        functions.append(
            functions_v2.Function(
                name=f"{parent}/functions/ticket-enrich-rtdb",
                description="Enriches tickets written under /tickets/{ticketId}",
                build_config=build("on_ticket_written"),
                service_config=service(60, internal),
                event_trigger=functions_v2.EventTrigger(
                    trigger_region=rtdb_region,
                    event_type=DATABASE_WRITTEN,
                    event_filters=[
                        functions_v2.EventFilter(attribute="instance", value=rtdb_instance),
                        functions_v2.EventFilter(
                            attribute="ref",
                            value=f"/{config.rtdb_tickets_path.strip('/')}/{{ticketId}}",
                            operator="match-path-pattern",
                        ),
                    ],
                    retry_policy=retry,
                    service_account_email=service_account or "",
                ),
                labels=labels,
            )
        )
    from adapters.gcp.retrain import RetrainSettings

    if isinstance(config, RetrainSettings) and retrain_source is not None:
        functions += retrain_functions(
            config,
            project=project,
            region=region,
            source=retrain_source,
            service_account=service_account,
            exports_region=exports_region or region,
        )
    return functions


def retraining(config: GcpSettings) -> bool:
    """Whether the settings name both buckets that retraining needs."""
    from adapters.gcp.retrain import RetrainSettings

    return isinstance(config, RetrainSettings) and bool(
        config.registry_bucket and config.exports_bucket
    )


def retrain_functions(
    config: RetrainSettings,
    *,
    project: str,
    region: str,
    source: Any,
    service_account: str | None,
    exports_region: str,
) -> list[Any]:
    """The two retraining functions: one on the exports bucket's finalized objects, one called
    by Cloud Scheduler. One instance each, one request at a time, memory for training."""
    from google.cloud import functions_v2

    from adapters.gcp.retrain import STORAGE_FINALIZED

    if not retraining(config):
        raise TicketEnrichError("retraining needs a registry bucket and an exports bucket")
    parent = f"projects/{project}/locations/{region}"
    env = {"TICKET_ENRICH_GCP_PROJECT": project}
    env["TICKET_ENRICH_PROMOTION_TOLERANCE"] = str(config.promotion_tolerance)
    for name in _RETRAIN_SETTINGS:
        value = getattr(config, name)
        if value is not None:
            env[f"TICKET_ENRICH_{name.upper()}"] = str(value)

    def service(timeout_s: int, ingress: Any) -> Any:
        return functions_v2.ServiceConfig(
            available_memory="2Gi",
            available_cpu="1",
            timeout_seconds=timeout_s,
            max_instance_count=1,
            max_instance_request_concurrency=1,
            environment_variables=dict(sorted(env.items())),
            ingress_settings=ingress,
            service_account_email=service_account or "",
        )

    def build(entry_point: str) -> Any:
        return functions_v2.BuildConfig(runtime="python311", entry_point=entry_point, source=source)

    labels = {"app": "ticket-enrich", "role": "retrain"}
    return [
        functions_v2.Function(
            name=f"{parent}/functions/{RETRAIN_UPLOAD}",
            description=f"Retrains on closed-ticket exports under gs://{config.exports_bucket}/"
            f"{config.exports_prefix}",
            build_config=build("retrain_on_upload"),
            service_config=service(
                RETRAIN_UPLOAD_TIMEOUT_S,
                functions_v2.ServiceConfig.IngressSettings.ALLOW_INTERNAL_ONLY,
            ),
            event_trigger=functions_v2.EventTrigger(
                trigger_region=exports_region,
                event_type=STORAGE_FINALIZED,
                # Cloud Storage triggers filter on the bucket only; the function skips objects
                # outside the prefix.
                event_filters=[
                    functions_v2.EventFilter(attribute="bucket", value=config.exports_bucket)
                ],
                retry_policy=functions_v2.EventTrigger.RetryPolicy.RETRY_POLICY_RETRY,
                service_account_email=service_account or "",
            ),
            labels=labels,
        ),
        functions_v2.Function(
            name=f"{parent}/functions/{RETRAIN_SCHEDULE}",
            description="Retrains on the newest closed-ticket export (Cloud Scheduler)",
            build_config=build("retrain_on_schedule"),
            # Called with an OIDC token: only principals granted run.invoker get in.
            service_config=service(
                RETRAIN_SCHEDULE_TIMEOUT_S, functions_v2.ServiceConfig.IngressSettings.ALLOW_ALL
            ),
            labels=labels,
        ),
    ]


def retrain_job(
    config: RetrainSettings, *, project: str, region: str, uri: str, service_account: str
) -> Any:
    """The Cloud Scheduler job that calls the scheduled retraining function with an OIDC token
    (google-cloud-scheduler's `Job`)."""
    from google.cloud import scheduler_v1
    from google.protobuf import duration_pb2

    return scheduler_v1.Job(
        name=f"projects/{project}/locations/{region}/jobs/{RETRAIN_JOB}",
        description="Retrains the ticket priority model on the newest closed-ticket export",
        schedule=config.retrain_schedule,
        time_zone="Etc/UTC",
        http_target=scheduler_v1.HttpTarget(
            uri=uri,
            http_method=scheduler_v1.HttpMethod.POST,
            oidc_token=scheduler_v1.OidcToken(service_account_email=service_account, audience=uri),
        ),
        attempt_deadline=duration_pb2.Duration(seconds=RETRAIN_SCHEDULE_TIMEOUT_S),
        # A failed run is not retried: the next schedule, or a new export, tries again.
        retry_config=scheduler_v1.RetryConfig(retry_count=0),
    )


def dead_letter_resources(project: str, topic: str) -> tuple[Any, Any]:
    """The dead-letter `pubsub_v1.Topic` and the pull `Subscription` that keeps its messages,
    built with the client library's types."""
    from google.protobuf import duration_pb2
    from google.pubsub_v1 import ExpirationPolicy, Subscription, Topic

    name = f"projects/{project}/topics/{topic}"
    return (
        Topic(name=name, labels={"app": "ticket-enrich"}),
        Subscription(
            name=f"projects/{project}/subscriptions/{topic}-hold",
            topic=name,
            ack_deadline_seconds=60,
            message_retention_duration=duration_pb2.Duration(seconds=DEAD_LETTER_RETENTION_S),
            # An empty policy: the subscription never expires, however long nobody reads it.
            expiration_policy=ExpirationPolicy(),
            labels={"app": "ticket-enrich"},
        ),
    )


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")


def _follow_up(project: str, region: str, dead_letter_topic: str) -> list[str]:
    here = Path(__file__).resolve().parent
    return [
        f"gcloud pubsub topics add-iam-policy-binding {dead_letter_topic} --project {project} "
        "--member serviceAccount:FUNCTIONS_SA --role roles/pubsub.publisher",
        f"firebase deploy --project {project} --config {here / 'firebase.json'} "
        "--only firestore:rules,firestore:indexes,database",
        f"gcloud scheduler jobs create http ticket-enrich-drain --project {project} "
        f"--location {region} --schedule '* * * * *' --http-method POST "
        f"--uri $(gcloud functions describe ticket-enrich-drain --gen2 --region {region} "
        f"--project {project} --format 'value(serviceConfig.uri)') "
        "--oidc-service-account-email SCHEDULER_SA",
    ]


def _bundle(args: argparse.Namespace, config: GcpSettings, workdir: Path) -> Bundle:
    model = args.model if args.model is not None else config.serving_model_dir
    out = args.bundle if args.bundle is not None else workdir / "ticket-enrich-gcp.zip"
    return build_bundle(Path(model).resolve(), out)


def _config(args: argparse.Namespace, settings: Settings) -> RetrainSettings:
    from adapters.gcp.retrain import RetrainSettings

    config = RetrainSettings(**settings.model_dump())
    update = {
        name: getattr(args, name)
        for name in ("registry_bucket", "exports_bucket")
        if getattr(args, name, None)
    }
    return config.model_copy(update=update) if update else config


def _as_json(message: Any) -> Any:
    return json.loads(
        type(message).to_json(
            message, use_integers_for_enums=False, always_print_fields_with_no_presence=False
        )
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Build the bundles, then print (``--dry-run``) or send the create/update requests."""
    from google.cloud import functions_v2, scheduler_v1

    config = _config(args, settings)
    project = args.project or config.gcp_project
    if not project:
        raise TicketEnrichError("deploy gcp needs --project or TICKET_ENRICH_GCP_PROJECT")
    region = args.region or config.gcp_region
    topic = args.dead_letter_topic or config.dead_letter_topic or DEAD_LETTER_TOPIC
    config = config.model_copy(update={"dead_letter_topic": topic})
    retrain = retraining(config)
    if retrain and not args.dry_run and not args.scheduler_service_account:
        raise TicketEnrichError(
            "deploying the retraining functions needs --scheduler-service-account (the identity "
            "Cloud Scheduler calls the scheduled retraining with)"
        )
    with tempfile.TemporaryDirectory() as workdir:
        bundle = _bundle(args, config, Path(workdir))
        _say(
            f"bundle: {bundle.path} ({bundle.size_bytes} bytes, {bundle.files} files, "
            f"model {bundle.model_version})"
        )
        retrain_bundle = None
        if retrain:
            retrain_bundle = build_retrain_bundle(
                bundle.path.with_name(f"{bundle.path.stem}-retrain.zip")
            )
            _say(
                f"retraining bundle: {retrain_bundle.path} ({retrain_bundle.size_bytes} bytes, "
                f"{retrain_bundle.files} files)"
            )
        parent = f"projects/{project}/locations/{region}"
        retrain_source = None
        if args.dry_run:
            source = functions_v2.Source(
                storage_source=functions_v2.StorageSource(
                    bucket="<bucket from GenerateUploadUrl>",
                    object_="<object from GenerateUploadUrl>",
                )
            )
            retrain_source = source if retrain else None
        else:
            source = _upload(parent, bundle)
            retrain_source = _upload(parent, retrain_bundle) if retrain_bundle else None
        functions = functions_for(
            config,
            project=project,
            region=region,
            source=source,
            service_account=args.service_account,
            rtdb_instance=_rtdb_instance(config, args.rtdb_instance),
            rtdb_region=args.rtdb_region,
            retrain_source=retrain_source,
            exports_region=args.exports_region,
        )
        if args.dry_run:
            requests = [
                {
                    "create": _as_json(
                        functions_v2.CreateFunctionRequest(
                            parent=parent,
                            function=function,
                            function_id=function.name.rsplit("/", 1)[-1],
                        )
                    ),
                    "update_mask_if_it_exists": UPDATE_MASK,
                }
                for function in functions
            ]
            dead_topic, dead_hold = dead_letter_resources(project, topic)
            printed: dict[str, Any] = {
                "requirements": bundle.requirements,
                "requests": requests,
                "dead_letters": {
                    "topic": _as_json(dead_topic),
                    "subscription": _as_json(dead_hold),
                },
            }
            if retrain_bundle is not None:
                printed["retrain_requirements"] = retrain_bundle.requirements
                job = retrain_job(
                    config,
                    project=project,
                    region=region,
                    uri=f"<url of {RETRAIN_SCHEDULE}>",
                    service_account=args.scheduler_service_account or "<scheduler service account>",
                )
                printed["scheduler"] = _as_json(
                    scheduler_v1.CreateJobRequest(parent=parent, job=job)
                )
            _say(json.dumps(printed, indent=2))
        else:
            _dead_letters(*dead_letter_resources(project, topic))
            deployed = _deploy(parent, functions, no_traffic=args.no_traffic)
            if retrain:
                _schedule(
                    retrain_job(
                        config,
                        project=project,
                        region=region,
                        uri=deployed[RETRAIN_SCHEDULE].url,
                        service_account=args.scheduler_service_account,
                    )
                )
    _say("then, once:")
    for line in _follow_up(project, region, topic):
        _say(f"  {line}")
    return 0


def _upload(parent: str, bundle: Bundle) -> Any:
    import httpx
    from google.cloud import functions_v2

    client = functions_v2.FunctionServiceClient()
    upload = client.generate_upload_url(
        request=functions_v2.GenerateUploadUrlRequest(
            parent=parent, environment=functions_v2.Environment.GEN_2
        )
    )
    reply = httpx.put(
        upload.upload_url,
        content=bundle.path.read_bytes(),
        headers={"Content-Type": "application/zip"},
        timeout=300.0,
    )
    if reply.status_code >= 300:
        raise TicketEnrichError(f"uploading the bundle failed: {reply.status_code} {reply.text}")
    return functions_v2.Source(storage_source=upload.storage_source)


def _deploy(parent: str, functions: list[Any], *, no_traffic: bool = False) -> dict[str, Any]:
    """Create or update each function; with ``no_traffic``, an existing enrichment function's
    traffic stays on the revisions serving it. The deployed functions by id."""
    from google.api_core.exceptions import NotFound
    from google.cloud import functions_v2
    from google.protobuf import field_mask_pb2

    client = functions_v2.FunctionServiceClient()
    done: dict[str, Any] = {}
    for function in functions:
        function_id = function.name.rsplit("/", 1)[-1]
        operation: Any
        pinned: list[rollout.Target] | None = None
        try:
            existing = client.get_function(name=function.name)
        except NotFound:
            operation = client.create_function(
                request=functions_v2.CreateFunctionRequest(
                    parent=parent, function=function, function_id=function_id
                )
            )
        else:
            if no_traffic and function_id in ROLLOUT_FUNCTIONS:
                pinned = _pin(existing.service_config.service)
            operation = client.update_function(
                request=functions_v2.UpdateFunctionRequest(
                    function=function, update_mask=field_mask_pb2.FieldMask(paths=UPDATE_MASK)
                )
            )
        deployed: Any = operation.result(timeout=900)
        _say(f"deployed {deployed.name} ({deployed.state.name}) {deployed.url}")
        if pinned is not None:
            _keep_pinned(deployed.service_config.service, pinned)
        done[function_id] = deployed
    return done


def _pin(service_name: str) -> list[rollout.Target]:
    """Name the serving revisions in the service's traffic, so a new one gets none."""
    client = rollout.services_client()
    service = rollout.read_service(client, service_name)
    pinned = rollout.plan_pin(rollout.serving(service))
    rollout.apply(client, service, pinned)
    return pinned


def _keep_pinned(service_name: str, pinned: list[rollout.Target]) -> None:
    """If the deploy moved traffic to the new revision after all, move it back, and say so."""
    client = rollout.services_client()
    service = rollout.read_service(client, service_name)
    now = rollout.plan_pin(rollout.serving(service))
    new = service.latest_ready_revision.rsplit("/", 1)[-1]
    if now != pinned:
        rollout.apply(client, service, pinned)
        _say(f"{service_name}: the deploy had moved traffic ({now}); put back on {pinned}")
    _say(
        f"{service_name}: new revision {new} takes no traffic; "
        f"`ticket-enrich rollout gcp start --revision {new} --share 10` to start"
    )


def _dead_letters(topic: Any, subscription: Any) -> None:
    """Create the dead-letter topic and its subscription unless they exist."""
    from google.api_core.exceptions import AlreadyExists
    from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient  # type: ignore[import-untyped]

    with contextlib.suppress(AlreadyExists):
        PublisherClient().create_topic(request=topic)
    with contextlib.suppress(AlreadyExists):
        SubscriberClient().create_subscription(request=subscription)
    _say(f"dead letters: {topic.name}, kept by {subscription.name}")


def _schedule(job: Any) -> None:
    """Create the Cloud Scheduler job, or update it if it exists."""
    from google.api_core.exceptions import NotFound
    from google.cloud import scheduler_v1

    client = scheduler_v1.CloudSchedulerClient()
    try:
        client.get_job(name=job.name)
    except NotFound:
        created = client.create_job(parent=job.name.rsplit("/jobs/", 1)[0], job=job)
    else:
        created = client.update_job(job=job)
    _say(f"scheduled {created.name} ({created.schedule} {created.time_zone})")

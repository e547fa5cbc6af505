"""`ticket-enrich deploy gcp`: build the source bundle and create or update the three Cloud
Functions (2nd gen) with google-cloud-functions' `FunctionServiceClient`.

``--dry-run`` builds the bundle and prints, as JSON, the `CreateFunctionRequest` of each function
(and the update mask an `UpdateFunctionRequest` would carry for one that exists), without any
network call. Without it, and with Application Default Credentials, it uploads the bundle
through `GenerateUploadUrl` and creates or updates each function. The security rules, indexes
and the Cloud Scheduler job that calls the drain are deployed with the Firebase and gcloud
commands printed at the end (see docs/gcp.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from adapters.gcp.settings import GcpSettings
from core.errors import TicketEnrichError
from core.settings import Settings
from deploy.gcp.bundle import Bundle, build_bundle

HELP = "build the Cloud Functions bundle and create or update the functions (or --dry-run)"

FIRESTORE_CREATED = "google.cloud.firestore.document.v1.created"
DATABASE_WRITTEN = "google.firebase.database.ref.v1.written"
UPDATE_MASK = ["build_config", "service_config", "event_trigger", "labels"]
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
) -> list[Any]:
    """The `functions_v2.Function` of each function, built with the client library's types."""
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
    return functions


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")


def _follow_up(project: str, region: str) -> list[str]:
    here = Path(__file__).resolve().parent
    return [
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


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Build the bundle, then print (``--dry-run``) or send the create/update requests."""
    from google.cloud import functions_v2

    config = GcpSettings(**settings.model_dump())
    project = args.project or config.gcp_project
    if not project:
        raise TicketEnrichError("deploy gcp needs --project or TICKET_ENRICH_GCP_PROJECT")
    region = args.region or config.gcp_region
    with tempfile.TemporaryDirectory() as workdir:
        bundle = _bundle(args, config, Path(workdir))
        _say(
            f"bundle: {bundle.path} ({bundle.size_bytes} bytes, {bundle.files} files, "
            f"model {bundle.model_version})"
        )
        parent = f"projects/{project}/locations/{region}"
        if args.dry_run:
            source = functions_v2.Source(
                storage_source=functions_v2.StorageSource(
                    bucket="<bucket from GenerateUploadUrl>",
                    object_="<object from GenerateUploadUrl>",
                )
            )
        else:
            source = _upload(parent, bundle)
        functions = functions_for(
            config,
            project=project,
            region=region,
            source=source,
            service_account=args.service_account,
            rtdb_instance=_rtdb_instance(config, args.rtdb_instance),
            rtdb_region=args.rtdb_region,
        )
        if args.dry_run:
            requests = [
                {
                    "create": json.loads(
                        functions_v2.CreateFunctionRequest.to_json(
                            functions_v2.CreateFunctionRequest(
                                parent=parent,
                                function=function,
                                function_id=function.name.rsplit("/", 1)[-1],
                            ),
                            use_integers_for_enums=False,
                            always_print_fields_with_no_presence=False,
                        )
                    ),
                    "update_mask_if_it_exists": UPDATE_MASK,
                }
                for function in functions
            ]
            _say(json.dumps({"requirements": bundle.requirements, "requests": requests}, indent=2))
        else:
            _deploy(parent, functions)
    _say("then, once:")
    for line in _follow_up(project, region):
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


def _deploy(parent: str, functions: list[Any]) -> None:
    from google.api_core.exceptions import NotFound
    from google.cloud import functions_v2
    from google.protobuf import field_mask_pb2

    client = functions_v2.FunctionServiceClient()
    for function in functions:
        operation: Any
        try:
            client.get_function(name=function.name)
        except NotFound:
            operation = client.create_function(
                request=functions_v2.CreateFunctionRequest(
                    parent=parent, function=function, function_id=function.name.rsplit("/", 1)[-1]
                )
            )
        else:
            operation = client.update_function(
                request=functions_v2.UpdateFunctionRequest(
                    function=function, update_mask=field_mask_pb2.FieldMask(paths=UPDATE_MASK)
                )
            )
        deployed: Any = operation.result(timeout=900)
        _say(f"deployed {deployed.name} ({deployed.state.name}) {deployed.url}")

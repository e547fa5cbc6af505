"""`ticket-enrich deploy azure`: the Azure ML managed online endpoint, deployed with the Azure ML
SDK v2 (`azure-ai-ml`'s `MLClient`) from `endpoint.yml` and `deployment.yml`, blue/green.

The first deployment is `blue` with all the traffic. When a deployment already serves, the new
one goes beside it (`green`, or `blue` when green is the live one) with 10 % of the traffic:
`{blue: 90, green: 10}`; `--promote` then moves all traffic to the newer one. The scoring code
(core/ and adapters/azure/) and the Functions app are staged under `build/azure/`.
With ``--dry-run`` nothing is contacted: it prints what would be created.

`azure-ai-ml` and `azure-identity` are needed only here: `pip install azure-ai-ml azure-identity`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.enricher import load_enricher
from core.errors import TicketEnrichError
from core.settings import Settings

HELP = (
    "Azure: Azure ML managed online endpoint (blue/green with MLClient) and the Functions app "
    "staged for publishing"
)
HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
CANARY_PERCENT = 10
SLOTS = ("blue", "green")
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


def _say(message: str) -> None:
    sys.stderr.write(f"[deploy azure] {message}\n")
    sys.stderr.flush()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `ticket-enrich deploy azure` (``--dry-run`` is added by the CLI)."""
    parser.add_argument("--model", type=Path, help="model artifact (default: the served one)")
    parser.add_argument("--endpoint-name", help="default: endpoint.yml's name")
    parser.add_argument("--instance-type", help="default: deployment.yml's instance_type")
    parser.add_argument("--instance-count", type=int, help="default: deployment.yml's")
    parser.add_argument(
        "--canary-percent",
        type=int,
        default=CANARY_PERCENT,
        help="traffic for a new deployment beside a live one (default 10)",
    )
    parser.add_argument(
        "--promote", action="store_true", help="move all traffic to the newer deployment"
    )
    parser.add_argument("--subscription", help="default: TICKET_ENRICH_AZURE_SUBSCRIPTION_ID")
    parser.add_argument("--resource-group", help="default: TICKET_ENRICH_AZURE_RESOURCE_GROUP")
    parser.add_argument("--workspace", help="default: TICKET_ENRICH_AZURE_ML_WORKSPACE")
    parser.add_argument(
        "--build-dir", type=Path, default=REPO_ROOT / "build" / "azure", help="staging directory"
    )


@dataclass(frozen=True)
class Rollout:
    """Which deployment slot the new version goes to, and the endpoint's traffic after it."""

    deployment: str
    traffic: dict[str, int]
    live: str | None


def plan_rollout(traffic: Mapping[str, int], canary_percent: int = CANARY_PERCENT) -> Rollout:
    """The slot and traffic split for a new deployment given the endpoint's current traffic.

    No deployment serving: ``blue`` takes 100 %. Otherwise the new version goes to the other
    slot than the one with the most traffic, with ``canary_percent`` of it.
    """
    if not 0 < canary_percent < 100:
        raise TicketEnrichError(f"the canary share must be within 1..99 %, not {canary_percent}")
    serving = {name: share for name, share in traffic.items() if share > 0}
    if not serving:
        return Rollout("blue", {"blue": 100}, None)
    live = max(sorted(serving), key=lambda name: serving[name])
    new = "green" if live != "green" else "blue"
    return Rollout(new, {live: 100 - canary_percent, new: canary_percent}, live)


def promoted(traffic: Mapping[str, int]) -> dict[str, int]:
    """All traffic to the canary (the serving deployment with the smaller share)."""
    serving = {name: share for name, share in traffic.items() if share > 0}
    if len(serving) < 2:
        raise TicketEnrichError(f"nothing to promote: the endpoint's traffic is {dict(traffic)}")
    canary = min(sorted(serving), key=lambda name: serving[name])
    return {name: (100 if name == canary else 0) for name in traffic}


def _copy_tree(source: Path, dest: Path) -> None:
    shutil.copytree(source, dest, ignore=_IGNORE, dirs_exist_ok=True)


def stage_scoring_code(dest: Path) -> Path:
    """The code the endpoint runs: core/ and adapters/azure/ (not the repository)."""
    if dest.exists():
        shutil.rmtree(dest)
    _copy_tree(REPO_ROOT / "core", dest / "core")
    (dest / "adapters").mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "adapters" / "__init__.py", dest / "adapters" / "__init__.py")
    _copy_tree(REPO_ROOT / "adapters" / "azure", dest / "adapters" / "azure")
    return dest


def stage_functions_app(dest: Path, model_dir: Path) -> Path:
    """A Functions app root ready for `func azure functionapp publish`: function_app.py,
    host.json, requirements.txt, the code it imports and the model under model/."""
    stage_scoring_code(dest)
    _copy_tree(REPO_ROOT / "adapters" / "helpdesk", dest / "adapters" / "helpdesk")
    for name in ("function_app.py", "host.json", "requirements.txt"):
        shutil.copy2(HERE / "functions" / name, dest / name)
    _copy_tree(model_dir.resolve(), dest / "model")
    return dest


def _import_sdk() -> Any:
    try:
        import azure.ai.ml as sdk
    except ImportError as exc:
        raise TicketEnrichError(
            "deploy azure needs the Azure ML SDK v2: pip install azure-ai-ml azure-identity"
        ) from exc
    return sdk


def load_definitions(
    *,
    model_dir: Path,
    code_dir: Path,
    endpoint_name: str | None = None,
    instance_type: str | None = None,
    instance_count: int | None = None,
) -> tuple[Any, Any]:
    """The endpoint and deployment entities from the YAML files (validated by `azure-ai-ml`
    offline), with the command line's overrides applied."""
    sdk = _import_sdk()
    endpoint = sdk.load_online_endpoint(HERE / "endpoint.yml")
    deployment = sdk.load_online_deployment(HERE / "deployment.yml")
    if endpoint_name:
        endpoint.name = endpoint_name
    deployment.endpoint_name = endpoint.name
    if instance_type:
        deployment.instance_type = instance_type
    if instance_count is not None:
        deployment.instance_count = instance_count
    deployment.model.path = str(model_dir.resolve())
    deployment.code_configuration.code = str(code_dir.resolve())
    return endpoint, deployment


def describe(endpoint: Any, deployment: Any, traffic: Mapping[str, Rollout]) -> dict[str, Any]:
    """What would be created, as JSON."""

    def probe(p: Any) -> dict[str, Any]:
        fields = ("initial_delay", "period", "timeout", "failure_threshold", "success_threshold")
        return {name: getattr(p, name) for name in fields}

    environment = deployment.environment
    return {
        "endpoint": {"name": endpoint.name, "auth_mode": endpoint.auth_mode},
        "deployment": {
            "endpoint_name": deployment.endpoint_name,
            "instance_type": deployment.instance_type,
            "instance_count": deployment.instance_count,
            "model": {"name": deployment.model.name, "path": str(deployment.model.path)},
            "code": str(deployment.code_configuration.code),
            "scoring_script": deployment.code_configuration.scoring_script,
            "environment": {
                "name": environment.name,
                "image": environment.image,
                "conda_file": environment.conda_file,
            },
            "request_settings": {
                "request_timeout_ms": deployment.request_settings.request_timeout_ms,
                "max_concurrent_requests_per_instance": (
                    deployment.request_settings.max_concurrent_requests_per_instance
                ),
            },
            "liveness_probe": probe(deployment.liveness_probe),
            "readiness_probe": probe(deployment.readiness_probe),
            "environment_variables": sorted(deployment.environment_variables or {}),
        },
        "traffic": {
            case: {"deployment": r.deployment, "traffic": r.traffic} for case, r in traffic.items()
        },
    }


def apply(client: Any, endpoint: Any, deployment: Any, canary_percent: int) -> Rollout:
    """Create the endpoint if needed, create or update the new deployment beside the live one,
    then set the traffic split. ``client`` is an `azure.ai.ml.MLClient` (or a test double)."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        current = client.online_endpoints.get(endpoint.name)
    except ResourceNotFoundError:
        _say(f"creating endpoint {endpoint.name}")
        client.online_endpoints.begin_create_or_update(endpoint).result()
        current = client.online_endpoints.get(endpoint.name)
    rollout = plan_rollout(current.traffic or {}, canary_percent)
    deployment.name = rollout.deployment
    _say(f"deploying {rollout.deployment} (live: {rollout.live or 'none'})")
    client.online_deployments.begin_create_or_update(deployment).result()
    # Traffic moves only once the new deployment is healthy: create_or_update waited for it.
    current = client.online_endpoints.get(endpoint.name)
    current.traffic = rollout.traffic
    client.online_endpoints.begin_create_or_update(current).result()
    return rollout


def promote(client: Any, endpoint_name: str) -> dict[str, int]:
    """Move all of the endpoint's traffic to the canary deployment."""
    current = client.online_endpoints.get(endpoint_name)
    current.traffic = promoted(current.traffic or {})
    client.online_endpoints.begin_create_or_update(current).result()
    return dict(current.traffic)


def _ml_client(args: argparse.Namespace, settings: Settings) -> Any:
    subscription = args.subscription or getattr(settings, "azure_subscription_id", None)
    group = args.resource_group or getattr(settings, "azure_resource_group", None)
    workspace = args.workspace or getattr(settings, "azure_ml_workspace", None)
    missing = [
        name
        for name, value in (
            ("--subscription", subscription),
            ("--resource-group", group),
            ("--workspace", workspace),
        )
        if not value
    ]
    if missing:
        raise TicketEnrichError(f"deploy azure needs {', '.join(missing)} (or the settings)")
    sdk = _import_sdk()
    from azure.identity import DefaultAzureCredential

    return sdk.MLClient(DefaultAzureCredential(), subscription, group, workspace)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Stage, validate and print (``--dry-run``) or deploy."""
    from adapters.azure.settings import AzureSettings

    azure = settings if isinstance(settings, AzureSettings) else AzureSettings()
    if args.promote and not args.dry_run:
        endpoint, _ = load_definitions(model_dir=Path("."), code_dir=Path("."))
        traffic = promote(_ml_client(args, azure), args.endpoint_name or endpoint.name)
        sys.stdout.write(json.dumps({"traffic": traffic}) + "\n")
        return 0
    model_dir = Path(args.model) if args.model else azure.serving_model_dir
    enricher = load_enricher(model_dir, self_check=True)  # refuse a broken artifact up front
    code_dir = stage_scoring_code(args.build_dir / "code")
    functions_dir = stage_functions_app(args.build_dir / "functions", model_dir)
    endpoint, deployment = load_definitions(
        model_dir=model_dir,
        code_dir=code_dir,
        endpoint_name=args.endpoint_name,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
    )
    if args.dry_run:
        plan = describe(
            endpoint,
            deployment,
            {
                "no_deployment_yet": plan_rollout({}, args.canary_percent),
                "blue_live": plan_rollout({"blue": 100}, args.canary_percent),
            },
        )
        plan["model_version"] = enricher.model_version
        plan["functions_app"] = str(functions_dir)
        sys.stdout.write(json.dumps(plan, indent=2) + "\n")
        _say("dry run: nothing was created")
        return 0
    rollout = apply(_ml_client(args, azure), endpoint, deployment, args.canary_percent)
    sys.stdout.write(
        json.dumps({"deployment": rollout.deployment, "traffic": rollout.traffic}) + "\n"
    )
    _say(f"Functions app staged in {functions_dir}: func azure functionapp publish <app name>")
    return 0

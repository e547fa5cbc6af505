"""`ticket-enrich deploy azure`: the Azure ML managed online endpoint, deployed with the Azure ML
SDK v2 (`azure-ai-ml`'s `MLClient`) from `endpoint.yml` and `deployment.yml`, blue/green; and
the weekly retraining schedule (`schedule.yml` running `retrain-job.yml`).

The first deployment is `blue` with all the traffic. When a deployment already serves, the new
one goes beside it (`green`, or `blue` when green is the live one) with 10 % of the traffic:
`{blue: 90, green: 10}`; `--promote` then moves all traffic to the newer one (the same move as
`ticket-enrich rollout azure promote`, in `traffic.py`). The scoring code (core/ and
adapters/azure/), the retraining job (its definition and core/, training/, adapters/azure/) and
the Functions app are staged under `build/azure/`. With ``--dry-run`` nothing is contacted: it
prints what would be created.

`azure-ai-ml` and `azure-identity` are needed only here: `pip install azure-ai-ml azure-identity`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.enricher import load_enricher
from core.settings import Settings
from deploy.azure.traffic import (
    CANARY_PERCENT,
    MODEL_VERSION_TAG,
    SLOTS,
    Rollout,
    add_workspace_arguments,
    apply,
    import_sdk,
    ml_client,
    plan_rollout,
    promote,
    promoted,
    say,
)

__all__ = [
    "CANARY_PERCENT",
    "SLOTS",
    "Rollout",
    "apply",
    "plan_rollout",
    "promote",
    "promoted",
]

HELP = (
    "Azure: Azure ML managed online endpoint (blue/green with MLClient) and the Functions app "
    "staged for publishing"
)
HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


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
    add_workspace_arguments(parser)
    parser.add_argument(
        "--build-dir", type=Path, default=REPO_ROOT / "build" / "azure", help="staging directory"
    )


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


def stage_retrain_job(dest: Path) -> Path:
    """The retraining job as Azure ML uploads it: retrain-job.yml and schedule.yml, the training
    environment, and under code/ what the job runs (core/, training/ without its vendored data,
    adapters/azure/). Returns the job definition's path."""
    if dest.exists():
        shutil.rmtree(dest)
    code = dest / "code"
    _copy_tree(REPO_ROOT / "core", code / "core")
    shutil.copytree(
        REPO_ROOT / "training",
        code / "training",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "data"),
    )
    (code / "adapters").mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "adapters" / "__init__.py", code / "adapters" / "__init__.py")
    _copy_tree(REPO_ROOT / "adapters" / "azure", code / "adapters" / "azure")
    (dest / "environment").mkdir()
    shutil.copy2(HERE / "environment" / "training.yml", dest / "environment" / "training.yml")
    for name in ("retrain-job.yml", "schedule.yml"):
        shutil.copy2(HERE / name, dest / name)
    return dest / "retrain-job.yml"


def stage_functions_app(dest: Path, model_dir: Path) -> Path:
    """A Functions app root ready for `func azure functionapp publish`: function_app.py,
    host.json, requirements.txt, the code it imports, the model under model/, and the
    retraining job under retrain/ (submitted by the Event Grid trigger; its training code is
    uploaded to Azure ML, never imported by the app)."""
    stage_scoring_code(dest)
    _copy_tree(REPO_ROOT / "adapters" / "helpdesk", dest / "adapters" / "helpdesk")
    for name in ("function_app.py", "host.json", "requirements.txt"):
        shutil.copy2(HERE / "functions" / name, dest / name)
    _copy_tree(model_dir.resolve(), dest / "model")
    stage_retrain_job(dest / "retrain")
    return dest


def load_definitions(
    *,
    model_dir: Path,
    code_dir: Path,
    endpoint_name: str | None = None,
    instance_type: str | None = None,
    instance_count: int | None = None,
    model_version: str | None = None,
) -> tuple[Any, Any]:
    """The endpoint and deployment entities from the YAML files (validated by `azure-ai-ml`
    offline), with the command line's overrides applied."""
    sdk = import_sdk()
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
    if model_version:
        deployment.tags = {**(deployment.tags or {}), MODEL_VERSION_TAG: model_version}
    return endpoint, deployment


def endpoint_name(override: str | None) -> str:
    """The endpoint's name: the option, else endpoint.yml's."""
    if override:
        return override
    return str(import_sdk().load_online_endpoint(HERE / "endpoint.yml").name)


def load_schedule(staged_job: Path) -> Any:
    """The retraining schedule from the staged schedule.yml (its job from retrain-job.yml),
    validated by `azure-ai-ml` offline. The SDK keeps `load_schedule` beside its public loaders
    without exporting it; `az ml schedule create --file` uses the same function."""
    import_sdk()
    from azure.ai.ml.entities._load_functions import load_schedule as load

    return load(staged_job.parent / "schedule.yml")


def describe_schedule(schedule: Any) -> dict[str, Any]:
    """The retraining schedule and its job, as JSON."""
    trigger = schedule.trigger
    job = schedule.create_job
    # Each inline step is an anonymous component holding its code and environment.
    steps = {
        name: {
            "command": step.component.command,
            "code": str((Path(step.component.base_path) / step.component.code).resolve()),
            "environment": {
                "image": step.component.environment.image,
                "conda_file": step.component.environment.conda_file,
            },
            "instance_type": step.resources.instance_type if step.resources else None,
            "environment_variables": dict(step.environment_variables or {}),
        }
        for name, step in job.jobs.items()
    }
    return {
        "name": schedule.name,
        "trigger": {
            "type": trigger.type,
            "frequency": trigger.frequency,
            "interval": trigger.interval,
            "hours": trigger.schedule.hours if trigger.schedule else None,
            "minutes": trigger.schedule.minutes if trigger.schedule else None,
            "week_days": trigger.schedule.week_days if trigger.schedule else None,
            "time_zone": trigger.time_zone,
        },
        "job": {
            "inputs": {name: str(i.path) for name, i in job.inputs.items()},
            "compute": job.settings.default_compute,
            "steps": steps,
        },
    }


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
            "tags": dict(deployment.tags or {}),
        },
        "traffic": {
            case: {"deployment": r.deployment, "traffic": r.traffic} for case, r in traffic.items()
        },
    }


def prepare(args: argparse.Namespace, model_dir: Path) -> tuple[Any, Any, Any]:
    """Verify the artifact and stage the scoring code and the Functions app; the enricher,
    and the endpoint and deployment entities for this model."""
    enricher = load_enricher(model_dir, self_check=True)  # refuse a broken artifact up front
    code_dir = stage_scoring_code(args.build_dir / "code")
    stage_functions_app(args.build_dir / "functions", model_dir)
    endpoint, deployment = load_definitions(
        model_dir=model_dir,
        code_dir=code_dir,
        endpoint_name=args.endpoint_name,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        model_version=enricher.model_version,
    )
    return enricher, endpoint, deployment


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Stage, validate and print (``--dry-run``) or deploy, and create or update the retraining
    schedule."""
    from adapters.azure.settings import AzureSettings

    azure = settings if isinstance(settings, AzureSettings) else AzureSettings()
    if args.promote and not args.dry_run:
        traffic = promote(ml_client(args, azure), endpoint_name(args.endpoint_name))
        sys.stdout.write(json.dumps({"traffic": traffic}) + "\n")
        return 0
    model_dir = Path(args.model) if args.model else azure.serving_model_dir
    enricher, endpoint, deployment = prepare(args, model_dir)
    schedule = load_schedule(stage_retrain_job(args.build_dir / "retrain"))
    functions_dir = args.build_dir / "functions"
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
        plan["retrain_schedule"] = describe_schedule(schedule)
        sys.stdout.write(json.dumps(plan, indent=2) + "\n")
        say("dry run: nothing was created")
        return 0
    client = ml_client(args, azure)
    rollout = apply(client, endpoint, deployment, args.canary_percent)
    say(f"creating or updating the retraining schedule {schedule.name}")
    client.schedules.begin_create_or_update(schedule).result()
    sys.stdout.write(
        json.dumps(
            {
                "deployment": rollout.deployment,
                "traffic": rollout.traffic,
                "schedule": schedule.name,
            }
        )
        + "\n"
    )
    say(f"Functions app staged in {functions_dir}: func azure functionapp publish <app name>")
    return 0

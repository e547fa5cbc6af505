"""`ticket-enrich rollout azure`: gradual rollout on the Azure ML managed online endpoint.

    start --share P   a new version beside the live deployment (the other of blue/green) with
                      P % of the traffic: a model directory, or a version of the Blob Storage
                      registry (default: the served model)
    status            the traffic, the live and canary deployments, the version each one serves
    promote           all traffic to the canary (the same move as `deploy azure --promote`)
    rollback          all traffic back to the live deployment; the canary deployment deleted

Every answer is one JSON line on stdout. The traffic moves are in `traffic.py`, shared with
`ticket-enrich deploy azure`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import TicketEnrichError
from core.settings import Settings
from deploy.azure.command import REPO_ROOT, endpoint_name, prepare
from deploy.azure.traffic import (
    CANARY_PERCENT,
    add_workspace_arguments,
    apply,
    check_share,
    ml_client,
    promote,
    rollback,
    say,
    status,
)

if TYPE_CHECKING:
    from adapters.azure.settings import AzureSettings

HELP = (
    "Azure: a new version beside the live deployment of the online endpoint with a share of "
    "its traffic, then promote or roll back"
)


def _share(text: str) -> int:
    try:
        return check_share(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole percentage within 1..99, not {text!r}") from None
    except TicketEnrichError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`start`, `status`, `promote` and `rollback`, each with the workspace options."""
    actions = parser.add_subparsers(dest="action", required=True)
    start = actions.add_parser("start", help="deploy a version beside the live one with a share")
    start.add_argument(
        "--share",
        type=_share,
        default=CANARY_PERCENT,
        help=f"the new version's share of traffic, 1..99 %% (default {CANARY_PERCENT})",
    )
    model = start.add_mutually_exclusive_group()
    model.add_argument("--model", type=Path, help="model artifact (default: the served one)")
    model.add_argument("--version", help="a version of the Blob Storage model registry")
    start.add_argument("--instance-type", help="default: deployment.yml's instance_type")
    start.add_argument("--instance-count", type=int, help="default: deployment.yml's")
    start.add_argument(
        "--build-dir", type=Path, default=REPO_ROOT / "build" / "azure", help="staging directory"
    )
    for action in (
        start,
        actions.add_parser("status", help="traffic and the version each deployment serves"),
        actions.add_parser("promote", help="all traffic to the canary"),
        actions.add_parser("rollback", help="all traffic to the live one; canary deleted"),
    ):
        action.add_argument("--endpoint-name", help="default: endpoint.yml's name")
        add_workspace_arguments(action)


def _model_dir(args: argparse.Namespace, azure: AzureSettings) -> Path:
    if args.version:
        from adapters.azure.retrain import registry_from_settings

        return registry_from_settings(azure).fetch(
            args.version, args.build_dir / "models" / args.version
        )
    return Path(args.model) if args.model else azure.serving_model_dir


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Carry out one action against the workspace's endpoint."""
    from adapters.azure.settings import AzureSettings

    azure = settings if isinstance(settings, AzureSettings) else AzureSettings()
    name = endpoint_name(args.endpoint_name)
    if args.action == "start":
        enricher, endpoint, deployment = prepare(args, _model_dir(args, azure))
        client = ml_client(args, azure)
        planned = apply(client, endpoint, deployment, args.share, need_live=True)
        result = {
            "endpoint": endpoint.name,
            "deployment": planned.deployment,
            "model_version": enricher.model_version,
            "live": planned.live,
            "traffic": planned.traffic,
        }
    elif args.action == "status":
        result = status(ml_client(args, azure), name)
    elif args.action == "promote":
        result = {"endpoint": name, "traffic": promote(ml_client(args, azure), name)}
    else:
        traffic, deleted = rollback(ml_client(args, azure), name)
        result = {"endpoint": name, "traffic": traffic, "deleted": deleted}
    say(f"{args.action}: {json.dumps(result['traffic'])}")
    sys.stdout.write(json.dumps(result) + "\n")
    return 0

"""The online endpoint's traffic between its two deployment slots, blue and green: where a new
version goes and with what share, promotion, rollback, and what serves now. Shared by
`ticket-enrich deploy azure` and `ticket-enrich rollout azure`; one code path for each move.

``client`` is an `azure.ai.ml.MLClient`; the tests pass a double of its endpoint and deployment
operations, since Azure ML has no local emulator.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import TicketEnrichError
from core.settings import Settings

CANARY_PERCENT = 10
SLOTS = ("blue", "green")
# Set on every deployment the commands create, so `status` names the version each one serves
# (the enriched ticket names it too, from the artifact).
MODEL_VERSION_TAG = "model_version"


def say(message: str) -> None:
    """Progress on stderr (stdout carries the JSON result)."""
    sys.stderr.write(f"[azure] {message}\n")
    sys.stderr.flush()


@dataclass(frozen=True)
class Rollout:
    """Which deployment slot the new version goes to, and the endpoint's traffic after it."""

    deployment: str
    traffic: dict[str, int]
    live: str | None


def check_share(share: int) -> int:
    """A canary's share of traffic: 1..99 %."""
    if not 0 < share < 100:
        raise TicketEnrichError(f"the canary share must be within 1..99 %, not {share}")
    return share


def _serving(traffic: Mapping[str, int]) -> dict[str, int]:
    return {name: share for name, share in traffic.items() if share > 0}


def plan_rollout(traffic: Mapping[str, int], canary_percent: int = CANARY_PERCENT) -> Rollout:
    """The slot and traffic split for a new deployment given the endpoint's current traffic.

    No deployment serving: ``blue`` takes 100 %. Otherwise the new version goes to the other
    slot than the one with the most traffic, with ``canary_percent`` of it.
    """
    check_share(canary_percent)
    serving = _serving(traffic)
    if not serving:
        return Rollout("blue", {"blue": 100}, None)
    live = max(sorted(serving), key=lambda name: serving[name])
    new = "green" if live != "green" else "blue"
    return Rollout(new, {live: 100 - canary_percent, new: canary_percent}, live)


def promoted(traffic: Mapping[str, int]) -> dict[str, int]:
    """All traffic to the canary (the serving deployment with the smaller share)."""
    serving = _serving(traffic)
    if len(serving) < 2:
        raise TicketEnrichError(f"nothing to promote: the endpoint's traffic is {dict(traffic)}")
    canary = min(sorted(serving), key=lambda name: serving[name])
    return {name: (100 if name == canary else 0) for name in traffic}


def rolled_back(traffic: Mapping[str, int]) -> tuple[dict[str, int], str]:
    """All traffic back to the live deployment (the larger share), and the canary's name."""
    serving = _serving(traffic)
    if len(serving) < 2:
        raise TicketEnrichError(
            f"nothing to roll back: the endpoint's traffic is {dict(traffic)}, no canary"
        )
    live = max(sorted(serving), key=lambda name: serving[name])
    canary = min(sorted(serving), key=lambda name: serving[name])
    return {name: (100 if name == live else 0) for name in traffic if name != canary}, canary


def apply(
    client: Any, endpoint: Any, deployment: Any, canary_percent: int, *, need_live: bool = False
) -> Rollout:
    """Create the endpoint if needed, create or update the new deployment beside the live one,
    then set the traffic split. With ``need_live``, refuse an endpoint where nothing serves
    (a gradual rollout needs a version to fall back on)."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        current = client.online_endpoints.get(endpoint.name)
    except ResourceNotFoundError:
        if need_live:
            raise TicketEnrichError(
                f"endpoint {endpoint.name} does not exist: deploy the first version with "
                "`ticket-enrich deploy azure`"
            ) from None
        say(f"creating endpoint {endpoint.name}")
        client.online_endpoints.begin_create_or_update(endpoint).result()
        current = client.online_endpoints.get(endpoint.name)
    rollout = plan_rollout(current.traffic or {}, canary_percent)
    if need_live and rollout.live is None:
        raise TicketEnrichError(
            f"nothing serves on {endpoint.name}: deploy the first version with "
            "`ticket-enrich deploy azure`"
        )
    deployment.name = rollout.deployment
    say(f"deploying {rollout.deployment} (live: {rollout.live or 'none'})")
    client.online_deployments.begin_create_or_update(deployment).result()
    # Traffic moves only once the new deployment is healthy: create_or_update waited for it.
    current = client.online_endpoints.get(endpoint.name)
    current.traffic = rollout.traffic
    client.online_endpoints.begin_create_or_update(current).result()
    return rollout


def promote(client: Any, endpoint_name: str) -> dict[str, int]:
    """Move all of the endpoint's traffic to the canary deployment. The previous one stays,
    with no traffic, until the next rollout replaces it."""
    current = client.online_endpoints.get(endpoint_name)
    current.traffic = promoted(current.traffic or {})
    client.online_endpoints.begin_create_or_update(current).result()
    return dict(current.traffic)


def rollback(client: Any, endpoint_name: str) -> tuple[dict[str, int], str]:
    """All traffic back to the live deployment, then the canary deployment deleted (Azure ML
    refuses to delete a deployment that still has traffic, hence this order)."""
    current = client.online_endpoints.get(endpoint_name)
    traffic, canary = rolled_back(current.traffic or {})
    current.traffic = traffic
    client.online_endpoints.begin_create_or_update(current).result()
    say(f"deleting deployment {canary}")
    client.online_deployments.begin_delete(name=canary, endpoint_name=endpoint_name).result()
    return traffic, canary


def status(client: Any, endpoint_name: str) -> dict[str, Any]:
    """The endpoint's traffic, its live and canary deployments and the model version each
    deployment serves."""
    current = client.online_endpoints.get(endpoint_name)
    traffic = dict(current.traffic or {})
    serving = _serving(traffic)
    live = max(sorted(serving), key=lambda name: serving[name]) if serving else None
    canary = min(sorted(serving), key=lambda name: serving[name]) if len(serving) > 1 else None
    deployments = {
        d.name: {
            "model_version": (d.tags or {}).get(MODEL_VERSION_TAG),
            "model": str(d.model) if d.model is not None else None,
            "traffic": traffic.get(d.name, 0),
        }
        for d in client.online_deployments.list(endpoint_name=endpoint_name)
    }
    return {
        "endpoint": endpoint_name,
        "traffic": traffic,
        "live": live,
        "canary": canary,
        "deployments": deployments,
    }


def import_sdk() -> Any:
    """`azure.ai.ml`, or an error that says how to install it."""
    try:
        import azure.ai.ml as sdk
    except ImportError as exc:
        raise TicketEnrichError(
            "this command needs the 'azure-deploy' extra (the Azure ML SDK v2): "
            "pip install 'ticket-enrich[azure-deploy]'"
        ) from exc
    return sdk


def add_workspace_arguments(parser: argparse.ArgumentParser) -> None:
    """The workspace options both commands take."""
    parser.add_argument("--subscription", help="default: TICKET_ENRICH_AZURE_SUBSCRIPTION_ID")
    parser.add_argument("--resource-group", help="default: TICKET_ENRICH_AZURE_RESOURCE_GROUP")
    parser.add_argument("--workspace", help="default: TICKET_ENRICH_AZURE_ML_WORKSPACE")


def ml_client(args: argparse.Namespace, settings: Settings) -> Any:
    """An `MLClient` for the workspace the options (or the settings) name, signed in with
    `DefaultAzureCredential`."""
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
        raise TicketEnrichError(f"this command needs {', '.join(missing)} (or the settings)")
    sdk = import_sdk()
    from azure.identity import DefaultAzureCredential

    return sdk.MLClient(DefaultAzureCredential(), subscription, group, workspace)

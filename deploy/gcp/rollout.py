"""`ticket-enrich rollout gcp`: gradual rollout of a new revision of a 2nd-gen Cloud Function.

Each 2nd-gen function runs as a Cloud Run service of the same name, and each deploy makes a new
revision of it (`ticket-enrich deploy gcp --no-traffic` makes one that takes no traffic). A
rollout is a traffic split on that service, changed with google-cloud-run's `ServicesClient`:

- ``start --revision R --share P``: R (tagged ``candidate``) takes P % of the traffic, the
  revision serving until now (tagged ``stable``) the rest; run again to change P.
- ``status``: the service's traffic, and whether a rollout is in progress.
- ``promote``: the candidate takes all the traffic.
- ``rollback``: the stable revision takes all the traffic back.

The traffic plans are pure functions of the service's current traffic (`plan_start`,
`plan_promote`, `plan_rollback`); the update carries the service's etag, so a change made by
someone else in between is refused rather than overwritten. The enriched ticket names the model
version that produced it (``enrichment.model.version``), whichever revision served it.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from typing import Any

from adapters.gcp.settings import GcpSettings
from core.errors import TicketEnrichError
from core.settings import Settings

HELP = "gradual rollout on a function's Cloud Run service: a share of traffic, promote, roll back"
CANDIDATE = "candidate"
STABLE = "stable"
DEFAULT_FUNCTION = "ticket-enrich-firestore"
OPERATION_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Target:
    """One revision's share of the traffic (``tag`` names it in a rollout)."""

    revision: str
    percent: int
    tag: str = ""


def check_share(share: int) -> int:
    """A candidate's share: a whole percentage from 1 to 99."""
    if not 1 <= share <= 99:
        raise TicketEnrichError(
            f"--share must be from 1 to 99 (a percentage of the traffic), not {share}; "
            "use promote for all of it"
        )
    return share


def _short(revision: str) -> str:
    return revision.rsplit("/", 1)[-1]


def serving(service: Any) -> list[Target]:
    """The service's traffic as revisions and percentages (``LATEST`` resolved to the latest
    ready revision); targets with no traffic and no tag are left out."""
    from google.cloud import run_v2

    latest = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
    targets = []
    for target in service.traffic:
        revision = (
            _short(service.latest_ready_revision) if target.type_ == latest else target.revision
        )
        if target.percent or target.tag:
            targets.append(Target(revision, int(target.percent), target.tag))
    return targets


def _live(current: list[Target]) -> list[Target]:
    return [t for t in current if t.percent > 0]


def _tagged(current: list[Target], tag: str) -> Target | None:
    return next((t for t in _live(current) if t.tag == tag), None)


def _describe(current: list[Target]) -> str:
    return ", ".join(f"{t.revision}={t.percent}%" for t in _live(current)) or "no traffic"


def plan_start(current: list[Target], revision: str, share: int) -> list[Target]:
    """The candidate ``revision`` at ``share`` %, the revision serving now at the rest; or a new
    share for the candidate of the rollout in progress."""
    check_share(share)
    live = _live(current)
    candidate, stable = _tagged(current, CANDIDATE), _tagged(current, STABLE)
    if len(live) == 1:
        if live[0].revision == revision:
            raise TicketEnrichError(
                f"{revision} already takes all the traffic: deploy the new revision with "
                "`ticket-enrich deploy gcp --no-traffic`, then start the rollout"
            )
        old = live[0].revision
    elif (
        len(live) == 2
        and candidate is not None
        and stable is not None
        and candidate.revision == revision
    ):
        old = stable.revision
    else:
        raise TicketEnrichError(
            f"the traffic is already split ({_describe(current)}): promote or roll back first"
        )
    return [Target(old, 100 - share, STABLE), Target(revision, share, CANDIDATE)]


def plan_promote(current: list[Target]) -> list[Target]:
    """The candidate of the rollout in progress takes all the traffic."""
    candidate = _tagged(current, CANDIDATE)
    if candidate is None:
        raise TicketEnrichError(
            f"no rollout in progress ({_describe(current)}): nothing to promote"
        )
    return [Target(candidate.revision, 100)]


def plan_rollback(current: list[Target]) -> list[Target]:
    """The stable revision of the rollout in progress takes all the traffic back."""
    stable = _tagged(current, STABLE)
    if stable is None or _tagged(current, CANDIDATE) is None:
        raise TicketEnrichError(
            f"no rollout in progress ({_describe(current)}): nothing to roll back"
        )
    return [Target(stable.revision, 100)]


def plan_pin(current: list[Target]) -> list[Target]:
    """The same split, by revision name: a revision deployed afterwards takes no traffic
    (Cloud Run sends traffic to a new revision only through a ``LATEST`` target)."""
    return [Target(t.revision, t.percent, t.tag) for t in _live(current)]


def service_name(project: str, region: str, function: str) -> str:
    """The Cloud Run service behind a 2nd-gen function (it has the function's name)."""
    return f"projects/{project}/locations/{region}/services/{function}"


def update_request(service: Any, plan: list[Target]) -> Any:
    """The `UpdateServiceRequest` that gives ``service`` the planned traffic; the rest of the
    service, its etag included, is sent as read."""
    from google.cloud import run_v2

    by_revision = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
    updated = run_v2.Service(service)
    updated.traffic = [
        run_v2.TrafficTarget(type_=by_revision, revision=t.revision, percent=t.percent, tag=t.tag)
        for t in plan
    ]
    return run_v2.UpdateServiceRequest(service=updated)


def apply(client: Any, service: Any, plan: list[Target]) -> Any:
    """Send the planned traffic and wait for Cloud Run to route it; the updated service."""
    from google.api_core.exceptions import GoogleAPICallError

    try:
        operation = client.update_service(request=update_request(service, plan))
        return operation.result(timeout=OPERATION_TIMEOUT_S)
    except GoogleAPICallError as exc:
        raise TicketEnrichError(f"Cloud Run refused the traffic change: {exc.message}") from exc


def read_service(client: Any, name: str) -> Any:
    """The Cloud Run service, or an error that names it."""
    from google.api_core.exceptions import GoogleAPICallError

    try:
        return client.get_service(name=name)
    except GoogleAPICallError as exc:
        raise TicketEnrichError(f"cannot read Cloud Run service {name}: {exc.message}") from exc


def services_client() -> Any:
    """Cloud Run Admin API v2 with Application Default Credentials."""
    from google.cloud import run_v2

    return run_v2.ServicesClient()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `ticket-enrich rollout gcp`."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--project", help="GCP project id (default: TICKET_ENRICH_GCP_PROJECT)")
    common.add_argument(
        "--region", help="the function's region (default: TICKET_ENRICH_GCP_REGION)"
    )
    common.add_argument(
        "--function", default=DEFAULT_FUNCTION, help=f"the function (default: {DEFAULT_FUNCTION})"
    )
    actions = parser.add_subparsers(dest="action", required=True)
    start = actions.add_parser(
        "start", parents=[common], help="send a share of the traffic to a new revision"
    )
    start.add_argument("--revision", required=True, help="the new revision, e.g. NAME-00002-xyz")
    start.add_argument(
        "--share", type=int, default=10, help="percentage of traffic for it, 1 to 99 (default 10)"
    )
    actions.add_parser("status", parents=[common], help="the service's traffic split")
    actions.add_parser("promote", parents=[common], help="the candidate takes all the traffic")
    actions.add_parser("rollback", parents=[common], help="the stable revision takes it all back")


def _report(service: Any, current: list[Target]) -> dict[str, Any]:
    in_progress = _tagged(current, CANDIDATE) is not None
    return {
        "service": service.name,
        "latest_ready_revision": _short(service.latest_ready_revision),
        "rollout": "in progress" if in_progress else "none",
        "traffic": [asdict(t) for t in current],
    }


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Read the service's traffic, plan the change and apply it (``status`` only reads)."""
    config = GcpSettings(**settings.model_dump())
    project = args.project or config.gcp_project
    if not project:
        raise TicketEnrichError("rollout gcp needs --project or TICKET_ENRICH_GCP_PROJECT")
    if args.action == "start":
        check_share(args.share)
    client = services_client()
    service = read_service(
        client, service_name(project, args.region or config.gcp_region, args.function)
    )
    current = serving(service)
    if args.action != "status":
        if args.action == "start":
            plan = plan_start(current, args.revision, args.share)
        elif args.action == "promote":
            plan = plan_promote(current)
        else:
            plan = plan_rollback(current)
        service = apply(client, service, plan)
        current = serving(service)
    sys.stdout.write(json.dumps(_report(service, current)) + "\n")
    return 0

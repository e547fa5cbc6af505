"""The traffic plans of `ticket-enrich rollout gcp`, as pure functions of a service's traffic,
and the Cloud Run request they become (google-cloud-run's types, no network)."""

from __future__ import annotations

import pytest
from google.cloud import run_v2

from core.errors import TicketEnrichError
from deploy.gcp.rollout import (
    CANDIDATE,
    STABLE,
    Target,
    check_share,
    plan_pin,
    plan_promote,
    plan_rollback,
    plan_start,
    serving,
    update_request,
)

OLD, NEW, OTHER = "f-00001-abc", "f-00002-xyz", "f-00003-qrs"
SERVICE = "projects/p/locations/r/services/f"
BY_REVISION = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
LATEST = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST


@pytest.mark.parametrize("share", [0, 100, -1, 250])
def test_a_share_outside_1_to_99_is_refused(share: int) -> None:
    with pytest.raises(TicketEnrichError, match="1 to 99"):
        check_share(share)
    with pytest.raises(TicketEnrichError, match="1 to 99"):
        plan_start([Target(OLD, 100)], NEW, share)


def test_start_promote_and_roll_back() -> None:
    started = plan_start([Target(OLD, 100)], NEW, 10)
    assert started == [Target(OLD, 90, STABLE), Target(NEW, 10, CANDIDATE)]
    # Run again, the same candidate gets the new share.
    assert plan_start(started, NEW, 40) == [Target(OLD, 60, STABLE), Target(NEW, 40, CANDIDATE)]
    assert plan_promote(started) == [Target(NEW, 100)]
    assert plan_rollback(started) == [Target(OLD, 100)]


def test_a_split_in_progress_or_a_revision_already_serving_is_refused() -> None:
    started = plan_start([Target(OLD, 100)], NEW, 10)
    with pytest.raises(TicketEnrichError, match="already split"):
        plan_start(started, OTHER, 10)
    with pytest.raises(TicketEnrichError, match="already split"):
        plan_start([Target(OLD, 50), Target(NEW, 50)], NEW, 10)
    with pytest.raises(TicketEnrichError, match="--no-traffic"):
        plan_start([Target(NEW, 100)], NEW, 10)
    for plan in (plan_promote, plan_rollback):
        with pytest.raises(TicketEnrichError, match="no rollout in progress"):
            plan([Target(OLD, 100)])


def test_the_service_traffic_resolves_latest_and_drops_empty_targets() -> None:
    service = run_v2.Service(
        name=SERVICE,
        latest_ready_revision=f"{SERVICE}/revisions/{NEW}",
        traffic=[
            run_v2.TrafficTarget(type_=LATEST, percent=100),
            run_v2.TrafficTarget(type_=BY_REVISION, revision=OLD, percent=0),
            run_v2.TrafficTarget(type_=BY_REVISION, revision=OTHER, percent=0, tag="canary"),
        ],
    )
    current = serving(service)
    assert current == [Target(NEW, 100), Target(OTHER, 0, "canary")]
    assert plan_pin(current) == [Target(NEW, 100)]


def test_the_request_keeps_the_service_and_its_etag_and_names_revisions() -> None:
    service = run_v2.Service(
        name=SERVICE,
        etag='"5"',
        template=run_v2.RevisionTemplate(containers=[run_v2.Container(image="img:1")]),
        traffic=[run_v2.TrafficTarget(type_=LATEST, percent=100)],
    )
    request = update_request(service, [Target(OLD, 90, STABLE), Target(NEW, 10, CANDIDATE)])
    assert request.service.etag == '"5"'
    assert request.service.template.containers[0].image == "img:1"
    assert [(t.type_, t.revision, t.percent, t.tag) for t in request.service.traffic] == [
        (BY_REVISION, OLD, 90, STABLE),
        (BY_REVISION, NEW, 10, CANDIDATE),
    ]
    # The service read is left as it was.
    assert [t.type_ for t in service.traffic] == [LATEST]

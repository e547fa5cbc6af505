"""Reading delivered tickets back from Zendesk, Freshdesk and Jira (local servers that answer as
those APIs document): whether a ticket is closed and with which priority, mapped back onto the
product's labels, and the whole path from the outbox to a label in the local store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.helpdesk.mapping import FieldMapping
from adapters.local.sqlite_store import SQLiteTicketStore
from core.delivery import deliver_due
from core.errors import HelpdeskRejected, HelpdeskUnavailable
from core.outcomes import collect_outcomes
from core.ports import HelpdeskRef, OutcomeSource
from tests.integration.helpdesk_fakes import serving
from tests.integration.test_helpdesk_connectors import FAKES, SYSTEMS, URGENT, Desk, _connect
from tests.integration.test_helpdesk_connectors import _ticket as _enriched

# How an agent leaves a ticket open, and closes it, in each helpdesk.
OPEN = {
    "zendesk": {"status": "pending"},
    "freshdesk": {"status": 3},
    "jira": {"status": "In Progress"},
}
CLOSED = {
    "zendesk": [("solved", "solved"), ("closed", "closed")],
    "freshdesk": [(4, "resolved"), (5, "closed")],
    "jira": [("Done", "Done"), ("Resolved", "Resolved")],
}
LOW = {"zendesk": "low", "freshdesk": 1, "jira": "Low"}
NEW_STATUS = {"zendesk": "new", "freshdesk": "open", "jira": "To Do"}
READ_PATH = {
    "zendesk": "/api/v2/tickets/{id}",
    "freshdesk": "/api/v2/tickets/{id}",
    "jira": "/rest/api/2/issue/{id}",
}


@pytest.fixture(params=SYSTEMS)
def desk(request: pytest.FixtureRequest) -> Iterator[Desk]:
    with serving(FAKES[request.param]()) as fake:
        client = _connect(request.param, fake.base_url)
        yield Desk(request.param, fake, client)
        client.close()


def _source(desk: Desk) -> OutcomeSource:
    assert isinstance(desk.client, OutcomeSource)
    return desk.client


def test_a_new_ticket_reads_back_open_with_the_priority_it_was_sent_with(desk: Desk) -> None:
    ref = desk.client.create_ticket(_enriched(label="urgent"), "key-1")

    outcome = _source(desk).ticket_outcome(ref)

    assert outcome.ref == ref
    assert outcome.status == NEW_STATUS[desk.system] and not outcome.closed
    assert outcome.helpdesk_priority == str(URGENT[desk.system])
    assert outcome.labels == ("urgent",)
    read = desk.fake.requests[-1]
    assert (read.method, read.path) == ("GET", READ_PATH[desk.system].format(id=ref.id))
    if desk.system == "jira":
        assert read.query == {"fields": "status,priority"}


def test_a_ticket_being_worked_on_is_not_closed(desk: Desk) -> None:
    ref = desk.client.create_ticket(_enriched(), "key-1")
    desk.fake.settle(ref.id, **OPEN[desk.system])
    assert not _source(desk).ticket_outcome(ref).closed


@pytest.mark.parametrize("which", [0, 1])
def test_a_closed_ticket_reads_back_with_the_priority_the_agent_gave_it(
    desk: Desk, which: int
) -> None:
    ref = desk.client.create_ticket(_enriched(label="urgent"), "key-1")
    status, status_name = CLOSED[desk.system][which]
    desk.fake.settle(ref.id, status=status, priority=LOW[desk.system])

    outcome = _source(desk).ticket_outcome(ref)

    assert outcome.closed and outcome.status == status_name
    assert outcome.helpdesk_priority == str(LOW[desk.system]) and outcome.labels == ("low",)


# A closing priority that maps back onto no label, or onto two.
NO_INVERSE: dict[str, tuple[dict[str, Any], Any, tuple[str, ...]]] = {
    "zendesk": ({}, None, ()),  # closed without a priority
    "freshdesk": ({"priorities": {"high": 4}}, 4, ("urgent", "high")),
    "jira": ({}, "Lowest", ()),
}


def test_a_closing_priority_without_a_single_inverse_is_returned_as_the_helpdesk_said(
    desk: Desk,
) -> None:
    overrides, closing, labels = NO_INVERSE[desk.system]
    client = _connect(
        desk.system, desk.fake.base_url, mapping=FieldMapping.from_dict(desk.system, overrides)
    )
    ref = client.create_ticket(_enriched(label="normal"), "key-1")
    desk.fake.settle(ref.id, status=CLOSED[desk.system][0][0], priority=closing)

    assert isinstance(client, OutcomeSource)
    outcome = client.ticket_outcome(ref)

    assert outcome.closed and outcome.labels == labels
    assert outcome.helpdesk_priority == (None if closing is None else str(closing))
    client.close()


def test_reading_while_rate_limited_or_failing_is_retryable(desk: Desk) -> None:
    ref = desk.client.create_ticket(_enriched(), "key-1")
    desk.fake.fail_next_read("429", "500")
    with pytest.raises(HelpdeskUnavailable) as limited:
        _source(desk).ticket_outcome(ref)
    assert limited.value.retry_after == 7.0
    with pytest.raises(HelpdeskUnavailable, match="HTTP 500"):
        _source(desk).ticket_outcome(ref)
    assert not _source(desk).ticket_outcome(ref).closed


NOT_FOUND = {
    "zendesk": "HTTP 404: Not found",
    "freshdesk": "HTTP 404: Not found",
    "jira": "HTTP 404: Issue does not exist or you do not have permission to see it.",
}


def test_a_ticket_the_helpdesk_does_not_have_is_rejected_with_its_message(desk: Desk) -> None:
    missing = "SUP-404" if desk.system == "jira" else "404"
    with pytest.raises(HelpdeskRejected, match=NOT_FOUND[desk.system]):
        _source(desk).ticket_outcome(HelpdeskRef(desk.system, missing))


def test_wrong_credentials_cannot_read_tickets(desk: Desk) -> None:
    ref = desk.client.create_ticket(_enriched(), "key-1")
    client = _connect(desk.system, desk.fake.base_url, good_auth=False)
    assert isinstance(client, OutcomeSource)
    with pytest.raises(HelpdeskRejected, match="HTTP 401"):
        client.ticket_outcome(ref)
    client.close()


def test_delivered_then_closed_tickets_become_labels_in_the_local_store(
    desk: Desk, tmp_path: Path
) -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    with SQLiteTicketStore(tmp_path / "t.sqlite3") as store:
        for name in ("a", "b", "c"):
            store.add_with_delivery(_enriched(f"t-{name}", label="urgent"), now)
        report = deliver_due(store, desk.client, now=lambda: now)
        assert report.delivered == ["t-a", "t-b", "t-c"]
        refs = {d.ticket_id: d.ref for d in store.deliveries("delivered")}
        closed_status = CLOSED[desk.system][0][0]
        refs_a, refs_b = refs["t-a"], refs["t-b"]
        assert refs_a is not None and refs_b is not None
        desk.fake.settle(refs_a.id, status=closed_status, priority=LOW[desk.system])
        desk.fake.settle(refs_b.id, status=closed_status, priority=URGENT[desk.system])
        # The helpdesk starts rate-limiting at the second ticket: the run stops there.
        desk.fake.fail_next_read("pass", "429")

        first = collect_outcomes(store, store, desk.client, store, labels=("low", "urgent"))

        assert first.recorded == ["t-a"] and first.retry_after == 7.0
        assert first.stopped is not None and "429" in first.stopped

        second = collect_outcomes(store, store, desk.client, store, labels=("low", "urgent"))

        assert second.recorded == ["t-b"] and second.still_open == ["t-c"]
        assert second.already_labelled == 1 and second.stopped is None
        labels = {
            c.ticket_id: (c.label, c.predicted, c.agent, c.agrees) for c in store.corrections()
        }
        agent = f"helpdesk:{desk.system}"
        assert labels == {
            "t-a": ("low", "urgent", agent, False),
            "t-b": ("urgent", "urgent", agent, True),
        }
        agreement = store.agreement("priority", 50)
        assert (agreement.tickets, agreement.agreed) == (2, 1)

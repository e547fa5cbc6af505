"""Reading tickets back from a real Request Tracker 5: created by the connector, resolved by an
agent through RT's REST 2 API (often with the priority changed), then collected as labels.

The server is the one `test_rt_real` starts (Debian's RT 5 on SQLite, on a free loopback port),
started afresh for this module and stopped after it.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.helpdesk.rt import RTClient
from adapters.local.sqlite_store import SQLiteTicketStore
from core.delivery import deliver_due
from core.errors import HelpdeskRejected, HelpdeskUnavailable
from core.outcomes import collect_outcomes
from core.ports import HelpdeskRef, OutcomeSource
from tests.integration import test_rt_real
from tests.integration.test_rt_real import RT, _ticket

# The module-scoped RT server fixture, shared by name.
rt = test_rt_real.rt


def agent_updates(rt: RT, ticket_id: str, **fields: Any) -> None:
    """What an agent does in RT: change the ticket's status and priority (REST 2 PUT)."""
    response = rt.api.put(f"/ticket/{ticket_id}", json=fields)
    assert response.status_code == 200, response.text
    assert all("denied" not in message.lower() for message in response.json()), response.text


def test_the_rt_connector_can_read_tickets_back(rt: RT) -> None:
    assert isinstance(RTClient(rt.base_url, rt.token), OutcomeSource)


def test_a_new_ticket_is_open_with_the_priority_it_was_created_with(rt: RT) -> None:
    client = RTClient(rt.base_url, rt.token)
    ref = client.create_ticket(_ticket("urgent", "Outcome new"), "outcome-new")

    outcome = client.ticket_outcome(ref)

    assert (outcome.status, outcome.closed) == ("new", False)
    assert outcome.helpdesk_priority == "90" and outcome.labels == ("urgent",)


def test_a_ticket_resolved_with_a_changed_priority_reads_back_closed_with_it(rt: RT) -> None:
    client = RTClient(rt.base_url, rt.token)
    ref = client.create_ticket(_ticket("urgent", "Outcome resolved"), "outcome-resolved")
    agent_updates(rt, ref.id, Status="open")
    assert not client.ticket_outcome(ref).closed

    agent_updates(rt, ref.id, Status="resolved", Priority=20)
    outcome = client.ticket_outcome(ref)

    assert (outcome.status, outcome.closed) == ("resolved", True)
    assert outcome.helpdesk_priority == "20" and outcome.labels == ("low",)
    assert rt.ticket(ref.id)["Priority"] == "20"


def test_a_priority_no_label_maps_to_reads_back_without_a_label(rt: RT) -> None:
    client = RTClient(rt.base_url, rt.token)
    ref = client.create_ticket(_ticket("normal", "Outcome sixty"), "outcome-sixty")
    agent_updates(rt, ref.id, Status="resolved", Priority=60)

    outcome = client.ticket_outcome(ref)

    assert outcome.closed and outcome.helpdesk_priority == "60" and outcome.labels == ()


def test_a_rejected_ticket_is_not_an_outcome(rt: RT) -> None:
    client = RTClient(rt.base_url, rt.token)
    ref = client.create_ticket(_ticket("normal", "Outcome rejected"), "outcome-rejected")
    agent_updates(rt, ref.id, Status="rejected")

    outcome = client.ticket_outcome(ref)

    assert (outcome.status, outcome.closed) == ("rejected", False)


def test_a_ticket_rt_does_not_have_is_rejected(rt: RT) -> None:
    client = RTClient(rt.base_url, rt.token)
    with pytest.raises(HelpdeskRejected, match="HTTP 404"):
        client.ticket_outcome(HelpdeskRef("rt", "987654"))


def test_reading_from_rt_that_is_not_listening_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = RTClient(f"http://127.0.0.1:{port}", "1-1-0000")
    with pytest.raises(HelpdeskUnavailable):
        client.ticket_outcome(HelpdeskRef("rt", "1"))


def test_delivered_tickets_resolved_in_rt_become_labels(rt: RT, tmp_path: Path) -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    client = RTClient(rt.base_url, rt.token)
    with SQLiteTicketStore(tmp_path / "t.sqlite3") as store:
        for name, label in (("down", "urgent"), ("typo", "normal"), ("slow", "normal")):
            store.add_with_delivery(_ticket(label, f"Collected {name}"), now)
        assert len(deliver_due(store, client, now=lambda: now).delivered) == 3
        refs = {d.ticket_id: d.ref for d in store.deliveries("delivered")}
        down, typo, slow = (refs[f"t-Collected {n}"] for n in ("down", "typo", "slow"))
        assert down is not None and typo is not None and slow is not None
        agent_updates(rt, down.id, Status="resolved")  # the model was right
        agent_updates(rt, typo.id, Status="resolved", Priority=20)  # it was less pressing

        first = collect_outcomes(store, store, client, store)

        assert sorted(first.recorded) == ["t-Collected down", "t-Collected typo"]
        assert first.still_open == ["t-Collected slow"] and first.stopped is None
        again = collect_outcomes(store, store, client, store)
        assert again.recorded == [] and again.asked == 1 and again.already_labelled == 2

        agent_updates(rt, slow.id, Status="resolved", Priority=90)
        last = collect_outcomes(store, store, client, store)

        assert last.recorded == ["t-Collected slow"]
        labels = {c.ticket_id: (c.label, c.predicted, c.agent) for c in store.corrections()}
        assert labels == {
            "t-Collected down": ("urgent", "urgent", "helpdesk:rt"),
            "t-Collected typo": ("low", "normal", "helpdesk:rt"),
            "t-Collected slow": ("urgent", "normal", "helpdesk:rt"),
        }

"""Training from a real Request Tracker 5: tickets are created and resolved through RT's REST 2
API as agents would, then `train --from rt` pulls the resolved ones (resuming after an outage)
and trains on them.

The server is the one `test_rt_real` starts (Debian's RT 5 on SQLite, on a free loopback port),
started afresh for this module and stopped after it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.helpdesk.closed import Page, RTClosed, closed_reader
from adapters.helpdesk.pull import PullInterrupted, pull_closed_tickets
from adapters.helpdesk.rt import RTClient
from adapters.local.cli import main
from core.artifact import read_artifact
from core.errors import HelpdeskRejected, HelpdeskUnavailable
from tests.integration import test_rt_real
from tests.integration.test_rt_real import RT

rt = test_rt_real.rt

# What agents leave behind: (subject, first message, final priority, status).
SUBJECTS = [
    ("Cluster down, nobody can log in", "All nodes refuse connections", 95, "resolved"),
    ("Payments failing for every customer", "Checkout answers 500", 90, "resolved"),
    ("Reports export times out", "Large exports stop after a minute", 70, "resolved"),
    ("Settings page does not save", "The save button does nothing", 50, "resolved"),
    ("Typo on the pricing page", "It says anual", 20, "resolved"),
    ("Question about API limits", "How many calls per minute?", 10, "resolved"),
]
QUEUE = "General"


def _create(rt: RT, subject: str, content: str, priority: int, status: str) -> str:
    response = rt.api.post(
        "/ticket",
        json={
            "Queue": QUEUE,
            "Subject": subject,
            "Content": content,
            "ContentType": "text/plain",
            "Priority": priority,
        },
    )
    assert response.status_code == 201, response.text
    ticket_id = str(response.json()["id"])
    if status != "new":
        update = rt.api.put(f"/ticket/{ticket_id}", json={"Status": status})
        assert update.status_code == 200, update.text
    return ticket_id


@pytest.fixture(scope="module")
def helpdesk(rt: RT) -> Iterator[dict[str, Any]]:
    """36 resolved tickets (6 subjects × 6), 4 still open, 2 resolved without a priority."""
    resolved: dict[str, int] = {}
    for round_ in range(6):
        for subject, content, priority, status in SUBJECTS:
            # The requestor's address and phone in the text must not reach the disk.
            text = f"{content}. Call me on +44 20 7946 0{round_}58 or ann{round_}@example.com"
            resolved[_create(rt, f"{subject} #{round_}", text, priority, status)] = priority
    still_open = [_create(rt, f"Open case {i}", "still working", 90, "open") for i in range(4)]
    unset = [_create(rt, f"No priority {i}", "never triaged", 0, "resolved") for i in range(2)]
    yield {"resolved": resolved, "open": still_open, "unset": unset}


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _reader(rt: RT, per_page: int = 10) -> RTClosed:
    reader = closed_reader(RTClient(rt.base_url, rt.token, queue=QUEUE), per_page=per_page)
    assert isinstance(reader, RTClosed)
    return reader


def test_resolved_tickets_are_pulled_with_their_final_priority_and_redacted(
    rt: RT, helpdesk: dict[str, Any], tmp_path: Path
) -> None:
    export = tmp_path / "rt.jsonl"
    result = pull_closed_tickets(_reader(rt), export, source="rt test")

    rows = _lines(export)
    by_id = {r["id"]: r for r in rows}
    assert set(by_id) == set(helpdesk["resolved"])
    assert result.pulled == len(helpdesk["resolved"])
    assert result.without_priority == 0 and result.unmapped == len(helpdesk["unset"])
    assert result.pages == 4  # 38 resolved tickets, 10 a page
    for ticket_id, priority in helpdesk["resolved"].items():
        row = by_id[ticket_id]
        assert row["helpdesk_priority"] == str(priority)
        expected = {95: "urgent", 90: "urgent", 70: "high", 50: "normal", 20: "low", 10: "low"}
        assert row["priority"] == expected[priority]
        assert row["status"] == "resolved" and row["created_at"] and row["solved_at"]
    text = export.read_text()
    assert "@example.com" not in text and "7946" not in text
    assert "[EMAIL]" in text and "[PHONE]" in text
    assert any(r["description"].startswith("All nodes refuse connections") for r in rows)


class _FailsOnce:
    """The RT reader, with the helpdesk going away before one page."""

    def __init__(self, reader: RTClosed, fail_at: str) -> None:
        self.reader = reader
        self.system = reader.system
        self.mapping = reader.mapping
        self.fail_at = fail_at
        self.asked: list[str | None] = []

    def page(self, cursor: str | None) -> Page:
        self.asked.append(cursor)
        if cursor == self.fail_at:
            raise HelpdeskUnavailable("rt: ConnectError: connection refused")
        return self.reader.page(cursor)

    def label(self, priority: Any) -> str | None:
        return self.reader.label(priority)


def test_a_pull_stopped_by_an_outage_resumes_where_it_stopped(
    rt: RT, helpdesk: dict[str, Any], tmp_path: Path
) -> None:
    export = tmp_path / "rt.jsonl"
    down = _FailsOnce(_reader(rt), fail_at="3")
    waits: list[float] = []
    with pytest.raises(PullInterrupted) as caught:
        pull_closed_tickets(down, export, source="rt test", attempts=2, sleep=waits.append)
    message = str(caught.value)
    assert "\n" not in message and "run the same command again to resume" in message
    assert "20 closed tickets so far" in message
    assert waits == [1.0]
    # A half-written page from the stopped run is cut back when the pull resumes.
    with export.open("a") as handle:
        handle.write('{"id": "half')

    again = _FailsOnce(_reader(rt), fail_at="never")
    result = pull_closed_tickets(again, export, source="rt test")

    assert again.asked[0] == "3" and result.resumed
    ids = [r["id"] for r in _lines(export)]
    assert len(ids) == len(set(ids)) == len(helpdesk["resolved"]) == result.pulled


def test_train_from_rt_pulls_and_trains_with_the_delivery_settings(
    rt: RT,
    helpdesk: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TICKET_ENRICH_HELPDESK_URL", rt.base_url)
    monkeypatch.setenv("TICKET_ENRICH_HELPDESK_TOKEN", rt.token)
    monkeypatch.setenv("TICKET_ENRICH_HELPDESK_QUEUE", QUEUE)
    out = tmp_path / "model"

    code = main(["train", "--from", "rt", "--pull-dir", str(tmp_path / "pull"), "--out", str(out)])

    assert code == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "rt: page 1:" in err
    assert f"{len(helpdesk['resolved'])} closed tickets in" in err
    metadata = read_artifact(out).metadata
    training = metadata["training_data"]
    assert training["file"] == "rt.jsonl"
    assert training["rows"] == len(helpdesk["resolved"])
    assert training["spec"]["resolved_column"] == "solved_at"
    assert set(metadata["labels"]) == {"urgent", "high", "normal", "low"}


def test_a_wrong_token_is_one_line_naming_the_settings(
    rt: RT, helpdesk: dict[str, Any], tmp_path: Path
) -> None:
    reader = closed_reader(RTClient(rt.base_url, "1-1-0000"))
    with pytest.raises(HelpdeskRejected) as caught:
        pull_closed_tickets(reader, tmp_path / "rt.jsonl", source="rt test")
    message = str(caught.value)
    assert "HTTP 401" in message and "TICKET_ENRICH_HELPDESK_TOKEN" in message
    assert "\n" not in message


def test_too_few_closed_tickets_stop_training_with_one_line(
    rt: RT,
    helpdesk: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    created = rt.api.post("/queue", json={"Name": "Quiet"})
    assert created.status_code == 201, created.text
    for i in range(3):
        response = rt.api.post(
            "/ticket", json={"Queue": "Quiet", "Subject": f"q{i}", "Content": "x", "Priority": 50}
        )
        assert response.status_code == 201, response.text
        rt.api.put(f"/ticket/{response.json()['id']}", json={"Status": "resolved"})
    monkeypatch.setenv("TICKET_ENRICH_HELPDESK_URL", rt.base_url)
    monkeypatch.setenv("TICKET_ENRICH_HELPDESK_TOKEN", rt.token)
    monkeypatch.setenv("TICKET_ENRICH_HELPDESK_QUEUE", "Quiet")

    code = main(["train", "--from", "rt", "--pull-dir", str(tmp_path / "pull")])

    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "rt: 3 closed tickets with a priority pulled" in err
    assert "training needs at least 20" in err

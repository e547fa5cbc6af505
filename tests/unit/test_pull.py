"""The resumable pull of closed tickets, with a fake reader (no network)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.helpdesk.closed import ClosedTicket, Page, RTClosed
from adapters.helpdesk.mapping import FieldMapping
from adapters.helpdesk.pull import PullInterrupted, pull_closed_tickets
from core.errors import HelpdeskUnavailable
from training.data import PRESETS, load_dataset, recognise_export


class FakeClosedTicketReader:
    """Pages of three tickets; ``stop_at`` raises before that page is read."""

    system = "fake"

    def __init__(self, pages: int, stop_at: int | None = None, error: Exception | None = None):
        self.mapping = FieldMapping.for_system("zendesk")
        self.pages = pages
        self.stop_at = stop_at
        self.error = error or KeyboardInterrupt()
        self.asked: list[str | None] = []

    def page(self, cursor: str | None) -> Page:
        self.asked.append(cursor)
        number = int(cursor or 0)
        if number == self.stop_at:
            raise self.error
        tickets = [
            ClosedTicket(
                id=f"{number}-{i}",
                subject=f"subject {number}-{i}",
                description="write to ann@example.com",
                priority=[None, "urgent", "low"][i],
                status="solved",
                created_at="2024-01-01T00:00:00Z",
                solved_at="2024-01-02T00:00:00Z",
                fields={"360001": "billing", "note": "card 4111 1111 1111 1111"},
            )
            for i in range(3)
        ]
        return Page(tickets, str(number + 1) if number + 1 < self.pages else None)

    def label(self, priority: Any) -> str | None:
        labels = self.mapping.labels_for(priority)
        return labels[0] if len(labels) == 1 else None


def _ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def test_a_pull_writes_redacted_rows_and_counts_what_it_skips(tmp_path: Path) -> None:
    export = tmp_path / "x.jsonl"
    seen: list[str] = []
    result = pull_closed_tickets(
        FakeClosedTicketReader(3), export, source="s", progress=seen.append
    )
    rows = [json.loads(line) for line in export.read_text().splitlines()]
    assert (result.pulled, result.without_priority, result.pages) == (6, 3, 3)
    assert {r["priority"] for r in rows} == {"urgent", "low"}
    assert all(r["description"] == "write to [EMAIL]" for r in rows)
    assert all(r["field:note"] == "card [CARD]" and r["field:360001"] == "billing" for r in rows)
    assert len(seen) == 3 and "6 closed tickets pulled, 3 without a priority" in seen[-1]


def test_ctrl_c_keeps_the_pull_and_the_next_one_goes_on_from_its_cursor(tmp_path: Path) -> None:
    export = tmp_path / "x.jsonl"
    with pytest.raises(PullInterrupted, match="stopped; 4 closed tickets so far are kept"):
        pull_closed_tickets(FakeClosedTicketReader(4, stop_at=2), export, source="s")
    reader = FakeClosedTicketReader(4)
    result = pull_closed_tickets(reader, export, source="s")
    assert reader.asked == ["2", "3"] and result.resumed
    assert _ids(export) == [f"{p}-{i}" for p in range(4) for i in (1, 2)]


def test_a_finished_pull_or_another_source_starts_afresh(tmp_path: Path) -> None:
    export = tmp_path / "x.jsonl"
    pull_closed_tickets(FakeClosedTicketReader(2), export, source="s")
    reader = FakeClosedTicketReader(2)
    assert not pull_closed_tickets(reader, export, source="s").resumed
    assert reader.asked == [None, "1"] and len(_ids(export)) == 4

    with pytest.raises(PullInterrupted):
        pull_closed_tickets(FakeClosedTicketReader(3, stop_at=1), export, source="s")
    other = FakeClosedTicketReader(2)
    assert not pull_closed_tickets(other, export, source="another helpdesk").resumed
    assert other.asked[0] is None and len(_ids(export)) == 4


def test_an_outage_is_retried_with_backoff_then_stops(tmp_path: Path) -> None:
    waits: list[float] = []
    down = FakeClosedTicketReader(3, stop_at=1, error=HelpdeskUnavailable("fake: HTTP 502: bad"))
    with pytest.raises(PullInterrupted, match=r"fake: HTTP 502: bad \(page 2, 4 attempts\)"):
        pull_closed_tickets(down, tmp_path / "x.jsonl", source="s", attempts=4, sleep=waits.append)
    assert waits == [1.0, 2.0, 4.0]


RT_LABELS = [
    ("99", "urgent"),
    ("90", "urgent"),
    ("89", "high"),
    ("70", "high"),
    ("50", "normal"),
    ("49", "low"),
    ("20", "low"),
    ("5", "low"),
    ("0", None),
    ("", None),
    ("x", None),
]


@pytest.mark.parametrize(("priority", "label"), RT_LABELS)
def test_rt_numbers_get_the_label_of_the_highest_floor_they_reach(
    priority: str, label: str | None
) -> None:
    reader = RTClosed(httpx.Client(), FieldMapping.for_system("rt"), lambda _body: None, "General")
    assert reader.label(priority) == label


def test_a_pulled_export_is_recognised_and_read_with_its_preset(tmp_path: Path) -> None:
    export = tmp_path / "x.jsonl"
    pull_closed_tickets(FakeClosedTicketReader(12), export, source="s")
    name, spec = recognise_export(export)
    assert name == "helpdesk-pull" and spec == PRESETS["helpdesk-pull"]
    data = load_dataset(export, spec)
    assert len(data.examples) == 24 and data.labels == ["low", "urgent"]
    assert all(e.resolved is not None and e.source_id for e in data.examples)

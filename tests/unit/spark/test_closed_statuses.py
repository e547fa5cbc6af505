"""The Spark trainer reads a helpdesk preset's closed statuses and unlabelled rows as
`training.data.load_dataset` does: other statuses and tickets without a priority are left out."""

from __future__ import annotations

import json
from dataclasses import replace

from training.data import JIRA_PRIORITIES, PRESETS
from training.spark import _example

ROW = {
    "Summary": "Checkout fails",
    "Issue key": "SUP-1",
    "Status": "Done",
    "Priority": "Highest",
    "Created": "12/Mar/24 3:45 PM",
    "Resolved": "14/Mar/24 9:05 AM",
    "Description": "Every payment answers 500.",
    "Resolution": "Done",
}


def _read(**changes: str) -> dict[str, object] | None:
    # A raw value mapped to no label stands for "no priority", as RT's 0 does.
    spec = replace(PRESETS["jira"], label_map={**JIRA_PRIORITIES, "None": ""})
    return _example(json.dumps({**ROW, **changes}), spec, [], [])


def test_every_closed_status_of_the_preset_is_read() -> None:
    for status in ("Done", "Closed", "Resolved"):
        example = _read(Status=status)
        assert example is not None and example["label"] == "urgent"


def test_open_and_unlabelled_tickets_are_left_out() -> None:
    assert _read(Status="In Progress") is None
    assert _read(Priority="") is None
    assert _read(Priority="None") is None

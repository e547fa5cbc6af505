"""`core.schema.normalize_ticket`: the enrichment path's validation without pydantic gives what
the pydantic `Ticket` gives, accepting and refusing alike, with the same messages."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.errors import InvalidTicket
from core.schema import Limits, normalize_ticket, parse_ticket

REPO_ROOT = Path(__file__).resolve().parents[2]


def _by_pydantic(data: Any, limits: Limits | None = None) -> Any:
    try:
        return parse_ticket(data, limits).model_dump(mode="json", exclude_none=True)
    except InvalidTicket as exc:
        return (type(exc).__name__, [p.as_dict() for p in exc.problems])


def _fast(data: Any, limits: Limits | None = None) -> Any:
    try:
        return normalize_ticket(data, limits)
    except InvalidTicket as exc:
        return (type(exc).__name__, [p.as_dict() for p in exc.problems])


CASES: list[Any] = [
    {"subject": "Disk full"},
    {"description": "only a description"},
    {"subject": "x", "description": "y", "channel": "email", "external_id": "ZD-1"},
    {"subject": "x", "requester": {"email": " ann@example.com ", "name": " Ann ", "tier": "gold"}},
    {"subject": "x", "requester": {}},
    {"subject": "x", "requester": None, "channel": None, "external_id": None},
    {"subject": "x", "custom_fields": {"a": "b", "n": 3, "f": 1.5, "t": True, "z": None}},
    {"subject": "x", "custom_fields": {"big": 10**30}},
    {"subject": "x", "created_at": "2024-03-01T10:00:00Z"},
    {"subject": "x", "created_at": 1700000000},
    {"subject": "x", "created_at": None},
    # Refusals: each must name the same fields with the same words.
    {},
    {"subject": "  ", "description": "\n"},
    {"subject": 42},
    {"subject": "x", "priority": "urgent"},
    {"subject": "x", "requester": {"email": "not-an-address"}},
    {"subject": "x", "requester": {"email": "a@b.co", "phone": "1"}},
    {"subject": "x", "requester": {"name": "n" * 257}},
    {"subject": "x", "requester": {"name": " " + "n" * 256 + " "}},
    {"subject": "x", "requester": {"tier": "\u2003gold\u2003"}},
    {"subject": "x", "requester": {"tier": "\x1cgold"}},
    {"subject": "x", "requester": "ann"},
    {"subject": "x", "channel": "c" * 65},
    {"subject": "x", "channel": 3},
    {"subject": "x", "custom_fields": None},
    {"subject": "x", "custom_fields": {"k" * 129: 1}},
    {"subject": "x", "custom_fields": {str(i): i for i in range(201)}},
    {"subject": "x", "custom_fields": {"list": [1, 2]}},
    {"subject": "x", "custom_fields": {"obj": {"a": 1}}},
    {"subject": "x", "created_at": "yesterday"},
    {"subject": "x", "external_id": ""},
    {"subject": "x", "external_id": "e" * 257},
    {"subject": "x", "external_id": 7},
    {"subject": b"bytes"},
    {"subject": "x", "description": None},
    ["subject"],
    "a string",
    None,
]


@pytest.mark.parametrize("data", CASES, ids=[json.dumps(c, default=str)[:60] for c in CASES])
def test_the_fast_path_accepts_and_refuses_as_the_model_does(data: Any) -> None:
    assert _fast(data) == _by_pydantic(data)


def test_size_limits_are_checked_first_and_named_alike() -> None:
    limits = Limits(subject_bytes=10, description_bytes=20)
    for data in (
        {"subject": "é" * 6, "description": "ok"},
        {"subject": "ok", "description": "x" * 21},
        {"subject": "x" * 10},
        {"subject": "\U0001f600" * 3},
    ):
        assert _fast(data, limits) == _by_pydantic(data, limits)


def test_a_random_mix_of_fields_and_values_agrees_with_the_model() -> None:
    rng = random.Random(7)
    values: list[Any] = [
        "", " ", "x", " padded ", "a@b.co", "no-at", "é" * 3, "\t", 0, 1, -5, 2.5, True, False,
        None, [], {}, {"email": "a@b.co"}, {"name": "Ann"}, {"tier": 3}, "2024-01-01T00:00:00Z",
        "t" * 300,
    ]  # fmt: skip
    keys = [
        "subject", "description", "requester", "channel", "custom_fields", "created_at",
        "external_id", "unknown",
    ]  # fmt: skip
    for _ in range(3000):
        data: dict[str, Any] = {}
        for key in rng.sample(keys, rng.randint(0, 4)):
            if key == "custom_fields" and rng.random() < 0.7:
                data[key] = {f"f{i}": rng.choice(values[:16]) for i in range(rng.randint(0, 3))}
            else:
                data[key] = rng.choice(values)
        assert _fast(data) == _by_pydantic(data), data


def test_the_result_is_a_copy_the_caller_can_change() -> None:
    data = {"subject": "x", "custom_fields": {"a": "b"}, "requester": {"name": "Ann"}}
    out = normalize_ticket(data)
    out["custom_fields"]["a"] = "changed"
    out["requester"]["name"] = "changed"
    assert data == {"subject": "x", "custom_fields": {"a": "b"}, "requester": {"name": "Ann"}}


def test_enriching_a_plain_ticket_imports_no_pydantic(small_model_dir: Path) -> None:
    code = f"""
import json, sys
import core
enricher = core.load_enricher({str(small_model_dir)!r})
out = enricher.enrich({{"subject": "Disk full", "description": "The node is down."}})
before = "pydantic" in sys.modules
try:
    enricher.enrich({{"subject": 42}})
except Exception as exc:
    refused = type(exc).__name__
print(json.dumps({{"before": before, "after": "pydantic" in sys.modules, "refused": refused,
                   "subject": out["ticket"]["subject"]}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    child = json.loads(done.stdout)
    # A refusal loads the model that words it; a plain ticket never does.
    assert child == {"before": False, "after": True, "refused": "InvalidTicket",
                     "subject": "Disk full"}  # fmt: skip

"""Every ticket of the edge-case corpus enriches with every field on, and never raises."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core import load_enricher
from core.enricher import Enricher
from core.sentiment import BANDS as SENTIMENT_BANDS

CORPUS = [
    json.loads(line)
    # Split on newlines only: the corpus holds U+2028 and friends, which splitlines() breaks on.
    for line in (Path(__file__).parents[1] / "corpus" / "tickets.jsonl").read_text().split("\n")
    if line
]


@pytest.fixture(scope="module")
def enricher(model_dir: Path) -> Enricher:
    return load_enricher(model_dir)


@pytest.mark.parametrize("case", CORPUS, ids=[c["id"] for c in CORPUS])
def test_every_field_is_present_and_well_formed(enricher: Enricher, case: dict[str, Any]) -> None:
    result = enricher.enrich(case["ticket"])
    e = result["enrichment"]
    assert e["priority"]["label"] in ("low", "normal", "urgent")
    assert sum(e["priority"]["probabilities"].values()) == pytest.approx(1.0)
    assert e["categories"]["resolution"]["label"] in e["categories"]["resolution"]["probabilities"]
    t = e["resolution_time"]
    assert 0 <= t["interval_90"][0] <= t["hours"] <= t["interval_90"][1]
    assert len(e["similar"]) <= 5 and isinstance(e["possible_duplicate"], bool)
    assert -1.0 <= e["sentiment"]["score"] <= 1.0 and e["sentiment"]["band"] in SENTIMENT_BANDS
    assert e["language"]["code"] == "und" or len(e["language"]["code"]) == 2
    assert 0.0 <= e["language"]["confidence"] <= 1.0
    assert len(e["tags"]) <= 5 and all(isinstance(tag, str) for tag in e["tags"])
    assert all(x["weight"] > 0 for x in e["explanation"])
    for r in e["redactions"]:
        assert r["field"] in ("subject", "description") and r["start"] < r["end"]
    json.dumps(result)  # every value is plain JSON


def _enrich(enricher: Enricher, case_id: str) -> dict[str, Any]:
    case = next(c for c in CORPUS if c["id"] == case_id)
    return enricher.enrich(case["ticket"])  # type: ignore[no-any-return]


def test_languages_are_told_apart(enricher: Enricher) -> None:
    assert _enrich(enricher, "german")["enrichment"]["language"]["code"] == "de"
    assert _enrich(enricher, "japanese")["enrichment"]["language"]["code"] == "ja"
    assert _enrich(enricher, "arabic-rtl")["enrichment"]["language"]["code"] == "ar"
    assert _enrich(enricher, "plain-english")["enrichment"]["language"]["code"] == "en"
    assert _enrich(enricher, "only-stack-trace")["enrichment"]["language"]["code"] == "und"


def test_angry_tickets_read_negative(enricher: Enricher) -> None:
    assert _enrich(enricher, "emoji-mixed")["enrichment"]["sentiment"]["score"] < -0.2


def test_personal_data_and_secrets_leave_only_as_placeholders(enricher: Enricher) -> None:
    result = _enrich(enricher, "pii-heavy")
    text = result["ticket"]["subject"] + result["ticket"]["description"]
    for secret in ("ann@example.com", "7946 0958", "4111 1111", "DE89", "hunter2", "192.168.1.20"):
        assert secret not in text
    kinds = {r["kind"] for r in result["enrichment"]["redactions"]}
    assert {"email", "phone", "card", "iban", "secret", "ip"} <= kinds
    assert "hunter2" not in json.dumps(result["enrichment"])
    secrets = _enrich(enricher, "secrets")
    assert "AKIAIOSFODNN7EXAMPLE" not in secrets["ticket"]["description"]
    assert "eyJhbGciOiJIUzI1NiJ9" not in secrets["ticket"]["description"]


def test_html_is_kept_as_text_not_interpreted(enricher: Enricher) -> None:
    result = _enrich(enricher, "html-injection-subject")
    assert result["ticket"]["subject"] == "<img src=x onerror=alert(1)>"

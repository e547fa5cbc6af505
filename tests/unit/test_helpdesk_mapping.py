"""How enrichments map onto helpdesk fields: the defaults of each system and JSON overrides."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.helpdesk.mapping import FieldMapping, requester_of, subject_of
from adapters.helpdesk.transport import parse_retry_after
from core.ports import StoredTicket


def _enrichment(
    label: str = "urgent", band: str = "low", needs_review: bool = True
) -> dict[str, Any]:
    return {
        "priority": {
            "label": label,
            "confidence": 0.8234,
            "band": band,
            "needs_review": needs_review,
            "probabilities": {"low": 0.1, "normal": 0.0766, "urgent": 0.8234},
        },
        "categories": {"resolution": {"label": "Fixed", "confidence": 0.41, "band": "low"}},
        "resolution_time": {"hours": 251.3},
        "similar": [{"id": "13435563", "score": 0.91}],
        "possible_duplicate": True,
        "sentiment": {"score": -0.31, "band": "negative"},
        "language": {"code": "en", "confidence": 0.93},
        "tags": ["namenode", "Name Node", "upgrade", "namenode"],
        "needs_review": needs_review,
        "model": {"name": "ticket-priority", "version": "20261123.110054-a04ac623"},
    }


def _ticket(**ticket: Any) -> StoredTicket:
    fields = {
        "subject": "NameNode fails to start",
        "description": "All DataNodes are down.",
        "requester": {"email": "ann@example.com", "name": "Ann"},
    }
    return StoredTicket("t-1", "ZD-1", "2026-11-23T11:00:00Z", {**fields, **ticket}, _enrichment())


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        ("zendesk", {"urgent": "urgent", "high": "high", "normal": "normal", "low": "low"}),
        ("freshdesk", {"urgent": 4, "high": 3, "normal": 2, "low": 1}),
        ("jira", {"urgent": "Highest", "high": "High", "normal": "Medium", "low": "Low"}),
    ],
)
def test_default_priorities_follow_each_helpdesks_scale(
    system: str, expected: dict[str, Any]
) -> None:
    mapping = FieldMapping.for_system(system)
    assert {label: mapping.priority_for(_enrichment(label)) for label in expected} == expected


def test_rt_priorities_are_ordered_numbers_within_0_to_100() -> None:
    mapping = FieldMapping.for_system("rt")
    values = [
        mapping.priority_for(_enrichment(label)) for label in ("low", "normal", "high", "urgent")
    ]
    numbers = [v for v in values if isinstance(v, int) and 0 <= v <= 100]
    assert numbers == values
    assert numbers == sorted(numbers) and len(set(numbers)) == 4


def test_a_label_the_mapping_does_not_know_gets_the_default_priority() -> None:
    mapping = FieldMapping.for_system("freshdesk")
    assert mapping.priority_for(_enrichment("blocker")) == 2
    assert mapping.priority_for({}) == 2
    assert FieldMapping.for_system("zendesk", default_priority=None).priority_for({}) is None


def test_an_unknown_system_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="freshdesk, jira, rt, zendesk"):
        FieldMapping.for_system("servicenow")


def test_tags_carry_priority_band_review_flag_and_the_enrichments_own_tags() -> None:
    tags = FieldMapping.for_system("zendesk").tags(_enrichment())
    assert tags == [
        "priority__urgent",
        "band__low",
        "needs_review",
        "namenode",
        "name_node",
        "upgrade",
    ]


def test_no_review_tag_when_the_prediction_is_trusted() -> None:
    tags = FieldMapping.for_system("zendesk").tags(_enrichment(band="high", needs_review=False))
    assert "needs_review" not in tags
    assert "band__high" in tags


def test_tag_options_switch_off_the_model_tags_add_extra_ones_and_cap_the_count() -> None:
    mapping = FieldMapping.for_system(
        "jira", include_enrichment_tags=False, extra_tags=("From Enricher",), max_tags=4
    )
    assert mapping.tags(_enrichment()) == [
        "priority__urgent",
        "band__low",
        "needs_review",
        "from_enricher",
    ]
    assert len(FieldMapping.for_system("jira", max_tags=2).tags(_enrichment())) == 2


def test_the_idempotency_tag_is_stable_per_key_tag_safe_and_comes_first() -> None:
    mapping = FieldMapping.for_system("jira")
    tag = mapping.idempotency_tag("ticket-1:delivery")
    assert tag == mapping.idempotency_tag("ticket-1:delivery")
    assert tag != mapping.idempotency_tag("ticket-2:delivery")
    assert tag.startswith("te-") and tag.replace("-", "").isalnum() and len(tag) <= 32
    assert mapping.tags(_enrichment(), "ticket-1:delivery")[0] == tag


def test_custom_fields_are_sent_only_when_configured() -> None:
    assert FieldMapping.for_system("zendesk").custom_fields(_enrichment()) == {}
    mapping = FieldMapping.for_system(
        "freshdesk", confidence_field="cf_confidence", needs_review_field="cf_needs_review"
    )
    assert mapping.custom_fields(_enrichment()) == {
        "cf_confidence": 0.8234,
        "cf_needs_review": True,
    }
    assert mapping.custom_fields({}) == {}


def test_from_dict_merges_priorities_and_replaces_the_rest() -> None:
    mapping = FieldMapping.from_dict(
        "jira",
        {
            "priorities": {"urgent": "Blocker"},
            "band_field": "customfield_10042",
            "extra_tags": ["enriched"],
            "include_enrichment_tags": False,
        },
    )
    assert mapping.priority_for(_enrichment("urgent")) == "Blocker"
    assert mapping.priority_for(_enrichment("low")) == "Low"
    assert mapping.custom_fields(_enrichment()) == {"customfield_10042": "low"}
    assert mapping.extra_tags == ("enriched",)
    assert "namenode" not in mapping.tags(_enrichment())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"priority_map": {}}, "unknown field-mapping setting 'priority_map'"),
        ({"max_tags": "5"}, "'max_tags' has the wrong type"),
        ({"max_tags": True}, "'max_tags' has the wrong type"),
        ({"max_tags": 0}, "'max_tags' is at least 1"),
        ({"priorities": {"urgent": 4.5}}, "'priorities' maps labels"),
        ({"priorities": {"urgent": True}}, "'priorities' maps labels"),
        ({"extra_tags": ["ok", 3]}, "'extra_tags' is a list of strings"),
        ({"confidence_field": 7}, "'confidence_field' has the wrong type"),
    ],
)
def test_from_dict_names_the_bad_setting(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FieldMapping.from_dict("zendesk", data)


def test_the_description_is_the_ticket_text_then_a_short_enrichment_summary() -> None:
    text = FieldMapping.for_system("zendesk").description(_ticket())
    body, summary = text.split("\n\n-- \n")
    assert body == "All DataNodes are down."
    assert summary.splitlines() == [
        "Enrichment (ticket-enrich)",
        "Priority: urgent (confidence 0.82, band low)",
        "Needs review: yes",
        "Resolution: Fixed",
        "Expected resolution: 251 h",
        "Sentiment: negative",
        "Language: en",
        "Possible duplicate of 13435563",
        "Model: 20261123.110054-a04ac623",
    ]


def test_the_summary_leaves_out_fields_that_were_switched_off() -> None:
    mapping = FieldMapping.for_system("rt")
    enrichment = {"priority": {"label": "low"}, "needs_review": False}
    assert mapping.summary(enrichment).splitlines() == [
        "Enrichment (ticket-enrich)",
        "Priority: low",
        "Needs review: no",
    ]
    ticket = StoredTicket("t", None, "now", {"subject": "s"}, enrichment)
    assert mapping.description(ticket) == mapping.summary(enrichment)


def test_subject_falls_back_to_the_description_and_is_cut_to_the_limit() -> None:
    assert subject_of(_ticket(subject="  Disk   full ")) == "Disk full"
    assert subject_of(_ticket(subject="", description="First line\nsecond")) == "First line"
    assert subject_of(_ticket(subject="", description="")) == "Ticket t-1"
    cut = subject_of(_ticket(subject="x" * 300), max_chars=255)
    assert len(cut) == 255 and cut.endswith("…")


def test_requester_is_read_when_present() -> None:
    assert requester_of(_ticket()) == ("Ann", "ann@example.com")
    assert requester_of(_ticket(requester=None)) == (None, None)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("Mon, 23 Nov 2026 12:00:30 GMT", 30.0),
        ("Mon, 23 Nov 2026 11:00:00 GMT", 0.0),
        ("soon", None),
        ("inf", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(
    header: str | None, expected: float | None
) -> None:
    now = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(header, now=now) == expected

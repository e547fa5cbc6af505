"""Priority rules: what the default set fires on, what it leaves alone, and refused files."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ArtifactError, InvalidRules
from core.rules import KEYWORD_REACH, RULES_FORMAT, RuleSet, load_rules
from training.default_rules import DEFAULT_RULES, default_rules_for

LABELS = ["low", "normal", "urgent"]


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(DEFAULT_RULES, LABELS)


@pytest.mark.parametrize(
    ("subject", "description", "rule"),
    [
        ("Production is down", "All customers get 500 errors.", "outage"),
        ("Site unreachable", "The website is down for everyone since 9am.", "outage"),
        ("Login", "Nobody in our office can log in this morning.", "outage"),
        ("Upgrade", "Data loss after the upgrade, the cluster is unusable.", "data_loss"),
        ("Import", "The sync wiped all our saved reports.", "data_loss"),
        ("Help", "Security breach: customer passwords were leaked.", "security_breach"),
        ("Keys", "Our API keys were pushed to a public GitHub repository.", "security_breach"),
        ("Shop", "Customers can't check out and payments are failing.", "payments_failing"),
        ("Warehouse", "The whole team is locked out of the ERP.", "work_stopped"),
    ],
)
def test_the_default_rules_fire_on_urgent_cues(
    rules: RuleSet, subject: str, description: str, rule: str
) -> None:
    assert rule in [m.rule for m in rules.match(subject, description)]


@pytest.mark.parametrize(
    ("subject", "description"),
    [
        ("Question", "Is there an outage?"),
        ("Invoices", "There is no outage, just a question about invoices."),
        ("Not urgent", "The site was down for five minutes yesterday. Not urgent."),
        ("Migration", "The upgrade finished without data loss."),
        ("Planning", "What happens to our data if your service goes down?"),
        ("Maintenance", "Will the planned maintenance on Saturday cause an outage?"),
        ("Drill", "We run a disaster recovery drill that simulates an outage next week."),
        ("Card", "My card was declined at checkout."),
        ("Login", "I cannot log in, my password is wrong."),
        ("HDFS", "The balancer shuts down the datanode after a restart."),
        ("Report", "Please send the post-mortem for the March outage, no rush."),
    ],
)
def test_the_default_rules_leave_questions_denials_and_calm_tickets_alone(
    rules: RuleSet, subject: str, description: str
) -> None:
    assert rules.match(subject, description) == []


def test_a_form_field_value_fires_a_rule(rules: RuleSet) -> None:
    matches = rules.match("Printer", "It jams.", {"Severity": "Critical"})
    assert [(m.rule, m.match) for m in matches] == [("severity_field", "severity=critical")]


def test_a_minimum_raises_a_label_and_never_lowers_it() -> None:
    spec = _spec([{"name": "floor", "minimum": "normal", "phrases": ["printer"]}])
    rules = load_rules(spec, LABELS)
    matches = rules.match("printer jam", "")
    assert rules.apply("low", matches)[0] == "normal"
    assert rules.apply("urgent", matches) == ("urgent", [])


def test_a_fixed_label_wins_over_a_minimum() -> None:
    spec = _spec(
        [
            {"name": "floor", "minimum": "urgent", "phrases": ["printer"]},
            {"name": "newsletter", "label": "low", "patterns": [r"\bunsubscribe\b"]},
        ]
    )
    rules = load_rules(spec, LABELS)
    label, deciding = rules.apply("normal", rules.match("printer", "please unsubscribe me"))
    assert (label, [m.rule for m in deciding]) == ("low", ["newsletter"])


def _spec(rule_list: list[dict[str, Any]]) -> dict[str, Any]:
    return {"format": RULES_FORMAT, "version": "t", "order": LABELS, "rules": rule_list}


@pytest.mark.parametrize(
    ("rule_list", "message"),
    [
        ([{"name": "broken", "minimum": "urgent", "patterns": ["(unclosed"]}], "'broken'.*regular"),
        ([{"name": "odd", "minimum": "critical", "phrases": ["x"]}], "'odd'.*unknown label"),
        (
            [
                {"name": "twice", "minimum": "urgent", "phrases": ["a"]},
                {"name": "twice", "minimum": "normal", "phrases": ["b"]},
            ],
            "'twice'.*used twice",
        ),
        ([{"name": "empty", "minimum": "urgent"}], "'empty'.*needs phrases"),
        ([{"name": "both", "minimum": "urgent", "label": "low", "phrases": ["x"]}], "'both'"),
        ([{"name": "typo", "minimum": "urgent", "phrase": ["x"]}], "'typo'.*unknown key"),
    ],
)
def test_an_invalid_rules_file_is_refused_naming_the_rule(
    rule_list: list[dict[str, Any]], message: str, tmp_path: Path
) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(_spec(rule_list)))
    with pytest.raises(InvalidRules, match=message) as raised:
        load_rules(path, LABELS)
    assert raised.value.rule is not None
    assert isinstance(raised.value, ArtifactError)


def test_a_rules_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text("{not json")
    with pytest.raises(InvalidRules, match="not valid JSON"):
        load_rules(path, LABELS)


def test_the_default_rules_round_trip_and_skip_models_without_their_labels() -> None:
    rules = load_rules(DEFAULT_RULES, LABELS)
    assert load_rules(rules.as_dict(), LABELS).as_dict() == rules.as_dict()
    assert default_rules_for(LABELS) is DEFAULT_RULES
    assert default_rules_for(["Blocker", "Major", "Minor"]) is None


def test_the_keywords_only_skip_tickets_the_rules_would_not_fire_on(rules: RuleSet) -> None:
    from training.data import PRESETS, load_dataset, vendored_data_path

    plain = copy.deepcopy(DEFAULT_RULES)
    for rule in plain["rules"]:
        rule.pop("keywords", None)
    without = load_rules(plain, LABELS)
    generic = Path(__file__).parents[2] / "bench" / "data" / "generic_urgency.jsonl"
    tickets = [json.loads(line) for line in generic.read_text().splitlines()]
    hadoop = load_dataset(vendored_data_path(), PRESETS["hadoop"]).examples
    tickets += [e.doc for e in hadoop]
    fired = 0
    for t in tickets:
        got = rules.match(t["subject"], t["description"])
        assert got == without.match(t["subject"], t["description"]), t["subject"]
        fired += bool(got)
    assert fired > 50


def _without_keywords() -> RuleSet:
    plain = copy.deepcopy(DEFAULT_RULES)
    for rule in plain["rules"]:
        rule.pop("keywords", None)
    return load_rules(plain, LABELS)


WORDS = [
    "the", "website", "site", "is", "are", "was", "down", "shutdown", "offline", "for",
    "everyone", "all", "users", "customers", "nobody", "can", "log", "in", "outage", "not", "no",
    "data", "loss", "lost", "corrupted", "deleted", "security", "breach", "passwords", "leaked",
    "payments", "failing", "checkout", "whole", "team", "blocked", "production", "stopped", ",",
    ".", "?", "!", "\n", "if", "İ", "2024-01-01 INFO org.apache.hadoop.Server: shutting down",
    "x" * 60, "  ",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=120), st.lists(st.sampled_from(WORDS), max_size=8))
def test_rules_read_near_their_keywords_fire_as_a_scan_of_the_whole_text(
    rules: RuleSet, words: list[str], subject: list[str]
) -> None:
    """Only the text around each keyword is read: every match of the default rules holds a
    keyword, so they fire exactly as on the whole text, wherever the cue sits (deep in a
    log, at a window's edge, after a character whose lower case is longer)."""
    without = _without_keywords()
    title, description = " ".join(subject), " ".join(words)
    assert rules.match(title, description) == without.match(title, description)


def test_a_cue_far_from_any_keyword_is_not_looked_for() -> None:
    spec = {
        "format": RULES_FORMAT,
        "order": LABELS,
        "rules": [
            {"name": "late", "minimum": "urgent", "patterns": [r"\bdown\b.{302}\bnow\b"],
             "keywords": ["down"]},
        ],
    }  # fmt: skip
    rules = load_rules(spec, LABELS)
    assert KEYWORD_REACH < 300
    far = "down " + "x" * 300 + " now"
    assert rules.match("", far) == []
    # Without keywords the whole text is read, and the same pattern fires.
    del spec["rules"][0]["keywords"]
    assert [m.rule for m in load_rules(spec, LABELS).match("", far)] == ["late"]
    spec["rules"][0]["keywords"] = ["down"]
    spec["rules"][0]["patterns"] = [r"\bdown\b.{22}\bnow\b"]
    near = "down " + "x" * 20 + " now"
    assert [m.rule for m in load_rules(spec, LABELS).match("", "log " * 500 + near)] == ["late"]

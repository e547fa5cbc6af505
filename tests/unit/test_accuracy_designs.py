"""The extra feature blocks that `bench.accuracy_designs` measures beside the shipped model."""

from __future__ import annotations

from bench.accuracy_designs import DESIGNS, RuleHits, SubjectChars, _with_block
from training.model import ModelConfig, build_features


def test_subject_chars_are_padded_word_ngrams_of_the_subject_only() -> None:
    tokens = SubjectChars(2, 3)({"subject": "Disk FULL", "description": "ignored words"})
    assert tokens[:3] == [" d", "di", "is"]
    assert " di" in tokens and "ll " in tokens and " fu" in tokens
    assert not any("ig" in t for t in tokens)
    assert "k f" not in tokens  # n-grams never cross words
    assert SubjectChars(2, 4)({"subject": "", "description": "x"}) == []


def test_rule_hits_name_the_default_rules_a_ticket_fires() -> None:
    hits = RuleHits()
    fired = hits({"subject": "Production outage: site down for all users", "description": ""})
    assert "rule:any" in fired
    assert any(t.startswith("rule:") and t not in ("rule:any", "rule:none") for t in fired)
    assert hits({"subject": "Typo in the docs", "description": "A word is misspelt."}) == [
        "rule:none"
    ]


def test_an_extra_block_follows_the_shipped_blocks() -> None:
    build = _with_block("subject_chars", SubjectChars(2, 4))
    config = ModelConfig()
    shipped = [name for name, _ in build_features((), config).transformer_list]
    extended = [name for name, _ in build((), config).transformer_list]
    assert extended == [*shipped, "subject_chars"]
    assert set(DESIGNS) >= {"shipped", "rules-block", "subject-chars-2-4"}

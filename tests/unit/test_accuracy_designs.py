"""The extra feature blocks that `bench.accuracy_designs` measures beside the shipped model."""

from __future__ import annotations

from bench.accuracy_designs import (
    DESIGNS,
    RuleHits,
    SubjectChars,
    _split,
    _with_block,
    ensemble_scores,
)
from training.data import Example, Split
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


def test_open_ticket_designs_add_open_tickets_before_each_window_and_keep_the_test_window() -> None:
    closed, _ = _split("hadoop")
    with_fit, _ = _split("hadoop", "open-tickets")
    with_both, _ = _split("hadoop", "open-tickets-validation")
    first_validation = closed.validation[0].created
    first_test = closed.test[0].created
    assert first_validation is not None and first_test is not None
    assert with_fit.test == closed.test == with_both.test
    assert with_fit.validation == closed.validation
    added = [e for e in with_fit.fit if e not in closed.fit]
    assert added and all(e.created is not None and e.created < first_validation for e in added)
    assert with_both.fit == with_fit.fit
    extra = [e for e in with_both.validation if e not in closed.validation]
    assert extra
    assert all(e.created is not None and first_validation <= e.created < first_test for e in extra)


def test_the_ensemble_scores_each_kind_alone_and_mixes_with_the_logistic_regression() -> None:
    words = {
        "urgent": "outage down broken",
        "normal": "error fails wrong",
        "low": "typo docs wording",
    }
    examples = [
        Example(
            i,
            {"subject": f"{words[label]} {i}", "description": words[label]},
            label,
            None,
            None,
            None,
        )
        for i, label in enumerate(["urgent", "normal", "low", "normal"] * 12)
    ]
    split = Split(examples[:36], examples[36:], [])
    scores = ensemble_scores(split, ModelConfig(), lr_c=(1,), svc_c=(1,), nb_alpha=(1,), mix=(0, 1))
    assert set(scores["validation_macro_f1_alone"]) == {
        "logistic 1",
        "linear_svc 1",
        "complement_nb 1",
    }
    # Each kind tells these words apart; the three mixes with a non-zero weight are ranked.
    assert all(f1 == 1.0 for f1 in scores["validation_macro_f1_alone"].values())
    assert len(scores["best_mixes"]) == 3
    assert scores["best_mixes"][0]["validation_macro_f1"] == 1.0

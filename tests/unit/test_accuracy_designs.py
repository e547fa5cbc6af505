"""The extra feature blocks that `bench.accuracy_designs` measures beside the shipped model."""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from bench.accuracy_designs import (
    DESIGNS,
    MODEL_KINDS,
    OrdinalLogistic,
    RecentFirst,
    RuleHits,
    SubjectChars,
    _split,
    _with_block,
    ceiling_figures,
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


def _bag(rows: list[list[int]]) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64)


def test_the_ordinal_model_orders_five_jira_priorities_by_urgency_not_by_name() -> None:
    # One feature per priority, from the least to the most urgent; the columns follow the
    # alphabetical order scikit-learn gives the classes.
    ranked = ["Trivial", "Minor", "Major", "Critical", "Blocker"]
    x = _bag([[1 if j == i else 0 for j in range(5)] for i in range(5)] * 10)
    y = np.array(ranked * 10)
    model = clone(OrdinalLogistic(C=10.0, max_iter=1000)).fit(x, y)
    assert list(model.classes_) == sorted(ranked)
    proba = model.predict_proba(x[:5])
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert list(model.predict(x[:5])) == ranked
    assert np.allclose(model.decision_function(x[:5]), np.log(proba))
    # "At least Critical" is one of the steps: the Critical and Blocker texts are above it.
    at_least_critical = proba[:, [0, 1]].sum(axis=1)  # Blocker, Critical columns
    assert min(at_least_critical[3:]) > 0.5 > max(at_least_critical[:3])


def test_the_ordinal_model_handles_a_window_without_some_priorities() -> None:
    x = _bag([[1, 0], [0, 1]] * 10)
    model = OrdinalLogistic(C=10.0).fit(x, np.array(["low", "urgent"] * 10))
    assert list(model.classes_) == ["low", "urgent"] and len(model.steps_) == 1
    assert list(model.predict(x[:2])) == ["low", "urgent"]


def test_recent_first_lets_the_newer_tickets_win_a_disagreement() -> None:
    # The same text, labelled "normal" by the older half and "urgent" by the newer half.
    x = _bag([[1, 1]] * 40)
    y = np.array(["normal"] * 20 + ["urgent"] * 20)
    plain = LogisticRegression().fit(x, y).predict_proba(x[:1])[0]
    recent = MODEL_KINDS["recent-300"]()
    assert issubclass(recent, RecentFirst) and recent.half_life == 300
    newer = type("Steep", (RecentFirst,), {"half_life": 5.0})().fit(x, y).predict_proba(x[:1])[0]
    assert abs(plain[0] - plain[1]) < 0.01
    assert newer[1] > 0.9  # the "urgent" column
    assert MODEL_KINDS["ordinal"]() is OrdinalLogistic


def test_the_ceiling_finds_the_weight_a_test_window_would_have_rewarded() -> None:
    labels = ["low", "normal", "urgent"]
    truth = ["urgent", "urgent", "normal", "normal", "low", "low"]
    # Both urgent tickets look normal; the second is urgent at a weight above 3.
    proba = np.array(
        [
            [0.1, 0.5, 0.4],
            [0.1, 0.7, 0.2],
            [0.1, 0.8, 0.1],
            [0.1, 0.9, 0.0],
            [0.8, 0.2, 0.0],
            [0.9, 0.1, 0.0],
        ]
    )
    out = ceiling_figures(labels, proba, truth, ["urgent"], None, macro_f1_floor=0.5)
    best = out["best_urgent_recall_at_floor"]
    assert best["urgent_recall"] == 1.0 and best["urgent_weight"] > 3.5
    assert out["best_macro_f1"]["macro_f1"] == 1.0
    assert (
        ceiling_figures(labels, proba, truth, ["urgent"], None, 1.01)["best_urgent_recall_at_floor"]
        is None
    )
    # Without weights, the most confident "low" and "normal" answers are right until the
    # urgent tickets called normal: 2 low, and the 2 normal above them.
    assert out["auto_apply_ceiling"] == {
        "share": round(4 / 6, 3),
        "per_class": {"low": 2, "normal": 2, "urgent": 0},
    }

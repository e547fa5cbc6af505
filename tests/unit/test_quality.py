"""Live quality from agents' corrections, in the standard library."""

from __future__ import annotations

import pytest

from core.ports import Correction
from core.quality import live_quality, macro_f1


def _c(label: str, predicted: str, version: str = "v1") -> Correction:
    return Correction("t", "priority", label, predicted, "ann", version, "2026-01-01T00:00:00Z")


def test_macro_f1_matches_the_textbook_figure() -> None:
    truth = ["a", "a", "b", "c"]
    predicted = ["a", "b", "b", "a"]
    # a: P 1/2 R 1/2 F 0.5; b: P 1/2 R 1 F 2/3; c: F 0.
    assert macro_f1(truth, predicted) == pytest.approx((0.5 + 2 / 3 + 0.0) / 3)
    assert macro_f1([], []) is None


def test_quality_is_split_by_the_version_that_predicted() -> None:
    result = live_quality(
        [_c("urgent", "urgent"), _c("urgent", "normal"), _c("low", "low", "v2")],
        ["low", "normal", "urgent"],
        ["urgent"],
    )
    assert result["overall"]["tickets"] == 3
    assert result["versions"]["v1"]["agreement"] == 0.5
    assert result["versions"]["v1"]["urgent_recall"] == 0.5
    assert result["versions"]["v2"]["urgent_recall"] is None
    assert result["versions"]["v2"]["macro_f1"] == 1.0

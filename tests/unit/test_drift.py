"""Drift features, profiles and the population stability index."""

from __future__ import annotations

import math

import pytest

from core.drift import OTHER, Profile, Reference, drift, psi, ticket_features

ENRICHMENT = {"priority": {"label": "urgent", "band": "medium"}, "language": {"code": "en"}}


def test_features_describe_length_language_words_fields_and_prediction() -> None:
    features = ticket_features(
        {
            "subject": "Disk full",
            "description": "The disk is full",
            "custom_fields": {"product": "DB"},
        },
        ENRICHMENT,
        vocabulary=frozenset({"disk"}),
        fields=("product", "plan"),
        field_values={"product": frozenset({"web"})},
    )
    assert features["text_length"] == ["0-99"]
    assert features["language"] == ["en"]
    assert sorted(features["vocabulary"]) == [OTHER, OTHER, OTHER, "disk"]
    assert features["field:product"] == [OTHER]
    assert features["field:plan"] == ["(none)"]
    assert features["priority"] == ["urgent"] and features["band"] == ["medium"]


def test_psi_is_zero_for_equal_distributions_and_grows_with_the_shift() -> None:
    same = {"a": 0.5, "b": 0.5}
    assert psi(same, same) == 0.0
    small, large = psi(same, {"a": 0.6, "b": 0.4}), psi(same, {"a": 0.9, "b": 0.1})
    assert 0 < small < large
    assert small == pytest.approx(0.1 * math.log(0.6 / 0.5) + (-0.1) * math.log(0.4 / 0.5))


def test_a_value_new_to_traffic_gives_a_finite_alert() -> None:
    value = psi({"en": 1.0}, {"en": 0.5, "de": 0.5})
    assert math.isfinite(value) and value > 0.25


def _reference() -> Reference:
    inputs, predictions = Profile(), Profile()
    for _ in range(90):
        inputs.add({"language": ["en"]})
        predictions.add({"priority": ["normal"]})
    for _ in range(10):
        inputs.add({"language": ["de"]})
        predictions.add({"priority": ["urgent"]})
    return Reference(inputs, predictions, frozenset(), (), {})


def test_drift_flags_only_the_features_that_moved() -> None:
    current = Profile()
    for i in range(100):
        current.add(
            {"language": ["en" if i < 90 else "de"], "priority": ["urgent" if i < 60 else "normal"]}
        )
    report = {d.feature: d for d in drift(_reference(), current, threshold=0.25)}
    assert report["language"].psi == pytest.approx(0.0) and not report["language"].alert
    assert report["priority"].alert
    assert report["priority"].movers[0][0] in {"urgent", "normal"}


def test_a_reference_survives_its_json_round_trip() -> None:
    reference = _reference()
    again = Reference.from_dict(reference.to_dict())
    assert again.inputs.shares("language") == reference.inputs.shares("language")
    assert again.predictions.tickets == 100

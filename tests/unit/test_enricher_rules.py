"""The enrichment applies the artifact's (or a given) rules file and says when a rule fired."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from core.enricher import EnrichOptions, load_enricher
from core.errors import InvalidRules
from core.rules import RULES_FORMAT, save_rules

TICKET = {"subject": "question about the printer", "description": "The printer is on fire."}


def _rules(tmp_path: Path, rules: list[dict[str, Any]]) -> Path:
    path = tmp_path / "rules.json"
    spec = {"format": RULES_FORMAT, "version": "1", "order": ["normal", "urgent"], "rules": rules}
    path.write_text(json.dumps(spec))
    return path


def test_a_fired_rule_sets_the_label_and_keeps_the_model_visible(
    small_model_dir: Path, tmp_path: Path
) -> None:
    plain = load_enricher(small_model_dir).enrich(TICKET)["enrichment"]
    assert plain["priority"]["label"] == "normal"
    path = _rules(tmp_path, [{"name": "fire", "minimum": "urgent", "phrases": ["on fire"]}])
    enrichment = load_enricher(small_model_dir, rules=path).enrich(TICKET)["enrichment"]
    priority = enrichment["priority"]
    assert priority["label"] == "urgent"
    assert priority["rules"] == ["fire"]
    assert priority["model_prediction"]["label"] == "normal"
    assert priority["probabilities"] == plain["priority"]["probabilities"]
    assert priority["confidence"] == plain["priority"]["probabilities"]["urgent"]
    assert enrichment["explanation"][0] == {"rule": "fire", "term": "on fire"}
    assert enrichment["needs_review"] is priority["needs_review"]


def test_rules_switched_off_or_not_matching_change_nothing(
    small_model_dir: Path, tmp_path: Path
) -> None:
    path = _rules(tmp_path, [{"name": "fire", "minimum": "urgent", "phrases": ["on fire"]}])
    plain = load_enricher(small_model_dir).enrich(TICKET)["enrichment"]["priority"]
    off = load_enricher(small_model_dir, rules=path, options=EnrichOptions(rules=False))
    assert off.enrich(TICKET)["enrichment"]["priority"] == plain
    quiet = load_enricher(small_model_dir, rules=path).enrich({"subject": "printer is fine"})
    assert "rules" not in quiet["enrichment"]["priority"]


def test_an_invalid_rules_file_stops_loading_naming_the_rule(
    small_model_dir: Path, tmp_path: Path
) -> None:
    path = _rules(tmp_path, [{"name": "low_floor", "minimum": "low", "phrases": ["x"]}])
    with pytest.raises(InvalidRules, match="low_floor"):
        load_enricher(small_model_dir, rules=path)


def test_an_artifact_without_decisions_or_per_class_bands_loads_as_before(
    small_model_dir: Path, tmp_path: Path
) -> None:
    old = tmp_path / "old"
    shutil.copytree(small_model_dir, old)
    model = json.loads((old / "model.json").read_text())
    target = model["targets"]["priority"]
    assert "class_bands" in target
    for key in ("class_bands", "decision", "default"):
        target.pop(key, None)
    raw = json.dumps(model).encode()
    (old / "model.json").write_bytes(raw)
    checksums = json.loads((old / "checksums.json").read_text())
    checksums["model.json"] = hashlib.sha256(raw).hexdigest()
    (old / "checksums.json").write_text(json.dumps(checksums))
    enricher = load_enricher(old, self_check=False)
    for subject in ("outage in cluster 1", "slow configuration", "question"):
        p = enricher.enrich({"subject": subject})["enrichment"]["priority"]
        assert p["label"] == max(p["probabilities"], key=p["probabilities"].get)
        high = enricher.metadata["bands"]["high"]
        assert (p["band"] == "high") == (p["confidence"] >= high)


def test_saved_rules_travel_in_the_artifact_and_bad_ones_leave_it_unchanged(
    small_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.settings import Settings

    model = tmp_path / "model"
    shutil.copytree(small_model_dir, model)
    spec = json.loads(
        _rules(
            tmp_path, [{"name": "fire", "minimum": "urgent", "phrases": ["on fire"]}]
        ).read_text()
    )
    save_rules(model, spec)
    assert load_enricher(model).enrich(TICKET)["enrichment"]["priority"]["rules"] == ["fire"]
    before = (model / "rules.json").read_bytes()
    bad = spec | {"rules": [{"name": "fire", "minimum": "critical", "phrases": ["x"]}]}
    with pytest.raises(InvalidRules, match="'fire'"):
        save_rules(model, bad)
    assert (model / "rules.json").read_bytes() == before
    load_enricher(model)  # checksums still hold
    monkeypatch.setenv("TICKET_ENRICH_ENRICH_RULES", "false")
    off = load_enricher(model, options=Settings().enrich_options).enrich(TICKET)
    assert "rules" not in off["enrichment"]["priority"]

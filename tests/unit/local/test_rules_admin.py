"""The rules source the local service gives its enricher follows a promotion: the hot swap of
the served model keeps the admin's rules in force, unless the promoted model ships newer ones."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from adapters.local.retrain_admin import swap_served_model
from core import load_enricher
from core.rules import RULES_FORMAT, save_rules
from core.rules_source import MODEL_RULES, ReloadingRules, RulesDirectory

TICKET = {"subject": "a zebra stampede and a llama parade", "description": "please help"}
ZEBRA = {"name": "zebra", "minimum": "urgent", "phrases": ["zebra stampede"]}
LLAMA = {"name": "llama", "minimum": "urgent", "phrases": ["llama parade"]}


def _spec(rule: dict[str, Any], version: str = "1") -> dict[str, Any]:
    return {
        "format": RULES_FORMAT,
        "version": version,
        "order": ["normal", "urgent"],
        "rules": [rule],
    }


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _model(small_model_dir: Path, where: Path, version: str) -> Path:
    shutil.copytree(small_model_dir, where)
    save_rules(where, _spec(LLAMA, version))
    return where


def _fired(enrichment: dict[str, Any]) -> list[str]:
    return list(enrichment["enrichment"]["priority"].get("rules", []))


def test_a_promotion_keeps_the_admins_rules_unless_the_new_model_ships_newer_ones(
    small_model_dir: Path, tmp_path: Path
) -> None:
    served = load_enricher(_model(small_model_dir, tmp_path / "champion", "2026-12-04.1"))
    clock = Clock()
    source = ReloadingRules(
        RulesDirectory(tmp_path / "rules"), lambda: served.artifact, clock=clock
    )
    served.rules_source = source
    assert _fired(served.enrich(TICKET)) == ["llama"]
    source.save(_spec(ZEBRA), by="ann", by_kind="agent")
    assert _fired(served.enrich(TICKET)) == ["zebra"]

    same = load_enricher(_model(small_model_dir, tmp_path / "same", "2026-12-04.1"))
    swap_served_model(served, same)
    clock.now += 1.0
    assert _fired(served.enrich(TICKET)) == ["zebra"]
    assert source.state.version == 1

    newer = load_enricher(_model(small_model_dir, tmp_path / "newer", "2027-02-01.1"))
    swap_served_model(served, newer)
    clock.now += 1.0
    assert _fired(served.enrich(TICKET)) == ["llama"]
    assert source.state.version == MODEL_RULES

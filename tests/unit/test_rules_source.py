"""Rules an admin edits while the service runs: versioned files never overwritten, the audit,
validation naming the rule, reload from disk at most once per interval, refusal of an invalid
file with the previous rules kept, restore, and the carry-over to another served model."""

from __future__ import annotations

import json
import logging
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from core.artifact import Artifact, read_artifact
from core.enricher import load_enricher
from core.errors import InvalidRules
from core.rules import RULES_FORMAT, rules_changes, rules_version_key, save_rules
from core.rules_source import AUDIT_FILE, MODEL_RULES, ReloadingRules, RulesDirectory

TICKET = {"subject": "a zebra stampede in the data centre", "description": "please help"}


def _spec(*rules: dict[str, Any], version: str = "1", **extra: Any) -> dict[str, Any]:
    return {
        "format": RULES_FORMAT,
        "version": version,
        "order": ["normal", "urgent"],
        "rules": list(rules),
        **extra,
    }


ZEBRA = {"name": "zebra", "minimum": "urgent", "phrases": ["zebra stampede"]}
LLAMA = {"name": "llama", "minimum": "urgent", "phrases": ["llama parade"]}


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def artifact(small_model_dir: Path) -> Artifact:
    return read_artifact(small_model_dir)


@pytest.fixture
def directory(tmp_path: Path) -> RulesDirectory:
    return RulesDirectory(tmp_path / "registry" / "rules")


def _source(directory: RulesDirectory, artifact: Artifact, clock: Clock) -> ReloadingRules:
    return ReloadingRules(directory, lambda: artifact, clock=clock)


def test_without_edits_the_models_own_rules_are_in_force_and_nothing_is_written(
    directory: RulesDirectory, artifact: Artifact
) -> None:
    source = _source(directory, artifact, Clock())
    assert source.state.version == MODEL_RULES
    assert source.current() is None  # the small model ships no rules
    assert not directory.root.exists()


def test_a_saved_version_is_in_force_at_once_and_audited(
    directory: RulesDirectory, artifact: Artifact
) -> None:
    source = _source(directory, artifact, Clock())
    first = source.save(_spec(ZEBRA), by="ann", by_kind="agent")
    assert first.version == 1
    rules = source.current()
    assert rules is not None and [r.name for r in rules.rules] == ["zebra"]
    written = directory.path(1).read_bytes()

    second = source.save(_spec(LLAMA, {**ZEBRA, "phrases": ["zebras"]}), by="api", by_kind="api")
    assert second.version == 2
    # Never overwritten: the first version's file is as it was.
    assert directory.path(1).read_bytes() == written
    assert json.loads(directory.path(2).read_text())["version"] == "edited.2"
    audit = [json.loads(line) for line in (directory.root / AUDIT_FILE).read_text().splitlines()]
    assert [(e["version"], e["by"], e["previous"]) for e in audit] == [
        (1, "ann", 0),
        (2, "api", 1),
    ]
    assert audit[0]["changes"]["added"] == ["zebra"]
    assert audit[1]["changes"] == {
        "added": ["llama"],
        "removed": [],
        "changed": ["zebra"],
        "settings": [],
    }


@pytest.mark.parametrize(
    ("bad", "rule"),
    [
        ({"name": "broken", "minimum": "urgent", "patterns": ["(unclosed"]}, "broken"),
        ({"name": "strange", "minimum": "critical", "phrases": ["x"]}, "strange"),
        (ZEBRA, "zebra"),  # the name used twice
        # Each pattern compiles alone, not as the matching combines them.
        ({"name": "flags", "minimum": "urgent", "patterns": ["(?i)zebra"]}, "flags"),
        ({"name": "twice", "minimum": "urgent", "patterns": ["(?P<a>x)", "(?P<a>y)"]}, "twice"),
        ({"name": "unless", "minimum": "urgent", "phrases": ["x"], "unless": ["(?s)y"]}, "unless"),
    ],
)
def test_an_invalid_document_is_refused_naming_the_rule_and_nothing_changes(
    directory: RulesDirectory, artifact: Artifact, bad: dict[str, Any], rule: str
) -> None:
    source = _source(directory, artifact, Clock())
    source.save(_spec(ZEBRA), by="ann", by_kind="agent")
    with pytest.raises(InvalidRules) as refused:
        source.save(_spec(ZEBRA, bad), by="ann", by_kind="agent")
    assert refused.value.rule == rule
    assert rule in str(refused.value)
    assert directory.versions() == [1]
    assert len(directory.audit()) == 1
    assert source.state.version == 1


def test_a_version_written_by_another_process_is_picked_up_after_the_interval(
    directory: RulesDirectory, artifact: Artifact
) -> None:
    clock = Clock()
    serving = _source(directory, artifact, clock)
    other = _source(RulesDirectory(directory.root), artifact, Clock())
    other.save(_spec(LLAMA), by="bob", by_kind="agent")
    # Within the interval the file system is not looked at again.
    assert serving.current() is None
    clock.now += 1.0
    rules = serving.current()
    assert rules is not None and [r.name for r in rules.rules] == ["llama"]
    assert serving.state.version == 1


def test_an_invalid_file_on_disk_is_refused_and_the_previous_rules_stay(
    directory: RulesDirectory, artifact: Artifact, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    source = _source(directory, artifact, clock)
    source.save(_spec(ZEBRA), by="ann", by_kind="agent")
    bad = _spec({"name": "typo", "minimum": "urgent", "patterns": ["[a-"]})
    directory.path(2).write_text(json.dumps(bad))
    clock.now += 1.0
    with caplog.at_level(logging.WARNING, logger="core.rules_source"):
        rules = source.current()
    assert rules is not None and [r.name for r in rules.rules] == ["zebra"]
    assert source.state.version == 1
    assert source.refused is not None
    assert (source.refused.version, source.refused.rule) == (2, "typo")
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1 and refusals[0].__dict__["rule"] == "typo"
    assert "rules-000002.json" in refusals[0].getMessage()
    assert "'typo'" in refusals[0].getMessage()

    # Looked at again later, the same refusal is not logged again.
    clock.now += 1.0
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="core.rules_source"):
        source.current()
    assert not [r for r in caplog.records if "refused" in r.getMessage()]

    # Fixed on disk, it is in force at the next look.
    directory.path(2).write_text(json.dumps(_spec(LLAMA, ZEBRA)))
    clock.now += 1.0
    rules = source.current()
    assert rules is not None and [r.name for r in rules.rules] == ["llama", "zebra"]
    assert source.refused is None


def test_the_file_in_force_edited_in_place_into_an_invalid_one_keeps_the_rules_read_before(
    directory: RulesDirectory, artifact: Artifact
) -> None:
    clock = Clock()
    source = _source(directory, artifact, clock)
    source.save(_spec(ZEBRA), by="ann", by_kind="agent")
    directory.path(1).write_text(json.dumps(_spec(ZEBRA, ZEBRA)))
    clock.now += 1.0
    rules = source.current()
    assert rules is not None and [r.name for r in rules.rules] == ["zebra"]
    assert source.refused is not None and source.refused.rule == "zebra"


def test_a_service_starting_with_an_invalid_newest_file_uses_the_newest_valid_one(
    directory: RulesDirectory, artifact: Artifact
) -> None:
    _source(directory, artifact, Clock()).save(_spec(ZEBRA), by="ann", by_kind="agent")
    directory.path(2).write_text("{not json")
    source = _source(directory, artifact, Clock())
    assert source.state.version == 1
    assert source.refused is not None and source.refused.version == 2


def test_restore_writes_the_earlier_version_again_as_the_newest(
    directory: RulesDirectory, artifact: Artifact
) -> None:
    source = _source(directory, artifact, Clock())
    source.save(_spec(ZEBRA), by="ann", by_kind="agent")
    source.save(_spec(LLAMA), by="ann", by_kind="agent")
    restored = source.restore(1, by="bob", by_kind="agent")
    assert restored.version == 3
    rules = source.current()
    assert rules is not None and [r.name for r in rules.rules] == ["zebra"]
    history = source.history()
    assert [item["version"] for item in history] == [3, 2, 1, 0]
    assert history[0]["action"] == "restore" and history[0]["restored_from"] == 1
    assert history[0]["previous"] == 2 and history[0]["in_force"]
    assert history[0]["changes"]["added"] == ["zebra"]
    assert history[0]["changes"]["removed"] == ["llama"]
    # The small model ships no rules: there is nothing to go back to as version 0.
    with pytest.raises(InvalidRules):
        source.restore(MODEL_RULES, by="bob", by_kind="agent")
    with pytest.raises(InvalidRules):
        source.restore(9, by="bob", by_kind="agent")


def _with_rules(small_model_dir: Path, where: Path, version: str) -> Artifact:
    shutil.copytree(small_model_dir, where)
    save_rules(where, _spec(LLAMA, version=version))
    return read_artifact(where)


def test_edits_carry_over_to_another_model_unless_it_ships_newer_rules(
    small_model_dir: Path, tmp_path: Path, directory: RulesDirectory
) -> None:
    served = {"artifact": _with_rules(small_model_dir, tmp_path / "a", "2026-12-04.1")}
    clock = Clock()
    source = ReloadingRules(directory, lambda: served["artifact"], clock=clock)
    assert source.state.version == MODEL_RULES
    assert [r.name for r in source.current().rules] == ["llama"]  # type: ignore[union-attr]
    source.save(_spec(ZEBRA), by="ann", by_kind="agent")
    assert directory.entry(1)["model_rules"] == "2026-12-04.1"  # type: ignore[index]

    # A promoted model with the same shipped rules: the edit stays in force.
    served["artifact"] = _with_rules(small_model_dir, tmp_path / "b", "2026-12-04.1")
    clock.now += 1.0
    assert [r.name for r in source.current().rules] == ["zebra"]  # type: ignore[union-attr]
    assert source.state.version == 1

    # A model shipping newer rules: its own are in force, and the edit can be restored.
    served["artifact"] = _with_rules(small_model_dir, tmp_path / "c", "2027-01-15.1")
    clock.now += 1.0
    assert [r.name for r in source.current().rules] == ["llama"]  # type: ignore[union-attr]
    assert source.state.version == MODEL_RULES
    assert "2027-01-15.1" in source.state.reason
    source.restore(1, by="ann", by_kind="agent")
    assert [r.name for r in source.current().rules] == ["zebra"]  # type: ignore[union-attr]


def test_the_enricher_takes_each_ticket_s_rules_from_its_source(
    small_model_dir: Path, directory: RulesDirectory
) -> None:
    enricher = load_enricher(small_model_dir)
    source = ReloadingRules(directory, lambda: enricher.artifact, clock=Clock())
    enricher.rules_source = source
    plain = enricher.enrich(TICKET)["enrichment"]
    assert "rules" not in plain["priority"]
    source.save(_spec(ZEBRA), by="ann", by_kind="agent")
    ruled = enricher.enrich(TICKET)["enrichment"]
    assert ruled["priority"]["label"] == "urgent"
    assert ruled["priority"]["rules"] == ["zebra"]
    assert ruled["explanation"][0] == {"rule": "zebra", "term": "zebra stampede"}


def test_tickets_enriched_while_the_rules_are_swapped_each_see_one_whole_rule_set(
    small_model_dir: Path, directory: RulesDirectory
) -> None:
    enricher = load_enricher(small_model_dir)
    source = ReloadingRules(directory, lambda: enricher.artifact, interval_s=0.0)
    enricher.rules_source = source
    # A rule set whose order lacks "urgent" and one with it: a ticket matched by one and
    # decided by the other would fail.
    sets = [
        _spec({"name": "zebra", "label": "normal", "phrases": ["zebra stampede"]}, order=None),
        _spec(ZEBRA),
    ]
    sets[0].pop("order")
    failures: list[BaseException] = []
    seen: set[str] = set()
    stop = threading.Event()

    def enrich() -> None:
        try:
            while not stop.is_set():
                seen.add(enricher.enrich(TICKET)["enrichment"]["priority"]["label"])
        except BaseException as exc:  # the test reports any failure
            failures.append(exc)

    workers = [threading.Thread(target=enrich) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        for i in range(40):
            source.save(sets[i % 2], by="ann", by_kind="agent")
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert failures == []
    assert seen <= {"normal", "urgent"}


def test_rules_changes_names_what_changed() -> None:
    before = _spec(ZEBRA, LLAMA, calm=["no rush"])
    after = _spec(
        {**ZEBRA, "phrases": ["zebras"]}, {"name": "emu", "label": "normal", "phrases": ["emu"]}
    )
    assert rules_changes(before, after) == {
        "added": ["emu"],
        "removed": ["llama"],
        "changed": ["zebra"],
        "settings": ["calm"],
    }
    assert rules_changes(None, after)["added"] == ["zebra", "emu"]


def test_rules_versions_compare_as_numbers() -> None:
    assert rules_version_key("2026-12-10.1") > rules_version_key("2026-12-04.12")
    assert rules_version_key("2026-12-04.2") > rules_version_key("2026-12-04.1")


def test_a_file_that_breaks_the_reader_is_refused_like_any_invalid_one(
    directory: RulesDirectory, artifact: Artifact
) -> None:
    clock = Clock()
    source = _source(directory, artifact, clock)
    source.save(_spec(ZEBRA), by="ann", by_kind="agent")
    # Labels that are lists cannot even be compared as a set.
    directory.path(2).write_text(json.dumps({**_spec(ZEBRA), "order": [["normal"], ["urgent"]]}))
    clock.now += 1.0
    rules = source.current()
    assert rules is not None and [r.name for r in rules.rules] == ["zebra"]
    assert source.refused is not None and source.refused.version == 2
    with pytest.raises(InvalidRules):
        source.save({**_spec(ZEBRA), "order": [["normal"]]}, by="ann", by_kind="agent")


class _WrittenWhileRead(RulesDirectory):
    """A directory to which another process writes a version while this one reads it."""

    pending: dict[str, Any] | None = None

    def audit(self) -> list[dict[str, Any]]:
        found = super().audit()
        if self.pending is not None:
            self.path(max(self.versions()) + 1).write_text(json.dumps(self.pending))
            self.pending = None
        return found


def test_a_version_written_while_the_files_are_read_is_read_at_the_next_look(
    tmp_path: Path, artifact: Artifact
) -> None:
    directory = _WrittenWhileRead(tmp_path / "rules")
    clock = Clock()
    source = _source(directory, artifact, clock)
    source.save(_spec(ZEBRA), by="ann", by_kind="agent")
    directory.path(2).write_text(json.dumps(_spec(LLAMA)))
    directory.pending = _spec(ZEBRA, LLAMA)
    clock.now += 1.0
    assert [r.name for r in source.current().rules] == ["llama"]  # type: ignore[union-attr]
    assert directory.versions() == [1, 2, 3]
    clock.now += 1.0
    assert [r.name for r in source.current().rules] == ["zebra", "llama"]  # type: ignore[union-attr]

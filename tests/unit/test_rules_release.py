"""A model released with other priority rules (`core.rules_release`, `ticket-enrich rules`): a
new version that loads and applies them, says where it came from, and leaves the model it was
made from as it was; rules files checked as the service checks them."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from adapters.local.cli import main
from core.artifact import read_artifact
from core.enricher import load_enricher
from core.errors import ArtifactError, InvalidRules
from core.rules import RULES_FORMAT, save_rules
from core.rules_release import release_rules, released_version

ZEBRA = {"name": "zebra", "minimum": "urgent", "phrases": ["zebra stampede"], "unless": ["drill"]}
SEVERITY = {"name": "sev", "minimum": "urgent", "fields": {"severity": ["sev1"]}}
ZEBRA_TICKET = {"subject": "zebra stampede in the data centre", "description": "please help"}


def _spec(*rules: dict[str, Any], version: str = "mine.1") -> dict[str, Any]:
    return {
        "format": RULES_FORMAT,
        "version": version,
        "order": ["normal", "urgent"],
        "rules": list(rules),
    }


def _files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_a_release_is_a_new_version_that_fires_the_rules_and_says_where_it_came_from(
    small_model_dir: Path, tmp_path: Path
) -> None:
    before = _files(small_model_dir)
    parent = read_artifact(small_model_dir)
    assert (
        "rules" not in load_enricher(small_model_dir).enrich(ZEBRA_TICKET)["enrichment"]["priority"]
    )

    released = release_rules(
        small_model_dir, _spec(ZEBRA, SEVERITY), tmp_path / "out", by="boss", source="edited.3"
    )

    assert released.path == tmp_path / "out"
    assert released.version.startswith(parent.metadata["version"] + "-rules-")
    enricher = load_enricher(released.path)  # checksums verified, samples re-checked
    assert enricher.model_version == released.version
    priority = enricher.enrich(ZEBRA_TICKET)["enrichment"]["priority"]
    assert (priority["label"], priority["rules"]) == ("urgent", ["zebra"])
    drill = enricher.enrich({**ZEBRA_TICKET, "description": "a zebra stampede drill"})
    assert "rules" not in drill["enrichment"]["priority"]

    metadata = json.loads((released.path / "metadata.json").read_text())
    checksums = (small_model_dir / "checksums.json").read_bytes()
    assert metadata["parent"] == {
        "version": parent.metadata["version"],
        "trained": parent.metadata["version"],
        "checksums_sha256": hashlib.sha256(checksums).hexdigest(),
    }
    rules = metadata["rules"]
    assert (rules["version"], rules["names"], rules["released_by"]) == (
        "mine.1",
        ["zebra", "sev"],
        "boss",
    )
    assert rules["source"] == "edited.3" and rules["released_at"] == metadata["created_at"]
    document = (released.path / "rules.json").read_bytes()
    assert rules["sha256"] == hashlib.sha256(document).hexdigest()
    # The same model: its training data, metrics and every other file are the parent's.
    for key in ("training_data", "metrics", "labels", "targets"):
        assert metadata[key] == parent.metadata[key]
    new = read_artifact(released.path)
    assert set(new.checksums) == set(parent.checksums) | {"rules.json"}
    for name in parent.checksums:
        if name != "metadata.json":
            assert new.checksums[name] == parent.checksums[name], name
    assert (released.path / "report").is_dir()

    assert _files(small_model_dir) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging directory left


def test_the_version_is_the_same_for_the_same_rules_and_a_release_of_a_release_names_the_model(
    small_model_dir: Path, tmp_path: Path
) -> None:
    first = release_rules(small_model_dir, _spec(ZEBRA), tmp_path / "a", by="boss")
    again = release_rules(small_model_dir, _spec(ZEBRA), tmp_path / "b", by="ann")
    other = release_rules(first.path, _spec(ZEBRA, SEVERITY), tmp_path / "c", by="boss")
    trained = read_artifact(small_model_dir).metadata["version"]

    assert first.version == again.version
    assert other.version == released_version(trained, other.rules)
    assert other.version.count("-rules-") == 1
    assert other.metadata["parent"]["version"] == first.version
    assert other.metadata["parent"]["trained"] == trained
    assert other.metadata["rules"]["parent_rules"] == "mine.1"
    with pytest.raises(ArtifactError, match="already ships these rules"):
        release_rules(first.path, _spec(ZEBRA), tmp_path / "d", by="boss")
    # A trained model that ships these rules itself (written by save_rules) needs no release.
    shutil.copytree(small_model_dir, tmp_path / "own")
    save_rules(tmp_path / "own", _spec(ZEBRA))
    with pytest.raises(ArtifactError, match="already ships these rules"):
        release_rules(tmp_path / "own", _spec(ZEBRA), tmp_path / "e", by="boss")
    assert not (tmp_path / "d").exists() and not (tmp_path / "e").exists()


def test_invalid_rules_or_an_existing_directory_are_refused_and_nothing_is_written(
    small_model_dir: Path, tmp_path: Path
) -> None:
    strange = {"name": "strange", "minimum": "critical", "phrases": ["x"]}
    with pytest.raises(InvalidRules, match="rule 'strange': unknown label 'critical'") as caught:
        release_rules(small_model_dir, _spec(strange), tmp_path / "out", by="boss")
    assert caught.value.rule == "strange"
    # Patterns that compile alone but not together are refused as a running service refuses them.
    clash = {"name": "clash", "minimum": "urgent", "patterns": ["(?P<x>a)", "(?P<x>b)"]}
    with pytest.raises(InvalidRules, match="rule 'clash'"):
        release_rules(small_model_dir, _spec(clash), tmp_path / "out", by="boss")
    assert list(tmp_path.iterdir()) == []

    (tmp_path / "taken").mkdir()
    with pytest.raises(ArtifactError, match="already exists"):
        release_rules(small_model_dir, _spec(ZEBRA), tmp_path / "taken", by="boss")
    assert list((tmp_path / "taken").iterdir()) == []


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["rules", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_rules_check_lists_each_rule_or_names_the_rule_at_fault(
    small_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_spec(ZEBRA, SEVERITY)))
    code, out, _ = _cli(capsys, "check", str(good), "--model", str(small_model_dir))
    assert code == 0
    assert out.splitlines() == [
        'zebra\tminimum urgent\tphrases "zebra stampede"; unless "drill"',
        'sev\tminimum urgent\tfield severity = "sev1"',
    ]

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_spec(ZEBRA, {**ZEBRA, "phrases": ["again"]})))
    code, out, err = _cli(capsys, "check", str(bad), "--model", str(small_model_dir))
    assert (code, out) == (2, "")
    assert err.strip() == "[ticket-enrich] error: rule 'zebra': the name is used twice"

    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    code, _, err = _cli(capsys, "check", str(broken), "--model", str(small_model_dir))
    assert code == 2 and "broken.json is not valid JSON" in err


def test_rules_check_defaults_to_the_served_model(
    small_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKET_ENRICH_MODEL_DIR", str(small_model_dir))
    # "low" is no label of the two-label model served here.
    low = tmp_path / "low.json"
    low.write_text(json.dumps({**_spec(ZEBRA), "order": ["low", "normal", "urgent"]}))
    code, _, err = _cli(capsys, "check", str(low))
    assert code == 2 and "order names unknown label(s) 'low'" in err

    monkeypatch.setenv("TICKET_ENRICH_MODEL_DIR", str(tmp_path / "nothing"))
    code, _, err = _cli(capsys, "check", str(low))
    assert code == 2 and "no model artifact" in err


def test_rules_release_from_the_command_line(
    small_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(_spec(ZEBRA)))
    out = tmp_path / "released"
    code, printed, err = _cli(
        capsys, "release", str(rules), "--model", str(small_model_dir), "--out", str(out)
    )
    assert code == 0, err
    answer = json.loads(printed)
    assert answer["path"] == str(out)
    assert answer["rules"]["source"] == str(rules.resolve())
    assert answer["rules"]["released_by"]  # the user running the command
    assert load_enricher(out).model_version == answer["version"]

    code, _, err = _cli(
        capsys, "release", str(rules), "--model", str(small_model_dir), "--out", str(out)
    )
    assert code == 2 and "already exists" in err

"""`ticket-enrich rules` as an operator runs it, beside the real local service: the rules an
admin put in force through the service's API are exported (the newest version that validates),
checked, and released in a new model version that applies them, the served model untouched."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from core.enricher import load_enricher
from core.rules import RULES_FORMAT
from tests.support import run_cli, serving

API_KEY = "k" * 32
ZEBRA = {"name": "zebra", "minimum": "urgent", "phrases": ["zebra stampede"]}
ZEBRA_TICKET = {"subject": "zebra stampede in the data centre", "description": "please help"}


@pytest.fixture
def settings(small_model_dir: Path, tmp_path: Path) -> dict[str, str]:
    return {
        "model_dir": str(small_model_dir),
        "models_dir": str(tmp_path / "models"),
        "database": str(tmp_path / "tickets.sqlite3"),
        "api_key": API_KEY,
    }


def _files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_rules_edited_on_the_service_are_exported_checked_and_released(
    settings: dict[str, str], small_model_dir: Path, tmp_path: Path
) -> None:
    model_files = _files(small_model_dir)
    with (
        serving(settings, tmp_path / "service.log") as url,
        httpx.Client(base_url=url, timeout=30, headers={"X-API-Key": API_KEY}) as api,
    ):
        put = api.put(
            "/rules",
            json={
                "format": RULES_FORMAT,
                "version": "mine",
                "order": ["normal", "urgent"],
                "rules": [ZEBRA],
            },
        )
        assert put.status_code == 200, put.text
        in_force = api.get("/rules").json()
    assert in_force["version"] == 1

    # An invalid file written by hand after the edit is not what the service applies.
    rules_dir = tmp_path / "models" / "registry" / "rules"
    broken = {**in_force["rules"], "rules": [{**ZEBRA, "minimum": "critical"}]}
    (rules_dir / "rules-000002.json").write_text(json.dumps(broken))

    exported = tmp_path / "exported.json"
    result = run_cli("rules", "export", "--out", str(exported), settings=settings)
    assert result.returncode == 0, result.stderr
    assert json.loads(exported.read_text()) == in_force["rules"]
    assert json.loads(exported.read_text())["version"] == "edited.1"
    assert "rules version 1 (edited, written by api" in result.stderr
    assert "rules-000002.json refused" in result.stderr

    to_stdout = run_cli("rules", "export", "--registry", str(rules_dir.parent), settings=settings)
    assert json.loads(to_stdout.stdout) == in_force["rules"]

    check = run_cli("rules", "check", str(exported), settings=settings)
    assert check.returncode == 0, check.stderr
    assert check.stdout.splitlines() == ['zebra\tminimum urgent\tphrases "zebra stampede"']
    refused = run_cli("rules", "check", str(rules_dir / "rules-000002.json"), settings=settings)
    assert refused.returncode == 2
    assert "rule 'zebra': unknown label 'critical'" in refused.stderr

    out = tmp_path / "released"
    release = run_cli(
        "rules",
        "release",
        str(exported),
        "--model",
        str(small_model_dir),
        "--out",
        str(out),
        "--by",
        "boss",
        settings=settings,
    )
    assert release.returncode == 0, release.stderr
    answer = json.loads(release.stdout)
    metadata = json.loads((out / "metadata.json").read_text())
    assert answer["version"] == metadata["version"] != in_force["model"]["version"]
    assert metadata["parent"]["version"] == in_force["model"]["version"]
    assert (metadata["rules"]["version"], metadata["rules"]["released_by"]) == ("edited.1", "boss")
    priority = load_enricher(out).enrich(ZEBRA_TICKET)["enrichment"]["priority"]
    assert (priority["label"], priority["rules"]) == ("urgent", ["zebra"])
    assert _files(small_model_dir) == model_files


def test_export_with_nothing_in_force_says_so(settings: dict[str, str], tmp_path: Path) -> None:
    result = run_cli("rules", "export", settings=settings)
    assert result.returncode == 2
    assert "no rules in force" in result.stderr and result.stdout == ""

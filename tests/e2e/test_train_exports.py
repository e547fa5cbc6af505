"""`ticket-enrich train --data EXPORT` on each helpdesk's own export, without a preset or column
options, as an operator runs it: the export is recognised, the terminal names the preset, and
the artifact records the rows and the spec it was read with."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.artifact import read_artifact
from tests.support import run_cli
from training.data import load_dataset, recognise_export

EXPORTS = Path(__file__).parents[1] / "corpus" / "exports"


@pytest.mark.parametrize(
    ("sample", "preset"),
    [
        ("jira.csv", "jira"),
        ("zendesk.csv", "zendesk-csv"),
        ("zendesk.json", "zendesk-json"),
        ("freshdesk.csv", "freshdesk-csv"),
        ("rt.tsv", "rt-tsv"),
    ],
)
def test_a_helpdesk_export_trains_without_flags(sample: str, preset: str, tmp_path: Path) -> None:
    out = tmp_path / "model"
    done = run_cli("train", "--data", str(EXPORTS / sample), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert f"reading it with preset {preset!r}" in done.stderr
    data = read_artifact(out).metadata["training_data"]
    _, spec = recognise_export(EXPORTS / sample)
    assert data["spec"] == spec.as_dict()
    assert data["rows"] == len(load_dataset(EXPORTS / sample, spec).examples)

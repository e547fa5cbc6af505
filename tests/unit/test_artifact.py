import json
import shutil
from pathlib import Path

import pytest

from core import load_enricher
from core.artifact import read_artifact, write_artifact
from core.errors import ArtifactError


@pytest.fixture
def artifact(small_model_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "artifact"
    shutil.copytree(small_model_dir, copy)
    return copy


def test_a_trained_artifact_loads_and_checks_itself(artifact: Path) -> None:
    enricher = load_enricher(artifact)
    assert enricher.model_name == "ticket-priority"
    assert enricher.custom_fields == ("product",)
    assert len(enricher.artifact.samples) >= 2


def test_a_modified_model_is_refused(artifact: Path) -> None:
    model = artifact / "model.json"
    model.write_text(model.read_text().replace('"temperature":', '"temperature": 2, "x":', 1))
    with pytest.raises(ArtifactError, match="does not match its checksum"):
        load_enricher(artifact)


def test_a_truncated_model_is_refused(artifact: Path) -> None:
    model = artifact / "model.json"
    model.write_bytes(model.read_bytes()[:100])
    with pytest.raises(ArtifactError, match="modified or truncated"):
        load_enricher(artifact)


@pytest.mark.parametrize(
    "name", ["checksums.json", "metadata.json", "samples.jsonl", "weights.bin", "model.json"]
)
def test_a_missing_file_is_refused(artifact: Path, name: str) -> None:
    (artifact / name).unlink()
    with pytest.raises(ArtifactError):
        load_enricher(artifact)


def test_no_artifact_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="ticket-enrich train"):
        load_enricher(tmp_path / "nothing")


def test_weights_that_disagree_with_the_recorded_samples_are_refused(artifact: Path) -> None:
    loaded = read_artifact(artifact)
    target = loaded.model["targets"]["priority"]
    target["intercept"] = [b + 20.0 * i for i, b in enumerate(target["intercept"])]
    # Re-written with fresh checksums: only the self-check can notice.
    write_artifact(artifact, loaded.model, loaded.weights, loaded.metadata, loaded.samples)
    with pytest.raises(ArtifactError, match="self-check failed"):
        load_enricher(artifact)
    load_enricher(artifact, self_check=False)


def test_an_unknown_format_is_refused(artifact: Path) -> None:
    loaded = read_artifact(artifact)
    loaded.model["format"] = "something-else@9"
    write_artifact(artifact, loaded.model, loaded.weights, loaded.metadata, loaded.samples)
    with pytest.raises(ArtifactError, match="retrain"):
        load_enricher(artifact)


def test_the_artifact_holds_no_pickle(artifact: Path) -> None:
    for path in artifact.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".jsonl"):
            json.loads(
                path.read_text().splitlines()[0] if path.suffix == ".jsonl" else path.read_text()
            )
    assert not list(artifact.rglob("*.pkl")) and not list(artifact.rglob("*.joblib"))


def test_a_truncated_weights_file_is_refused(artifact: Path) -> None:
    weights = artifact / "weights.bin"
    weights.write_bytes(weights.read_bytes()[:-8])
    with pytest.raises(ArtifactError, match="weights.bin does not match its checksum"):
        load_enricher(artifact)

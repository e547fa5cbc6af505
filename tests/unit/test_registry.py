"""The local model registry: registration, promotion, archiving, rollback data, refusals."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from adapters.local.registry import DirectoryModelRegistry
from core.errors import ArtifactError, RegistryError


def test_register_promote_and_archive(small_model_dir: Path, tmp_path: Path) -> None:
    registry = DirectoryModelRegistry(tmp_path / "registry")
    first = registry.register(small_model_dir)
    assert first.stage == "candidate" and registry.production() is None
    assert registry.register(small_model_dir) == first  # registering again changes nothing

    registry.set_stage(first.version, "production", {"reason": "first"})
    assert registry.production() is not None
    assert registry.production().version == first.version  # type: ignore[union-attr]
    copy = registry.fetch(first.version)
    assert (copy / "weights.bin").read_bytes() == (small_model_dir / "weights.bin").read_bytes()

    # A second version (same artifact under another version) replaces it and archives it.
    other = tmp_path / "other"
    shutil.copytree(small_model_dir, other)
    _rename_version(other, "other-version")
    second = registry.register(other, parent=first.version)
    registry.set_stage(second.version, "production", {"reason": "better"})
    stages = {e.version: e.stage for e in registry.versions()}
    assert stages == {first.version: "archived", "other-version": "production"}
    assert registry.get("other-version").parent == first.version
    assert registry.get("other-version").decision == {"reason": "better"}


def test_unknown_versions_and_stages_are_refused(small_model_dir: Path, tmp_path: Path) -> None:
    registry = DirectoryModelRegistry(tmp_path)
    entry = registry.register(small_model_dir)
    with pytest.raises(RegistryError, match="no registered model version"):
        registry.set_stage("nope", "production")
    with pytest.raises(RegistryError, match="unknown stage"):
        registry.set_stage(entry.version, "live")


def test_a_tampered_artifact_is_refused_on_the_way_in(
    small_model_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(small_model_dir, broken)
    weights = broken / "weights.bin"
    weights.write_bytes(weights.read_bytes()[:-8])
    registry = DirectoryModelRegistry(tmp_path / "registry")
    with pytest.raises(ArtifactError):
        registry.register(broken)
    assert registry.versions() == []


def _rename_version(artifact: Path, version: str) -> None:
    """Give a copied artifact another version, re-signing it as training would."""
    import json

    from core.artifact import CHECKSUMS_FILE, METADATA_FILE, _sha256

    metadata = json.loads((artifact / METADATA_FILE).read_text())
    metadata["version"] = version
    raw = json.dumps(metadata, indent=2, sort_keys=True).encode() + b"\n"
    (artifact / METADATA_FILE).write_bytes(raw)
    checksums = json.loads((artifact / CHECKSUMS_FILE).read_text())
    checksums[METADATA_FILE] = _sha256(raw)
    (artifact / CHECKSUMS_FILE).write_text(json.dumps(checksums))


def test_a_version_that_is_not_a_plain_name_is_refused(
    small_model_dir: Path, tmp_path: Path
) -> None:
    crafted = tmp_path / "crafted"
    shutil.copytree(small_model_dir, crafted)
    _rename_version(crafted, "../outside")
    registry = DirectoryModelRegistry(tmp_path / "registry")
    with pytest.raises(RegistryError, match="cannot name a folder"):
        registry.register(crafted)
    assert not (tmp_path / "outside").exists()

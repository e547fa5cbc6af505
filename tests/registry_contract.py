"""One behavioural scenario that every remote `core.registry.ModelRegistry` must pass, run by
each cloud's integration tests against its local server.

Each test module hands `check_registry_contract` a function that makes a fresh, empty store
and returns a `RegistryStore`: a way to open registries on it, list its object names (relative
to the registry's root) and overwrite one object, as someone tampering with the bucket would.

Racing is made deterministic rather than left to thread timing: registry ``a`` reads the
index, then, just before ``a`` writes it back, registry ``b`` registers another version. With
working preconditions ``a``'s stale write is refused and retried on the fresh index; without
them ``b``'s entry is lost and the check fails. The implementations name their index I/O
`_read_index` / `_write_index`, which is what the check wraps.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.artifact import CHECKSUMS_FILE, METADATA_FILE, WEIGHTS_FILE, _sha256, read_artifact
from core.errors import ArtifactError, RegistryError
from core.registry import ModelRegistry


@dataclass(frozen=True)
class RegistryStore:
    """A fresh store under test: registries on it, its object names, a way to tamper."""

    open: Callable[[], ModelRegistry]
    names: Callable[[], set[str]]
    overwrite: Callable[[str, bytes], None]


def with_version(source: Path, dest: Path, version: str, **changes: Any) -> Path:
    """A copy of an artifact under another version (and other metadata ``changes``),
    re-signed as training would sign it."""
    shutil.copytree(source, dest)
    metadata = json.loads((dest / METADATA_FILE).read_text())
    metadata.update(version=version, **changes)
    raw = json.dumps(metadata, indent=2, sort_keys=True).encode() + b"\n"
    (dest / METADATA_FILE).write_bytes(raw)
    checksums = json.loads((dest / CHECKSUMS_FILE).read_text())
    checksums[METADATA_FILE] = _sha256(raw)
    (dest / CHECKSUMS_FILE).write_text(json.dumps(checksums))
    return dest


def _artifact_names(version: str, artifact: Path) -> set[str]:
    listed = json.loads((artifact / CHECKSUMS_FILE).read_text())
    return {f"{version}/{name}" for name in [*listed, CHECKSUMS_FILE]}


def _same_files(fetched: Path, artifact: Path) -> bool:
    """``fetched`` holds exactly the artifact's verified files (the training report beside
    them, which no checksum covers, is not the registry's to keep)."""
    names = [*json.loads((artifact / CHECKSUMS_FILE).read_text()), CHECKSUMS_FILE]
    return sorted(p.name for p in fetched.iterdir()) == sorted(names) and all(
        (fetched / n).read_bytes() == (artifact / n).read_bytes() for n in names
    )


def _race(a: Any, b: ModelRegistry, action: Callable[[], Any], meanwhile: Callable[[], Any]) -> int:
    """Run ``action`` on ``a``; ``meanwhile`` runs on ``b`` between ``a``'s first read of the
    index and its first write. Returns how many times ``a`` wrote (the refused write included)."""
    write = a._write_index
    writes = []

    def interleaved(*args: Any) -> Any:
        if not writes:
            meanwhile()
        writes.append(args)
        return write(*args)

    a._write_index = interleaved
    try:
        action()
    finally:
        del a._write_index
    return len(writes)


def check_registry_contract(
    new_store: Callable[[], RegistryStore], artifact: Path, workdir: Path
) -> None:
    """Register → promote → a second version promotes and archives the first → fetch verifies
    → unknown versions and stages refused → a tampered artifact refused with nothing visible →
    a crash between files and index leaves no entry → registries racing lose no entry."""
    store = new_store()
    registry = store.open()
    assert registry.versions() == [] and registry.production() is None

    # Register: a candidate, idempotent, files first and the index beside them.
    first = registry.register(artifact)
    version = first.version
    assert first.stage == "candidate" and registry.production() is None
    assert first.data_sha256 and first.metrics["test"]
    assert registry.register(artifact) == first
    assert store.names() == {"registry.json", *_artifact_names(version, artifact)}

    # Promote, then a second version replaces it and archives it.
    registry.set_stage(version, "production", {"reason": "first"})
    assert registry.production() == registry.get(version)
    assert registry.get(version).decision == {"reason": "first"}
    other = with_version(artifact, workdir / "other", "other-version")
    second = registry.register(other, parent=version)
    assert second.parent == version and second.stage == "candidate"
    registry.set_stage("other-version", "production", {"reason": "better"})
    reopened = store.open()  # another process sees the same registry
    assert [(e.version, e.stage) for e in reopened.versions()] == [
        (version, "archived"),
        ("other-version", "production"),
    ]
    assert reopened.get("other-version").decision == {"reason": "better"}
    assert reopened.get("other-version").parent == version
    assert reopened.production() == reopened.get("other-version")

    # Fetch: into dest or a fresh directory, verified; a tampered object is refused and
    # nothing unverified is left where it was asked for.
    fetched = reopened.fetch(version, workdir / "fetched")
    assert fetched == workdir / "fetched" and _same_files(fetched, artifact)
    read_artifact(fetched)
    elsewhere = reopened.fetch("other-version")
    assert _same_files(elsewhere, other)
    shutil.rmtree(elsewhere)
    weights = (other / WEIGHTS_FILE).read_bytes()
    store.overwrite(f"other-version/{WEIGHTS_FILE}", weights[:-8])
    with pytest.raises(ArtifactError, match="checksum"):
        reopened.fetch("other-version", workdir / "tampered-fetch")
    assert not (workdir / "tampered-fetch").exists()
    store.overwrite(f"other-version/{WEIGHTS_FILE}", weights)
    with pytest.raises(RegistryError, match="no registered model version"):
        reopened.fetch("nope", workdir / "nope")

    # Unknown versions and stages are refused, and change nothing.
    before = reopened.versions()
    with pytest.raises(RegistryError, match="unknown stage"):
        reopened.set_stage(version, "live")
    with pytest.raises(RegistryError, match="no registered model version"):
        reopened.set_stage("nope", "production")
    with pytest.raises(RegistryError, match="no registered model version"):
        reopened.get("nope")
    assert reopened.versions() == before

    # A tampered artifact is refused on the way in: no entry, not one object written.
    names = store.names()
    broken = with_version(artifact, workdir / "broken", "broken-version")
    (broken / WEIGHTS_FILE).write_bytes((broken / WEIGHTS_FILE).read_bytes()[:-8])
    with pytest.raises(ArtifactError):
        registry.register(broken)
    assert registry.versions() == before and store.names() == names

    # A crash after the files, before the index: no entry. The version's files are kept for
    # the retry, and no other artifact may claim that version.
    third = with_version(artifact, workdir / "third", "third-version")

    def crash(*args: Any) -> bool:
        raise RuntimeError("crashed before writing the index")

    crashing: Any = store.open()
    crashing._write_index = crash
    with pytest.raises(RuntimeError, match="crashed"):
        crashing.register(third)
    assert registry.versions() == before
    assert _artifact_names("third-version", third) <= store.names()
    with pytest.raises(RegistryError, match="no registered model version"):
        registry.get("third-version")
    impostor = with_version(artifact, workdir / "impostor", "third-version", name="impostor")
    with pytest.raises(RegistryError, match="another artifact"):
        registry.register(impostor)
    assert registry.register(third).version == "third-version"
    assert registry.fetch("third-version", workdir / "third-fetched").is_dir()

    # Two registries racing on the index lose no entry, whether it exists already...
    a, b = store.open(), store.open()
    fourth = with_version(artifact, workdir / "fourth", "fourth-version")
    fifth = with_version(artifact, workdir / "fifth", "fifth-version")
    writes = _race(a, b, lambda: a.register(fourth), lambda: b.register(fifth))
    assert writes == 2  # the stale write was refused, then retried on the fresh index
    assert {"fourth-version", "fifth-version"} <= {e.version for e in registry.versions()}
    writes = _race(
        a,
        b,
        lambda: a.set_stage("fourth-version", "production", {"reason": "race"}),
        lambda: b.set_stage("fifth-version", "archived", {"reason": "race"}),
    )
    assert writes == 2
    stages = {e.version: e.stage for e in registry.versions()}
    assert stages["fourth-version"] == "production" and stages["fifth-version"] == "archived"
    assert stages["other-version"] == "archived"
    assert [e.stage for e in registry.versions()].count("production") == 1

    # ...or both create it.
    empty = new_store()
    a, b = empty.open(), empty.open()
    writes = _race(a, b, lambda: a.register(fourth), lambda: b.register(fifth))
    assert writes == 2
    assert [e.version for e in empty.open().versions()] == ["fifth-version", "fourth-version"]

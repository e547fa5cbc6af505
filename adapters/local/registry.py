"""A model registry in a local directory: one folder per version plus `registry.json`.

Artifacts are copied in and verified on the way in and out; `registry.json` is rewritten
atomically under an exclusive lock, so two retraining jobs on one machine cannot lose each
other's entries.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.artifact import read_artifact
from core.errors import RegistryError
from core.registry import ModelVersion, apply_stage, entry_for

_INDEX = "registry.json"


class DirectoryModelRegistry:
    """`core.registry.ModelRegistry` in a directory on this machine."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @contextmanager
    def _locked(self) -> Iterator[list[ModelVersion]]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield self._read()

    def _read(self) -> list[ModelVersion]:
        try:
            data = json.loads((self.root / _INDEX).read_text())
        except FileNotFoundError:
            return []
        except ValueError as exc:
            raise RegistryError(f"{self.root / _INDEX} is not valid JSON: {exc}") from None
        return [ModelVersion.from_dict(e) for e in data["versions"]]

    def _write(self, entries: list[ModelVersion]) -> None:
        payload = json.dumps({"versions": [e.as_dict() for e in entries]}, indent=2) + "\n"
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".registry.")
        with os.fdopen(fd, "w") as handle:
            handle.write(payload)
        os.replace(tmp, self.root / _INDEX)

    def register(self, artifact_dir: Path, parent: str | None = None) -> ModelVersion:
        """Copy a verified artifact in as a candidate; a version already registered is
        returned as it is."""
        entry = entry_for(Path(artifact_dir), parent)
        with self._locked() as entries:
            for e in entries:
                if e.version == entry.version:
                    return e
            dest = self.root / entry.version
            if dest.exists():
                shutil.rmtree(dest)
            staging = Path(tempfile.mkdtemp(dir=self.root, prefix=".incoming."))
            try:
                shutil.copytree(artifact_dir, staging, dirs_exist_ok=True)
                read_artifact(staging)
                os.replace(staging, dest)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            self._write([*entries, entry])
        return entry

    def get(self, version: str) -> ModelVersion:
        """The entry of a version."""
        for e in self._read():
            if e.version == version:
                return e
        raise RegistryError(f"no registered model version {version!r}")

    def versions(self) -> list[ModelVersion]:
        """Every entry, oldest first."""
        return self._read()

    def production(self) -> ModelVersion | None:
        """The version in production, if any."""
        return next((e for e in self._read() if e.stage == "production"), None)

    def set_stage(
        self, version: str, stage: str, decision: Mapping[str, Any] | None = None
    ) -> ModelVersion:
        """Move a version to a stage; promoting archives the current production version."""
        with self._locked() as entries:
            updated, moved = apply_stage(entries, version, stage, decision)
            self._write(updated)
        return moved

    def fetch(self, version: str, dest: Path | None = None) -> Path:
        """The version's artifact directory (already local), verified."""
        self.get(version)
        path = self.root / version
        read_artifact(path)
        if dest is None:
            return path
        shutil.copytree(path, dest, dirs_exist_ok=True)
        return Path(dest)

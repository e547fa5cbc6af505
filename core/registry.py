"""The model registry port: every trained version with its lineage, metrics and stage.

A version is registered as a ``candidate``; promotion makes it ``production`` and archives the
version it replaces, so there is at most one production version; a rollback promotes the
archived parent again. Each entry records why it reached its stage (``decision``), so the
registry answers "why is this model serving?" without digging through logs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from core.artifact import read_artifact
from core.errors import RegistryError

STAGES = ("candidate", "production", "archived")
# A version names a folder or key prefix in every registry: no separators, no leading dot.
VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class ModelVersion:
    """One registered artifact: its version, stage, lineage and the figures it was judged on."""

    version: str
    stage: str
    registered_at: str
    name: str
    data_sha256: str
    data_rows: int
    parent: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    decision: dict[str, Any] | None = None
    stage_changed_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The entry as JSON."""
        return {
            "version": self.version,
            "stage": self.stage,
            "registered_at": self.registered_at,
            "stage_changed_at": self.stage_changed_at,
            "name": self.name,
            "data_sha256": self.data_sha256,
            "data_rows": self.data_rows,
            "parent": self.parent,
            "metrics": self.metrics,
            "decision": self.decision,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelVersion:
        """An entry from `as_dict`'s JSON."""
        return cls(
            version=str(data["version"]),
            stage=str(data["stage"]),
            registered_at=str(data["registered_at"]),
            name=str(data["name"]),
            data_sha256=str(data["data_sha256"]),
            data_rows=int(data["data_rows"]),
            parent=data.get("parent"),
            metrics=dict(data.get("metrics") or {}),
            decision=data.get("decision"),
            stage_changed_at=data.get("stage_changed_at"),
        )


class ModelRegistry(Protocol):
    """Keeps model artifacts by version, with their stage; one version at most in production."""

    def register(self, artifact_dir: Path, parent: str | None = None) -> ModelVersion:
        """Copy a verified artifact in as a candidate (registering a version again returns the
        existing entry)."""
        ...

    def get(self, version: str) -> ModelVersion:
        """The entry of a version, or `core.errors.RegistryError`."""
        ...

    def versions(self) -> list[ModelVersion]:
        """Every entry, oldest first."""
        ...

    def production(self) -> ModelVersion | None:
        """The version in production, if any."""
        ...

    def set_stage(
        self, version: str, stage: str, decision: Mapping[str, Any] | None = None
    ) -> ModelVersion:
        """Move a version to a stage, recording why; promoting archives the current
        production version."""
        ...

    def fetch(self, version: str, dest: Path | None = None) -> Path:
        """A local directory holding the version's artifact, verified (downloaded into
        ``dest`` by remote registries)."""
        ...


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def entry_for(artifact_dir: Path, parent: str | None) -> ModelVersion:
    """A candidate entry for a verified artifact, from its metadata."""
    metadata = read_artifact(artifact_dir).metadata
    if not VERSION_NAME.fullmatch(str(metadata.get("version", ""))):
        raise RegistryError(
            f"version {metadata.get('version')!r} cannot name a folder of the registry"
        )
    data = metadata.get("training_data", {})
    test = metadata.get("metrics", {}).get("test", {})
    return ModelVersion(
        version=str(metadata["version"]),
        stage="candidate",
        registered_at=_now(),
        name=str(metadata.get("name", "unknown")),
        data_sha256=str(data.get("sha256", "")),
        data_rows=int(data.get("rows", 0)),
        parent=parent,
        metrics={"test": test},
    )


def apply_stage(
    entries: list[ModelVersion], version: str, stage: str, decision: Mapping[str, Any] | None
) -> tuple[list[ModelVersion], ModelVersion]:
    """The entries after moving ``version`` to ``stage`` (archiving the production version it
    replaces), and the moved entry. Shared by every registry implementation."""
    if stage not in STAGES:
        raise RegistryError(f"unknown stage {stage!r}; one of {', '.join(STAGES)}")
    if not any(e.version == version for e in entries):
        raise RegistryError(f"no registered model version {version!r}")
    now = _now()
    result, moved = [], None
    for e in entries:
        if e.version == version:
            e = ModelVersion.from_dict(
                {
                    **e.as_dict(),
                    "stage": stage,
                    "stage_changed_at": now,
                    "decision": dict(decision) if decision is not None else e.decision,
                }
            )
            moved = e
        elif stage == "production" and e.stage == "production":
            e = ModelVersion.from_dict(
                {**e.as_dict(), "stage": "archived", "stage_changed_at": now}
            )
        result.append(e)
    assert moved is not None
    return result, moved

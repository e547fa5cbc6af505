"""The model registry port: every trained version with its lineage, metrics and stage.

A version is registered as a ``candidate``; promotion makes it ``production`` and archives the
version it replaces, so there is at most one production version; a rollback promotes the
archived parent again. Each entry records why it reached its stage (``decision``), so the
registry answers "why is this model serving?" without digging through logs.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from core.artifact import CHECKSUMS_FILE, read_artifact
from core.errors import ArtifactError, RegistryError

STAGES = ("candidate", "production", "archived")
# A version names a folder or key prefix in every registry: no separators, no leading dot.
VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# The index of an object-store registry, at its root.
INDEX_FILE = "registry.json"


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


def listed_files(checksums_raw: bytes, where: str) -> list[str]:
    """The file names an artifact's checksums.json lists, refusing any that would leave the
    version's folder (``where`` names the file in messages)."""
    try:
        checksums = json.loads(checksums_raw)
    except ValueError:
        raise ArtifactError(f"{where} is not valid JSON") from None
    if not isinstance(checksums, dict) or not checksums:
        raise ArtifactError(f"{where} lists no files")
    names = [str(n) for n in checksums]
    for name in names:
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise ArtifactError(f"{where} names an unsafe path {name!r}")
    return names


T = TypeVar("T")
IndexChange = Callable[[list[ModelVersion]], tuple[list[ModelVersion] | None, T]]


class ObjectStoreRegistry(ABC):
    """`ModelRegistry` over an object store (S3, Cloud Storage, Blob Storage).

    Layout: ``registry.json`` (the index, oldest entry first) and ``<version>/<file>`` for every
    file the version's ``checksums.json`` lists. Registering uploads the files, downloads them
    again and verifies them, and only then adds the entry, so a crash never leaves an entry
    without its files. The index is read with a concurrency token (an ETag, a generation) and
    written back only if it still holds, the change recomputed on a fresh copy otherwise, so two
    jobs registering or promoting at once do not lose each other's entries. Subclasses provide
    the store's primitives.
    """

    attempts = 8
    # The store SDK's own errors, which `_failing` turns into the product's.
    store_errors: tuple[type[Exception], ...] = ()
    # The concurrency token of an object that does not exist (S3 and Blob Storage: no ETag;
    # Cloud Storage: generation 0).
    absent: Any = None

    # The store's primitives; ``name`` is relative to the registry's root.

    @abstractmethod
    def _location(self, name: str) -> str:
        """Where ``name`` lives in the store, for messages."""

    @abstractmethod
    def _get_with_token(self, name: str) -> tuple[bytes | None, Any]:
        """An object and its concurrency token, read as one; ``(None, self.absent)`` when
        there is none. Raises `RegistryError`."""

    @abstractmethod
    def _put_if(self, name: str, data: bytes, token: Any) -> bool:
        """Write a JSON object if its token is still ``token`` (``self.absent``: create it
        only if there is none); False if it has another. Raises `RegistryError`."""

    @abstractmethod
    def _get(self, name: str) -> bytes:
        """An object's bytes. Raises `ArtifactError`."""

    @abstractmethod
    def _put_file(self, name: str, source: Path) -> None:
        """Upload a file as an object, replacing any. Raises `RegistryError`."""

    @abstractmethod
    def _get_file(self, name: str, dest: Path) -> None:
        """Download an object into a file, streaming. Raises `ArtifactError`."""

    @contextmanager
    def _failing(self, error: type[Exception], doing: str, name: str) -> Iterator[None]:
        """Raise ``error`` naming ``name`` for any of the store's errors inside."""
        try:
            yield
        except self.store_errors as exc:
            raise error(f"cannot {doing} {self._location(name)}: {exc}") from exc

    # The index and the artifact files, on those primitives.

    def _read_index(self) -> tuple[list[ModelVersion], Any]:
        """The entries and the index's concurrency token (``self.absent``: no index yet)."""
        raw, token = self._get_with_token(INDEX_FILE)
        if raw is None:
            return [], token
        try:
            entries = [ModelVersion.from_dict(e) for e in json.loads(raw)["versions"]]
        except (ValueError, KeyError, TypeError) as exc:
            where = self._location(INDEX_FILE)
            raise RegistryError(f"{where} is not a registry index: {exc}") from None
        return entries, token

    def _write_index(self, entries: list[ModelVersion], token: Any) -> bool:
        """Replace the index if it still has ``token``; False if another writer won."""
        payload = json.dumps({"versions": [e.as_dict() for e in entries]}, indent=2) + "\n"
        return self._put_if(INDEX_FILE, payload.encode(), token)

    def _upload(self, source: Path, version: str) -> None:
        """Put a verified artifact's files under the version, claiming the version first:
        its checksums.json is created only if absent, so a version's files are never
        replaced by another artifact's."""
        checksums_raw = (source / CHECKSUMS_FILE).read_bytes()
        names = listed_files(checksums_raw, str(source / CHECKSUMS_FILE))
        claim = f"{version}/{CHECKSUMS_FILE}"
        # An identical checksums.json is what an earlier attempt at this very artifact left.
        if not self._put_if(claim, checksums_raw, self.absent) and self._get(claim) != (
            checksums_raw
        ):
            raise RegistryError(
                f"{self._location(version)}/ already holds another artifact of version "
                f"{version!r}; a version names one artifact"
            )
        for name in names:
            self._put_file(f"{version}/{name}", source / name)

    def _download(self, version: str, dest: Path) -> None:
        """The files that the stored checksums.json lists, and it, into ``dest``."""
        claim = f"{version}/{CHECKSUMS_FILE}"
        checksums_raw = self._get(claim)
        for name in listed_files(checksums_raw, self._location(claim)):
            self._get_file(f"{version}/{name}", dest / name)
        (dest / CHECKSUMS_FILE).write_bytes(checksums_raw)

    def register(self, artifact_dir: Path, parent: str | None = None) -> ModelVersion:
        """Upload a verified artifact as a candidate; a version already registered is
        returned as it is."""
        source = Path(artifact_dir)
        version = str(read_artifact(source).metadata["version"])
        if not VERSION_NAME.fullmatch(version):
            raise RegistryError(f"version {version!r} cannot name a folder of the registry")
        existing = self._find(self._read_index()[0], version)
        if existing is not None:
            return existing
        self._upload(source, version)
        with tempfile.TemporaryDirectory(prefix="registry-check-") as tmp:
            self._download(version, Path(tmp))
            entry = entry_for(Path(tmp), parent)  # verifies what the store now holds

        def add(entries: list[ModelVersion]) -> tuple[list[ModelVersion] | None, ModelVersion]:
            found = self._find(entries, version)
            return (None, found) if found is not None else ([*entries, entry], entry)

        return self._update(add)

    def get(self, version: str) -> ModelVersion:
        """The entry of a version."""
        found = self._find(self._read_index()[0], version)
        if found is None:
            raise RegistryError(f"no registered model version {version!r}")
        return found

    def versions(self) -> list[ModelVersion]:
        """Every entry, oldest first."""
        return self._read_index()[0]

    def production(self) -> ModelVersion | None:
        """The version in production, if any."""
        return next((e for e in self._read_index()[0] if e.stage == "production"), None)

    def set_stage(
        self, version: str, stage: str, decision: Mapping[str, Any] | None = None
    ) -> ModelVersion:
        """Move a version to a stage; promoting archives the current production version."""
        return self._update(lambda entries: apply_stage(entries, version, stage, decision))

    def fetch(self, version: str, dest: Path | None = None) -> Path:
        """Download the version's artifact into ``dest`` (a new temporary directory when
        None), verified; nothing unverified is left in ``dest``."""
        self.get(version)
        if dest is None:
            target = Path(tempfile.mkdtemp(prefix=f"model-{version}-"))
            try:
                self._download(version, target)
                read_artifact(target)
            except BaseException:
                shutil.rmtree(target, ignore_errors=True)
                raise
            return target
        target = Path(dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=target.parent))
        try:
            self._download(version, staging)
            read_artifact(staging)
            if target.exists():
                shutil.copytree(staging, target, dirs_exist_ok=True)
            else:
                staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    @staticmethod
    def _find(entries: list[ModelVersion], version: str) -> ModelVersion | None:
        return next((e for e in entries if e.version == version), None)

    def _update(self, change: IndexChange[T]) -> T:
        """Apply ``change`` to the index, again on a fresh copy whenever another writer wins."""
        for attempt in range(self.attempts):
            entries, token = self._read_index()
            updated, result = change(entries)
            if updated is None or self._write_index(updated, token):
                return result
            time.sleep(random.uniform(0, 0.05 * 2**attempt))  # let the winner's burst pass
        raise RegistryError(
            f"{self._location(INDEX_FILE)} kept changing during {self.attempts} attempts; try again"
        )


def label_change(champion: Sequence[str], challenger: Sequence[str]) -> dict[str, list[str]]:
    """Both models' priority labels and what the challenger adds and removes, in model order."""
    old, new = [str(label) for label in champion], [str(label) for label in challenger]
    return {
        "champion": old,
        "challenger": new,
        "added": [label for label in new if label not in old],
        "removed": [label for label in old if label not in new],
    }

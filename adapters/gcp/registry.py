"""The model registry in Cloud Storage (`core.registry.ModelRegistry`), with
google-cloud-storage.

Layout, in one bucket::

    registry.json              the index: {"versions": [entry, ...]}, oldest first
    <version>/checksums.json   each version's artifact files, as training wrote them
    <version>/<file>           (every file that checksums.json lists)

Registering uploads the artifact's files, downloads them again and verifies them with
`core.artifact.read_artifact`, and only then adds the entry to the index, so a crash at any
point leaves no entry without its files. ``checksums.json`` goes first and is created only if
absent (``if_generation_match=0``): a version's files are never replaced by another artifact's.

The index is read at a known generation and written back with ``if_generation_match`` set to
it (0 when there is no index yet): Cloud Storage refuses the write if another writer changed
the index in between, and the change is recomputed on the fresh index, so two jobs registering
or promoting at the same time do not lose each other's entries.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from google.api_core.exceptions import GoogleAPIError, NotFound, PreconditionFailed

from core.artifact import CHECKSUMS_FILE, read_artifact
from core.errors import ArtifactError, RegistryError
from core.registry import ModelVersion, apply_stage, entry_for

_INDEX = "registry.json"
_ATTEMPTS = 8
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

T = TypeVar("T")
Change = Callable[[list[ModelVersion]], tuple[list[ModelVersion] | None, T]]


class GcsModelRegistry:
    """`core.registry.ModelRegistry` in a Cloud Storage bucket."""

    def __init__(self, bucket: Any) -> None:
        # A google.cloud.storage.Bucket; that library ships no type information.
        self._bucket = bucket

    def register(self, artifact_dir: Path, parent: str | None = None) -> ModelVersion:
        """Upload a verified artifact as a candidate; a version already registered is
        returned as it is."""
        source = Path(artifact_dir)
        version = str(read_artifact(source).metadata["version"])
        if not _VERSION.fullmatch(version):
            raise RegistryError(f"version {version!r} cannot name a folder of the registry")
        existing = self._find(self._read_index()[0], version)
        if existing is not None:
            return existing
        self._upload(source, version)
        with tempfile.TemporaryDirectory(prefix="registry-check-") as tmp:
            self._download(version, Path(tmp))
            entry = entry_for(Path(tmp), parent)  # verifies what Cloud Storage now holds

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

    # The index.

    def _where(self, name: str) -> str:
        return f"gs://{self._bucket.name}/{name}"

    @staticmethod
    def _find(entries: list[ModelVersion], version: str) -> ModelVersion | None:
        return next((e for e in entries if e.version == version), None)

    def _read_index(self) -> tuple[list[ModelVersion], int]:
        """The entries and the index's generation (0: there is no index yet)."""
        for _ in range(_ATTEMPTS):
            try:
                blob = self._bucket.get_blob(_INDEX)
                if blob is None:
                    return [], 0
                generation = int(blob.generation)
                # Read exactly that generation: a write since the lookup reads again.
                raw: bytes = blob.download_as_bytes(if_generation_match=generation)
            except (PreconditionFailed, NotFound):
                continue
            except GoogleAPIError as exc:
                raise RegistryError(f"cannot read {self._where(_INDEX)}: {exc}") from exc
            try:
                entries = [ModelVersion.from_dict(e) for e in json.loads(raw)["versions"]]
            except (ValueError, KeyError, TypeError) as exc:
                raise RegistryError(
                    f"{self._where(_INDEX)} is not a registry index: {exc}"
                ) from None
            return entries, generation
        raise RegistryError(f"{self._where(_INDEX)} kept changing while being read; try again")

    def _write_index(self, entries: list[ModelVersion], generation: int) -> bool:
        """Replace the index if it is still at ``generation`` (create it if 0); False if
        another writer changed it first."""
        payload = json.dumps({"versions": [e.as_dict() for e in entries]}, indent=2) + "\n"
        try:
            self._bucket.blob(_INDEX).upload_from_string(
                payload.encode(), content_type="application/json", if_generation_match=generation
            )
        except PreconditionFailed:
            return False
        except GoogleAPIError as exc:
            raise RegistryError(f"cannot write {self._where(_INDEX)}: {exc}") from exc
        return True

    def _update(self, change: Change[T]) -> T:
        """Apply ``change`` to the index, again on a fresh copy whenever another writer wins."""
        for attempt in range(_ATTEMPTS):
            entries, generation = self._read_index()
            updated, result = change(entries)
            if updated is None or self._write_index(updated, generation):
                return result
            time.sleep(random.uniform(0, 0.05 * 2**attempt))  # let the winner's burst pass
        raise RegistryError(
            f"{self._where(_INDEX)} kept changing during {_ATTEMPTS} attempts; try again"
        )

    # Artifact files.

    def _upload(self, source: Path, version: str) -> None:
        checksums_raw = (source / CHECKSUMS_FILE).read_bytes()
        names = _listed(checksums_raw, str(source / CHECKSUMS_FILE))
        self._claim(version, checksums_raw)
        for name in names:
            try:
                self._bucket.blob(f"{version}/{name}").upload_from_filename(str(source / name))
            except GoogleAPIError as exc:
                raise RegistryError(
                    f"cannot write {self._where(f'{version}/{name}')}: {exc}"
                ) from exc

    def _claim(self, version: str, checksums_raw: bytes) -> None:
        """Create the version's checksums.json, or accept an identical one left by an earlier
        attempt; refuse a version that already holds another artifact."""
        name = f"{version}/{CHECKSUMS_FILE}"
        try:
            self._bucket.blob(name).upload_from_string(
                checksums_raw, content_type="application/json", if_generation_match=0
            )
            return
        except PreconditionFailed:
            pass
        except GoogleAPIError as exc:
            raise RegistryError(f"cannot write {self._where(name)}: {exc}") from exc
        if self._read(name) != checksums_raw:
            raise RegistryError(
                f"{self._where(version)}/ already holds another artifact of version "
                f"{version!r}; a version names one artifact"
            )

    def _read(self, name: str) -> bytes:
        try:
            data: bytes = self._bucket.blob(name).download_as_bytes()
        except GoogleAPIError as exc:
            raise ArtifactError(f"cannot read {self._where(name)}: {exc}") from exc
        return data

    def _download(self, version: str, dest: Path) -> None:
        """The files that the stored checksums.json lists, and it, into ``dest``."""
        checksums_raw = self._read(f"{version}/{CHECKSUMS_FILE}")
        for name in _listed(checksums_raw, self._where(f"{version}/{CHECKSUMS_FILE}")):
            try:
                self._bucket.blob(f"{version}/{name}").download_to_filename(str(dest / name))
            except GoogleAPIError as exc:
                raise ArtifactError(
                    f"cannot read {self._where(f'{version}/{name}')}: {exc}"
                ) from exc
        (dest / CHECKSUMS_FILE).write_bytes(checksums_raw)


def _listed(checksums_raw: bytes, where: str) -> list[str]:
    """The file names checksums.json lists, refusing any that would leave the folder."""
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

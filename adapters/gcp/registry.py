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
from pathlib import Path
from typing import Any

from google.api_core.exceptions import GoogleAPIError, NotFound, PreconditionFailed

from core.artifact import CHECKSUMS_FILE
from core.errors import ArtifactError, RegistryError
from core.registry import ModelVersion, ObjectStoreRegistry, listed_files

_INDEX = "registry.json"


class GcsModelRegistry(ObjectStoreRegistry):
    """`core.registry.ModelRegistry` in a Cloud Storage bucket."""

    def __init__(self, bucket: Any) -> None:
        # A google.cloud.storage.Bucket; that library ships no type information.
        self._bucket = bucket

    def _location(self, name: str) -> str:
        return self._where(name)

    # The index.

    def _where(self, name: str) -> str:
        return f"gs://{self._bucket.name}/{name}"

    def _read_index(self) -> tuple[list[ModelVersion], int]:
        """The entries and the index's generation (0: there is no index yet)."""
        for _ in range(self.attempts):
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

    # Artifact files.

    def _upload(self, source: Path, version: str) -> None:
        checksums_raw = (source / CHECKSUMS_FILE).read_bytes()
        names = listed_files(checksums_raw, str(source / CHECKSUMS_FILE))
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
        for name in listed_files(checksums_raw, self._where(f"{version}/{CHECKSUMS_FILE}")):
            try:
                self._bucket.blob(f"{version}/{name}").download_to_filename(str(dest / name))
            except GoogleAPIError as exc:
                raise ArtifactError(
                    f"cannot read {self._where(f'{version}/{name}')}: {exc}"
                ) from exc
        (dest / CHECKSUMS_FILE).write_bytes(checksums_raw)

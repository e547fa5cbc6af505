"""The model registry in Azure Blob Storage (`core.registry.ModelRegistry`).

Layout, in one container::

    registry.json              the index: {"versions": [entry, ...]}, oldest first
    <version>/checksums.json   each version's artifact files, as training wrote them
    <version>/<file>           (every file that checksums.json lists)

Registering uploads the artifact's files, downloads them again and verifies them with
`core.artifact.read_artifact`, and only then adds the entry to the index, so a crash at any
point leaves no entry without its files. ``checksums.json`` goes first and is created only if
absent (``If-None-Match: *``): a version's files are never replaced by another artifact's.

The index is downloaded with its ETag and uploaded back on condition that the ETag still
matches (``MatchConditions.IfNotModified``; ``If-None-Match: *`` when there is no index yet):
Blob Storage refuses the upload if another writer changed the index in between, and the change
is recomputed on the fresh index, so two jobs registering or promoting at the same time do not
lose each other's entries.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import ContentSettings

from core.artifact import CHECKSUMS_FILE
from core.errors import ArtifactError, RegistryError
from core.registry import ModelVersion, ObjectStoreRegistry, listed_files

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

_INDEX = "registry.json"


class BlobModelRegistry(ObjectStoreRegistry):
    """`core.registry.ModelRegistry` in a Blob Storage container."""

    def __init__(self, container_client: ContainerClient) -> None:
        self._container = container_client

    def _location(self, name: str) -> str:
        return self._where(name)

    # The index.

    def _where(self, name: str) -> str:
        return f"{self._container.url}/{name}"

    def _read_index(self) -> tuple[list[ModelVersion], str | None]:
        """The entries and the index's ETag (None: there is no index yet)."""
        try:
            download = self._container.get_blob_client(_INDEX).download_blob()
            raw = download.readall()
        except ResourceNotFoundError:
            return [], None
        except AzureError as exc:
            raise RegistryError(f"cannot read {self._where(_INDEX)}: {exc}") from exc
        try:
            entries = [ModelVersion.from_dict(e) for e in json.loads(raw)["versions"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise RegistryError(f"{self._where(_INDEX)} is not a registry index: {exc}") from None
        return entries, str(download.properties.etag)

    def _write_index(self, entries: list[ModelVersion], etag: str | None) -> bool:
        """Replace the index if it still has ``etag`` (create it if None); False if another
        writer changed it first."""
        payload = json.dumps({"versions": [e.as_dict() for e in entries]}, indent=2) + "\n"
        settings = ContentSettings(content_type="application/json")
        blob = self._container.get_blob_client(_INDEX)
        try:
            if etag is None:
                blob.upload_blob(payload.encode(), overwrite=False, content_settings=settings)
            else:
                blob.upload_blob(
                    payload.encode(),
                    overwrite=True,
                    content_settings=settings,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceExistsError, ResourceModifiedError):
            return False
        except AzureError as exc:
            raise RegistryError(f"cannot write {self._where(_INDEX)}: {exc}") from exc
        return True

    # Artifact files.

    def _upload(self, source: Path, version: str) -> None:
        checksums_raw = (source / CHECKSUMS_FILE).read_bytes()
        names = listed_files(checksums_raw, str(source / CHECKSUMS_FILE))
        self._claim(version, checksums_raw)
        for name in names:
            try:
                with (source / name).open("rb") as body:
                    self._container.upload_blob(f"{version}/{name}", body, overwrite=True)
            except AzureError as exc:
                raise RegistryError(
                    f"cannot write {self._where(f'{version}/{name}')}: {exc}"
                ) from exc

    def _claim(self, version: str, checksums_raw: bytes) -> None:
        """Create the version's checksums.json, or accept an identical one left by an earlier
        attempt; refuse a version that already holds another artifact."""
        name = f"{version}/{CHECKSUMS_FILE}"
        try:
            self._container.upload_blob(name, checksums_raw, overwrite=False)
            return
        except (ResourceExistsError, ResourceModifiedError):
            pass
        except AzureError as exc:
            raise RegistryError(f"cannot write {self._where(name)}: {exc}") from exc
        if self._read(name) != checksums_raw:
            raise RegistryError(
                f"{self._where(version)}/ already holds another artifact of version "
                f"{version!r}; a version names one artifact"
            )

    def _read(self, name: str) -> bytes:
        try:
            return self._container.get_blob_client(name).download_blob().readall()
        except AzureError as exc:
            raise ArtifactError(f"cannot read {self._where(name)}: {exc}") from exc

    def _download(self, version: str, dest: Path) -> None:
        """The files that the stored checksums.json lists, and it, into ``dest``."""
        checksums_raw = self._read(f"{version}/{CHECKSUMS_FILE}")
        for name in listed_files(checksums_raw, self._where(f"{version}/{CHECKSUMS_FILE}")):
            try:
                blob = self._container.get_blob_client(f"{version}/{name}")
                with (dest / name).open("wb") as out:
                    blob.download_blob().readinto(out)
            except AzureError as exc:
                raise ArtifactError(
                    f"cannot read {self._where(f'{version}/{name}')}: {exc}"
                ) from exc
        (dest / CHECKSUMS_FILE).write_bytes(checksums_raw)

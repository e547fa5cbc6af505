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

from core.errors import ArtifactError, RegistryError
from core.registry import ObjectStoreRegistry

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

_JSON = ContentSettings(content_type="application/json")


class BlobModelRegistry(ObjectStoreRegistry):
    """`core.registry.ModelRegistry` in a Blob Storage container."""

    store_errors = (AzureError,)

    def __init__(self, container_client: ContainerClient) -> None:
        self._container = container_client

    def _location(self, name: str) -> str:
        return f"{self._container.url}/{name}"

    def _get_with_token(self, name: str) -> tuple[bytes | None, str | None]:
        """The blob and its ETag, or (None, None)."""
        try:
            download = self._container.get_blob_client(name).download_blob()
            raw = download.readall()
        except ResourceNotFoundError:
            return None, None
        except AzureError as exc:
            raise RegistryError(f"cannot read {self._location(name)}: {exc}") from exc
        return raw, str(download.properties.etag)

    def _put_if(self, name: str, data: bytes, token: str | None) -> bool:
        """Upload on condition that the ETag still matches, or create only."""
        blob = self._container.get_blob_client(name)
        try:
            if token is None:
                blob.upload_blob(data, overwrite=False, content_settings=_JSON)
            else:
                blob.upload_blob(
                    data,
                    overwrite=True,
                    content_settings=_JSON,
                    etag=token,
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceExistsError, ResourceModifiedError):
            return False
        except AzureError as exc:
            raise RegistryError(f"cannot write {self._location(name)}: {exc}") from exc
        return True

    def _get(self, name: str) -> bytes:
        with self._failing(ArtifactError, "read", name):
            return self._container.get_blob_client(name).download_blob().readall()

    def _put_file(self, name: str, source: Path) -> None:
        with self._failing(RegistryError, "write", name), source.open("rb") as body:
            self._container.upload_blob(name, body, overwrite=True)

    def _get_file(self, name: str, dest: Path) -> None:
        with self._failing(ArtifactError, "read", name), dest.open("wb") as out:
            self._container.get_blob_client(name).download_blob().readinto(out)

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

from pathlib import Path
from typing import Any

from google.api_core.exceptions import GoogleAPIError, NotFound, PreconditionFailed

from core.errors import ArtifactError, RegistryError
from core.registry import ObjectStoreRegistry


class GcsModelRegistry(ObjectStoreRegistry):
    """`core.registry.ModelRegistry` in a Cloud Storage bucket."""

    store_errors = (GoogleAPIError,)
    absent = 0  # the generation of an object that does not exist

    def __init__(self, bucket: Any) -> None:
        # A google.cloud.storage.Bucket; that library ships no type information.
        self._bucket = bucket

    def _location(self, name: str) -> str:
        return f"gs://{self._bucket.name}/{name}"

    def _get_with_token(self, name: str) -> tuple[bytes | None, int]:
        """The object and its generation, or (None, 0)."""
        for _ in range(self.attempts):
            try:
                blob = self._bucket.get_blob(name)
                if blob is None:
                    return None, 0
                generation = int(blob.generation)
                # Read exactly that generation: a write since the lookup reads again.
                raw: bytes = blob.download_as_bytes(if_generation_match=generation)
            except (PreconditionFailed, NotFound):
                continue
            except GoogleAPIError as exc:
                raise RegistryError(f"cannot read {self._location(name)}: {exc}") from exc
            return raw, generation
        raise RegistryError(f"{self._location(name)} kept changing while being read; try again")

    def _put_if(self, name: str, data: bytes, token: int) -> bool:
        """``if_generation_match`` the generation (0: create only)."""
        try:
            self._bucket.blob(name).upload_from_string(
                data, content_type="application/json", if_generation_match=token
            )
        except PreconditionFailed:
            return False
        except GoogleAPIError as exc:
            raise RegistryError(f"cannot write {self._location(name)}: {exc}") from exc
        return True

    def _get(self, name: str) -> bytes:
        with self._failing(ArtifactError, "read", name):
            data: bytes = self._bucket.blob(name).download_as_bytes()
        return data

    def _put_file(self, name: str, source: Path) -> None:
        with self._failing(RegistryError, "write", name):
            self._bucket.blob(name).upload_from_filename(str(source))

    def _get_file(self, name: str, dest: Path) -> None:
        with self._failing(ArtifactError, "read", name):
            self._bucket.blob(name).download_to_filename(str(dest))

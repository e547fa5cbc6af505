"""The model registry in S3 (`core.registry.ModelRegistry`).

Layout, under one bucket and prefix::

    <prefix>/registry.json              the index: {"versions": [entry, ...]}, oldest first
    <prefix>/<version>/checksums.json   each version's artifact files, as training wrote them
    <prefix>/<version>/<file>           (every file that checksums.json lists)

Registering uploads the artifact's files, downloads them again and verifies them with
`core.artifact.read_artifact`, and only then adds the entry to the index, so a crash at any
point leaves no entry without its files. ``checksums.json`` goes first and is created only if
absent (``IfNoneMatch="*"``): a version's files are never replaced by another artifact's.

The index is read with its ETag and written back with ``IfMatch`` (``IfNoneMatch="*"`` when it
does not exist yet): S3 refuses the write if another writer changed the index in between, and
the change is recomputed on the fresh index, so two jobs registering or promoting at the same
time do not lose each other's entries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from core.errors import ArtifactError, RegistryError
from core.registry import ObjectStoreRegistry

_CHUNK = 1024 * 1024
# 412: the condition did not hold; 409: a concurrent conditional write to the same key.
_CONFLICTS = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
_MISSING = {"NoSuchKey", "404"}


class S3ModelRegistry(ObjectStoreRegistry):
    """`core.registry.ModelRegistry` in an S3 bucket, under a key prefix."""

    store_errors = (ClientError, BotoCoreError)

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _location(self, name: str) -> str:
        return f"s3://{self.bucket}/{self._key(name)}"

    def _get_with_token(self, name: str) -> tuple[bytes | None, str | None]:
        """The object and its ETag, or (None, None)."""
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self._key(name))
            raw: bytes = response["Body"].read()
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None, None
            raise RegistryError(f"cannot read {self._location(name)}: {exc}") from exc
        except BotoCoreError as exc:
            raise RegistryError(f"cannot read {self._location(name)}: {exc}") from exc
        return raw, str(response["ETag"])

    def _put_if(self, name: str, data: bytes, token: str | None) -> bool:
        """``IfMatch`` the ETag, or ``IfNoneMatch="*"`` to create only."""
        condition = {"IfMatch": token} if token is not None else {"IfNoneMatch": "*"}
        try:
            self._client.put_object(
                Bucket=self.bucket,
                Key=self._key(name),
                Body=data,
                ContentType="application/json",
                **condition,
            )
        except ClientError as exc:
            if _code(exc) in _CONFLICTS:
                return False
            raise RegistryError(f"cannot write {self._location(name)}: {exc}") from exc
        except BotoCoreError as exc:
            raise RegistryError(f"cannot write {self._location(name)}: {exc}") from exc
        return True

    def _get(self, name: str) -> bytes:
        with self._failing(ArtifactError, "read", name):
            body = self._client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"]
            data: bytes = body.read()
        return data

    def _put_file(self, name: str, source: Path) -> None:
        with self._failing(RegistryError, "write", name), source.open("rb") as body:
            self._client.put_object(Bucket=self.bucket, Key=self._key(name), Body=body)

    def _get_file(self, name: str, dest: Path) -> None:
        with self._failing(ArtifactError, "read", name):
            body = self._client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"]
            with dest.open("wb") as out:
                for chunk in body.iter_chunks(_CHUNK):
                    out.write(chunk)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))

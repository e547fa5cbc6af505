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

import json
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from core.artifact import CHECKSUMS_FILE
from core.errors import ArtifactError, RegistryError
from core.registry import ModelVersion, ObjectStoreRegistry, listed_files

_INDEX = "registry.json"
_CHUNK = 1024 * 1024
# 412: the condition did not hold; 409: a concurrent conditional write to the same key.
_CONFLICTS = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
_MISSING = {"NoSuchKey", "404"}


class S3ModelRegistry(ObjectStoreRegistry):
    """`core.registry.ModelRegistry` in an S3 bucket, under a key prefix."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def _location(self, name: str) -> str:
        return self._uri(name)

    # The index.

    def _key(self, *parts: str) -> str:
        return "/".join([self.prefix, *parts] if self.prefix else parts)

    def _uri(self, *parts: str) -> str:
        return f"s3://{self.bucket}/{self._key(*parts)}"

    def _read_index(self) -> tuple[list[ModelVersion], str | None]:
        """The entries and the index's ETag (None: there is no index yet)."""
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self._key(_INDEX))
            raw: bytes = response["Body"].read()
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return [], None
            raise RegistryError(f"cannot read {self._uri(_INDEX)}: {exc}") from exc
        except BotoCoreError as exc:
            raise RegistryError(f"cannot read {self._uri(_INDEX)}: {exc}") from exc
        try:
            entries = [ModelVersion.from_dict(e) for e in json.loads(raw)["versions"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise RegistryError(f"{self._uri(_INDEX)} is not a registry index: {exc}") from None
        return entries, str(response["ETag"])

    def _write_index(self, entries: list[ModelVersion], etag: str | None) -> bool:
        """Replace the index if it still has ``etag`` (create it if None); False if another
        writer changed it first."""
        payload = json.dumps({"versions": [e.as_dict() for e in entries]}, indent=2) + "\n"
        condition = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
        try:
            self._client.put_object(
                Bucket=self.bucket,
                Key=self._key(_INDEX),
                Body=payload.encode(),
                ContentType="application/json",
                **condition,
            )
        except ClientError as exc:
            if _code(exc) in _CONFLICTS:
                return False
            raise RegistryError(f"cannot write {self._uri(_INDEX)}: {exc}") from exc
        except BotoCoreError as exc:
            raise RegistryError(f"cannot write {self._uri(_INDEX)}: {exc}") from exc
        return True

    # Artifact files.

    def _upload(self, source: Path, version: str) -> None:
        checksums_raw = (source / CHECKSUMS_FILE).read_bytes()
        names = listed_files(checksums_raw, str(source / CHECKSUMS_FILE))
        self._claim(version, checksums_raw)
        for name in names:
            try:
                with (source / name).open("rb") as body:
                    self._client.put_object(
                        Bucket=self.bucket, Key=self._key(version, name), Body=body
                    )
            except (ClientError, BotoCoreError) as exc:
                raise RegistryError(f"cannot write {self._uri(version, name)}: {exc}") from exc

    def _claim(self, version: str, checksums_raw: bytes) -> None:
        """Create the version's checksums.json, or accept an identical one left by an earlier
        attempt; refuse a version that already holds another artifact."""
        key = self._key(version, CHECKSUMS_FILE)
        try:
            self._client.put_object(
                Bucket=self.bucket, Key=key, Body=checksums_raw, IfNoneMatch="*"
            )
            return
        except ClientError as exc:
            if _code(exc) not in _CONFLICTS:
                raise RegistryError(
                    f"cannot write {self._uri(version, CHECKSUMS_FILE)}: {exc}"
                ) from exc
        except BotoCoreError as exc:
            raise RegistryError(
                f"cannot write {self._uri(version, CHECKSUMS_FILE)}: {exc}"
            ) from exc
        if self._read(version, CHECKSUMS_FILE) != checksums_raw:
            raise RegistryError(
                f"{self._uri(version)}/ already holds another artifact of version {version!r}; "
                "a version names one artifact"
            )

    def _read(self, version: str, name: str) -> bytes:
        try:
            data: bytes = self._client.get_object(Bucket=self.bucket, Key=self._key(version, name))[
                "Body"
            ].read()
        except (ClientError, BotoCoreError) as exc:
            raise ArtifactError(f"cannot read {self._uri(version, name)}: {exc}") from exc
        return data

    def _download(self, version: str, dest: Path) -> None:
        """The files that the stored checksums.json lists, and it, into ``dest``."""
        checksums_raw = self._read(version, CHECKSUMS_FILE)
        for name in listed_files(checksums_raw, self._uri(version, CHECKSUMS_FILE)):
            try:
                body = self._client.get_object(Bucket=self.bucket, Key=self._key(version, name))
                with (dest / name).open("wb") as out:
                    for chunk in body["Body"].iter_chunks(_CHUNK):
                        out.write(chunk)
            except (ClientError, BotoCoreError) as exc:
                raise ArtifactError(f"cannot read {self._uri(version, name)}: {exc}") from exc
        (dest / CHECKSUMS_FILE).write_bytes(checksums_raw)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))

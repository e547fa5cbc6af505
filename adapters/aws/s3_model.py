"""A model artifact kept in S3, copied once per container into /tmp and verified on the way.

The artifact is a directory (``s3://bucket/prefix/`` holds ``checksums.json`` and the files it
lists). ``checksums.json`` is read first and, when a pin is given (the SHA-256 of
``checksums.json`` itself, which the deployment records), compared with it; every other file is
streamed to disk while its SHA-256 is computed and refused unless it matches. The copy is made
in a temporary directory and renamed into place, so a container that died mid-copy never leaves
a half artifact that a later cold start would take for a cached one. `core.load_enricher` then
verifies the whole artifact again and runs its self-check.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from core.artifact import CHECKSUMS_FILE
from core.errors import ArtifactError

_CHUNK = 1024 * 1024


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b/`` → ``("bucket", "a/b/")`` (the prefix always ends with a slash)."""
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc:
        raise ArtifactError(f"not an s3:// URI: {uri!r}")
    prefix = parts.path.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return parts.netloc, prefix


class S3ModelStore:
    """Fetches a model artifact from S3 into a local cache directory."""

    def __init__(self, client: Any, cache_dir: str | os.PathLike[str]) -> None:
        self._client = client
        self.cache_dir = Path(cache_dir)

    def fetch(self, uri: str, sha256: str | None = None) -> Path:
        """The local directory of the artifact at ``uri``, downloaded unless already cached.

        ``sha256`` pins ``checksums.json``; a mismatch, a file that differs from its checksum,
        or a missing object raises `core.errors.ArtifactError`.
        """
        bucket, prefix = split_s3_uri(uri)
        checksums_raw = self._read(bucket, prefix + CHECKSUMS_FILE)
        digest = hashlib.sha256(checksums_raw).hexdigest()
        if sha256 is not None and digest != sha256.lower():
            raise ArtifactError(
                f"{uri}{CHECKSUMS_FILE} has SHA-256 {digest}, not the pinned {sha256}: "
                "the model in S3 is not the one this deployment expects"
            )
        target = self.cache_dir / digest
        if (target / CHECKSUMS_FILE).is_file():
            return target  # a warm container, or an earlier cold start in this sandbox
        try:
            checksums = json.loads(checksums_raw)
        except ValueError:
            raise ArtifactError(f"{uri}{CHECKSUMS_FILE} is not valid JSON") from None
        if not isinstance(checksums, dict) or not checksums:
            raise ArtifactError(f"{uri}{CHECKSUMS_FILE} lists no files")
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=self.cache_dir))
        try:
            for name, expected in checksums.items():
                if "/" in name or name.startswith("."):
                    raise ArtifactError(f"{uri}{CHECKSUMS_FILE} names an unsafe path {name!r}")
                self._download(bucket, prefix + name, staging / name, str(expected))
            (staging / CHECKSUMS_FILE).write_bytes(checksums_raw)
            try:
                staging.rename(target)
            except OSError:
                if not (target / CHECKSUMS_FILE).is_file():
                    raise  # not a concurrent copy winning the race: a real failure
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def _read(self, bucket: str, key: str) -> bytes:
        try:
            body = self._client.get_object(Bucket=bucket, Key=key)["Body"]
            data: bytes = body.read()
        except (ClientError, BotoCoreError) as exc:
            raise ArtifactError(f"cannot read s3://{bucket}/{key}: {exc}") from exc
        return data

    def _download(self, bucket: str, key: str, path: Path, expected: str) -> None:
        digest = hashlib.sha256()
        try:
            body = self._client.get_object(Bucket=bucket, Key=key)["Body"]
            with path.open("wb") as out:
                for chunk in body.iter_chunks(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        except (ClientError, BotoCoreError) as exc:
            raise ArtifactError(f"cannot read s3://{bucket}/{key}: {exc}") from exc
        if digest.hexdigest() != expected:
            raise ArtifactError(
                f"s3://{bucket}/{key} does not match its checksum: the artifact in S3 was "
                "modified or truncated"
            )


def upload_artifact(client: Any, model_dir: str | os.PathLike[str], uri: str) -> str:
    """Copy a local artifact (the files its checksums.json lists, then checksums.json itself)
    to ``uri``; return the SHA-256 of checksums.json, the pin for `S3ModelStore.fetch`."""
    root = Path(model_dir)
    bucket, prefix = split_s3_uri(uri)
    checksums_raw = (root / CHECKSUMS_FILE).read_bytes()
    for name in json.loads(checksums_raw):
        with (root / name).open("rb") as body:
            client.put_object(Bucket=bucket, Key=prefix + name, Body=body)
    # Last, so that a reader never sees checksums for files not uploaded yet.
    client.put_object(Bucket=bucket, Key=prefix + CHECKSUMS_FILE, Body=checksums_raw)
    return hashlib.sha256(checksums_raw).hexdigest()

"""The S3 model registry against moto's server: the shared registry scenario (moto honours
``IfMatch`` and ``IfNoneMatch="*"`` on PutObject), its layout under a prefix, and a registry
at the bucket's root."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from adapters.aws.registry import S3ModelRegistry
from tests.integration.aws.conftest import client
from tests.registry_contract import RegistryStore, check_registry_contract


def _store(s3: Any, bucket: str, prefix: str) -> RegistryStore:
    root = f"{prefix}/" if prefix else ""

    def names() -> set[str]:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=root)
        return {o["Key"][len(root) :] for page in pages for o in page.get("Contents", [])}

    return RegistryStore(
        open=lambda: S3ModelRegistry(s3, bucket, prefix),
        names=names,
        overwrite=lambda name, data: s3.put_object(Bucket=bucket, Key=root + name, Body=data),
    )


def _new_bucket(endpoint: str) -> tuple[Any, str]:
    s3 = client("s3", endpoint)
    bucket = f"registry-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    return s3, bucket


def test_the_registry_contract_holds_on_s3(
    aws_env: str, small_model_dir: Path, tmp_path: Path
) -> None:
    s3, bucket = _new_bucket(aws_env)
    runs = iter(range(100))

    def new_store() -> RegistryStore:
        return _store(s3, bucket, f"models/run-{next(runs)}")

    check_registry_contract(new_store, small_model_dir, tmp_path)
    # Every object stayed under its registry's prefix.
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys and all(k.startswith(("models/run-0/", "models/run-1/")) for k in keys)
    assert {"models/run-0/registry.json", "models/run-1/registry.json"} <= keys


def test_a_registry_at_the_bucket_root(aws_env: str, small_model_dir: Path) -> None:
    s3, bucket = _new_bucket(aws_env)
    registry = S3ModelRegistry(s3, bucket, "/")
    entry = registry.register(small_model_dir)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert "registry.json" in keys and f"{entry.version}/weights.bin" in keys
    assert S3ModelRegistry(s3, bucket, "").get(entry.version) == entry


def test_a_stale_index_write_is_refused_by_s3(aws_env: str, small_model_dir: Path) -> None:
    """The precondition itself, without the retry: a write based on an old ETag fails, and so
    does creating an index that another writer created first."""
    s3, bucket = _new_bucket(aws_env)
    registry = S3ModelRegistry(s3, bucket, "models")
    entries, etag = registry._read_index()
    assert (entries, etag) == ([], None)
    assert registry._write_index([], None) is True
    assert registry._write_index([], None) is False
    _, etag = registry._read_index()
    assert etag is not None
    registry.register(small_model_dir)
    assert registry._write_index([], etag) is False
    assert len(registry.versions()) == 1

"""The Blob Storage model registry against Azurite: the shared registry scenario (Azurite
honours ``If-Match`` and ``If-None-Match: *`` on Put Blob) and the precondition itself."""

from __future__ import annotations

import uuid
from pathlib import Path

from azure.storage.blob import BlobServiceClient, ContainerClient

from adapters.azure.registry import BlobModelRegistry
from tests.integration.azure.conftest import Azurite
from tests.registry_contract import RegistryStore, check_registry_contract


def _container(azurite: Azurite) -> ContainerClient:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    return service.create_container(f"registry-{uuid.uuid4().hex[:12]}")


def _store(container: ContainerClient) -> RegistryStore:
    return RegistryStore(
        open=lambda: BlobModelRegistry(container),
        names=lambda: set(container.list_blob_names()),
        overwrite=lambda name, data: container.upload_blob(name, data, overwrite=True),
    )


def test_the_registry_contract_holds_on_blob_storage(
    azurite: Azurite, small_model_dir: Path, tmp_path: Path
) -> None:
    check_registry_contract(lambda: _store(_container(azurite)), small_model_dir, tmp_path)


def test_a_stale_index_write_is_refused_by_blob_storage(
    azurite: Azurite, small_model_dir: Path
) -> None:
    """The precondition itself, without the retry: a write based on an old ETag fails, and so
    does creating an index that another writer created first."""
    registry = BlobModelRegistry(_container(azurite))
    assert registry._read_index() == ([], None)
    assert registry._write_index([], None) is True
    assert registry._write_index([], None) is False
    _, etag = registry._read_index()
    assert etag is not None
    registry.register(small_model_dir)
    assert registry._write_index([], etag) is False
    assert len(registry.versions()) == 1

"""The retraining functions, each served by the Functions Framework on 127.0.0.1, against
gcp-storage-emulator (exports bucket and model registry bucket): a closed-ticket export is
uploaded, Eventarc's binary-mode Cloud Storage CloudEvent for it is posted to
``retrain_on_upload``, and the registry is read back; the schedule's HTTP call to
``retrain_on_schedule`` takes the newest export.

The emulator ignores generation preconditions (see test_registry.py); one function instance at
a time writes the registry here, so nothing in these tests depends on them.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from adapters.gcp.registry import GcsModelRegistry
from tests.integration.gcp.conftest import FUNCTIONS_FRAMEWORK, PROJECT, ROOT, SETUP_HINT, _serve
from tests.integration.gcp.test_registry import emulator  # noqa: F401 - the emulator fixture
from tests.support import write_tickets
from tests.unit.gcp.eventarc import recorded

TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Retrain:
    """Where the two functions listen, and the buckets they use."""

    upload: str
    schedule: str
    exports: Any
    registry: GcsModelRegistry


@pytest.fixture
def retrain(emulator: str, tmp_path: Path) -> Iterator[Retrain]:  # noqa: F811 - the fixture
    if not FUNCTIONS_FRAMEWORK.exists():
        pytest.fail(f"functions-framework is not installed: {SETUP_HINT}")
    client = storage.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": emulator},
    )
    suffix = uuid.uuid4().hex[:10]
    exports = client.create_bucket(f"exports-{suffix}")
    registry = client.create_bucket(f"registry-{suffix}")
    env = {
        **os.environ,
        "STORAGE_EMULATOR_HOST": emulator,
        "TICKET_ENRICH_GCP_PROJECT": PROJECT,
        "TICKET_ENRICH_REGISTRY_BUCKET": registry.name,
        "TICKET_ENRICH_EXPORTS_BUCKET": exports.name,
        "PYTHONPATH": str(ROOT),
    }
    with (
        _serve("retrain_on_upload", env, tmp_path, "retrain.py") as upload,
        _serve("retrain_on_schedule", env, tmp_path, "retrain.py") as schedule,
    ):
        yield Retrain(upload, schedule, exports, GcsModelRegistry(registry))


def _export(path: Path, *, noisy: bool = False) -> bytes:
    """Generated closed tickets in the product's own columns. ``noisy``: the labels of the
    older 80 % (what a challenger trains on) are shuffled; the newest 20 %, which both models
    are judged on, keep their true labels."""
    rows = [json.loads(line) for line in write_tickets(path, rows=300).read_text().splitlines()]
    if noisy:
        rows.sort(key=lambda r: r["created_at"])
        older = rows[: int(len(rows) * 0.8)]
        labels = [r["priority"] for r in older]
        random.Random(3).shuffle(labels)
        for row, label in zip(older, labels, strict=True):
            row["priority"] = label
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _upload(bucket: Any, name: str, data: bytes) -> Any:
    blob = bucket.blob(name)
    blob.upload_from_string(data, content_type="application/jsonl")
    blob.reload()
    return blob


def _finalized(blob: Any) -> tuple[dict[str, str], bytes]:
    """Eventarc's request for an uploaded object: the recorded event's shape, with the
    object's metadata as the emulator reports it."""
    record = recorded("storage_object_finalized.json")
    headers = dict(record["headers"])
    headers.update(
        {
            "ce-id": str(uuid.uuid4().int)[:17],
            "ce-source": f"//storage.googleapis.com/projects/_/buckets/{blob.bucket.name}",
            "ce-subject": f"objects/{blob.name}",
            "ce-bucket": blob.bucket.name,
        }
    )
    data = dict(record["data"])
    data.update(
        {
            "id": blob.id,
            "name": blob.name,
            "bucket": blob.bucket.name,
            "generation": str(blob.generation),
            "size": str(blob.size),
            "md5Hash": blob.md5_hash,
            "crc32c": blob.crc32c,
            "timeCreated": blob.time_created.isoformat().replace("+00:00", "Z"),
            "updated": blob.updated.isoformat().replace("+00:00", "Z"),
        }
    )
    return headers, json.dumps(data).encode()


def _post(url: str, request: tuple[dict[str, str], bytes]) -> httpx.Response:
    headers, body = request
    return httpx.post(url, headers=headers, content=body, timeout=TIMEOUT_S)


def test_an_export_is_trained_promoted_once_and_a_worse_one_refused(
    retrain: Retrain, tmp_path: Path
) -> None:
    first = _export(tmp_path / "first.jsonl")
    blob = _upload(retrain.exports, "closed/2026-11-01.jsonl", first)
    event = _finalized(blob)

    reply = _post(retrain.upload, event)
    assert reply.status_code == 200, reply.text
    [version] = retrain.registry.versions()
    assert version.stage == "production"
    assert version.data_sha256 == hashlib.sha256(first).hexdigest()
    assert version.data_rows == 300
    assert version.decision is not None
    assert version.decision["reason"] == "promoted: no model was in production"
    # The served artifact can be fetched from the registry, verified.
    assert (retrain.registry.fetch(version.version) / "checksums.json").exists()

    # Eventarc delivers at least once: the same event again trains nothing.
    assert _post(retrain.upload, event).status_code == 200
    assert retrain.registry.versions() == [version]

    # The schedule takes the newest export: a challenger trained on shuffled labels, judged on
    # the true newest tickets against production, is refused and stays a candidate.
    _upload(retrain.exports, "closed/2026-11-08.jsonl", _export(tmp_path / "w.jsonl", noisy=True))
    reply = httpx.post(retrain.schedule, timeout=TIMEOUT_S)
    assert reply.status_code == 200, reply.text
    outcome = reply.json()
    assert outcome["retrained"] is True
    assert outcome["export"].startswith(f"gs://{retrain.exports.name}/closed/2026-11-08.jsonl#")
    assert outcome["promoted"] is False
    assert outcome["reason"].startswith("refused: ")
    assert outcome["champion"] == version.version
    judged = outcome["metrics"]
    assert judged["challenger"]["macro_f1"] < judged["champion"]["macro_f1"] - 0.01
    production = retrain.registry.production()
    assert production is not None and production.version == version.version
    challenger = retrain.registry.get(outcome["challenger"])
    assert challenger.stage == "candidate" and challenger.parent == version.version
    # A second run of the schedule with no new export trains nothing.
    again = httpx.post(retrain.schedule, timeout=TIMEOUT_S).json()
    assert again["retrained"] is False and "already trained on this data" in again["reason"]
    assert len(retrain.registry.versions()) == 2


def test_other_objects_and_unreadable_exports_are_acknowledged_untrained(
    retrain: Retrain, tmp_path: Path
) -> None:
    assert httpx.post(retrain.schedule, timeout=TIMEOUT_S).json() == {
        "retrained": False,
        "reason": f"no export under gs://{retrain.exports.name}/closed/",
    }
    outside = _upload(retrain.exports, "incoming/2026-11-01.jsonl", _export(tmp_path / "o.jsonl"))
    assert _post(retrain.upload, _finalized(outside)).status_code == 200
    folder = _upload(retrain.exports, "closed/", b"")
    assert _post(retrain.upload, _finalized(folder)).status_code == 200
    # Not closed tickets: acknowledged (a retry would read the same bytes), nothing trained.
    broken = _upload(retrain.exports, "closed/broken.jsonl", b'{"subject": "no label"}\n')
    assert _post(retrain.upload, _finalized(broken)).status_code == 200
    reply = httpx.post(retrain.schedule, timeout=TIMEOUT_S)
    assert reply.status_code == 422
    assert reply.json()["retrained"] is False
    assert retrain.registry.versions() == []

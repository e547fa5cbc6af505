"""Retraining on Google Cloud: two thin Cloud Functions (2nd gen) around
`training.retrain.retrain_model`, with the model registry in Cloud Storage.

- ``retrain_on_upload``: Eventarc, ``google.cloud.storage.object.v1.finalized`` on the exports
  bucket. An object under the exports prefix (``closed/`` by default) is a closed-ticket export:
  train a challenger on it, judge it against production and promote it or not. Eventarc's
  Cloud Storage triggers filter on the bucket only, so objects outside the prefix are
  acknowledged and ignored here.
- ``retrain_on_schedule``: HTTP, called by Cloud Scheduler with an OIDC token; retrains on the
  newest export under the prefix.

Both are idempotent: a registry that already holds a version trained on the same bytes (its
``data_sha256``) means the export was handled, so a redelivered event or a schedule with no new
export trains nothing. An export that cannot be read as closed tickets is acknowledged with the
reason logged (retrying cannot fix it); a registry or storage failure raises, so Eventarc
retries the event.

Training (scikit-learn) is imported inside the functions only: the enrichment functions' source
holds this module too but neither ``training/`` nor scikit-learn.
"""

from __future__ import annotations

import functools
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import functions_framework
from pydantic import Field

from adapters.gcp.bootstrap import _install_logging
from adapters.gcp.settings import GcpSettings
from core.errors import TicketEnrichError, TrainingDataError

if TYPE_CHECKING:
    import flask
    from cloudevents.http import CloudEvent

    from core.registry import ModelRegistry

STORAGE_FINALIZED = "google.cloud.storage.object.v1.finalized"

_log = logging.getLogger(__name__)


class RetrainSettings(GcpSettings):
    """`GcpSettings` plus where exports land and where the registry lives (same
    ``TICKET_ENRICH_`` prefix); the tolerance is the core's ``promotion_tolerance``."""

    registry_bucket: str | None = Field(
        None, description="Cloud Storage bucket of the model registry (registry.json at its root)."
    )
    exports_bucket: str | None = Field(
        None, description="Cloud Storage bucket that closed-ticket exports are uploaded to."
    )
    exports_prefix: str = Field(
        "closed/", description="Objects under this prefix of the exports bucket are exports."
    )
    retrain_preset: str | None = Field(
        None,
        description="training.data preset naming the export's columns (e.g. hadoop); default: "
        "the product's own (subject, description, priority, created_at).",
    )
    retrain_schedule: str = Field(
        "0 3 * * 1", description="Cloud Scheduler cron for the scheduled retraining (UTC)."
    )


@dataclass(frozen=True)
class Export:
    """One closed-ticket export object."""

    bucket: str
    name: str
    generation: int

    @property
    def uri(self) -> str:
        """The object as a gs:// address with its generation."""
        return f"gs://{self.bucket}/{self.name}#{self.generation}"


def export_of(event: CloudEvent, prefix: str) -> Export | None:
    """The export a Cloud Storage finalized event announces, or None for any other object
    (outside the prefix, or a folder placeholder)."""
    import json

    from google.events.cloud.storage_v1 import StorageObjectData

    if event["type"] != STORAGE_FINALIZED:
        raise TicketEnrichError(f"expected {STORAGE_FINALIZED}, got {event['type']}")
    data = event.get_data()
    text = data.decode("utf-8") if isinstance(data, bytes) else json.dumps(data)
    stored = StorageObjectData.from_json(text, ignore_unknown_fields=True)
    if not stored.name.startswith(prefix) or stored.name.endswith("/"):
        return None
    return Export(stored.bucket, stored.name, int(stored.generation))


def newest_export(client: Any, bucket: str, prefix: str) -> Export | None:
    """The most recently written export under ``prefix``, if there is one."""
    blobs = [b for b in client.list_blobs(bucket, prefix=prefix) if not b.name.endswith("/")]
    if not blobs:
        return None
    newest = max(blobs, key=lambda b: (b.updated, b.name))
    return Export(bucket, newest.name, int(newest.generation))


def retrain_on_export(
    export: Export,
    client: Any,
    registry: ModelRegistry,
    config: RetrainSettings,
    work_dir: Path,
) -> dict[str, Any]:
    """Download the export (at the generation announced), and retrain on it unless the registry
    already holds a version trained on the same bytes. Returns what happened, as JSON."""
    from training.data import PRESETS, DataSpec, load_dataset
    from training.retrain import retrain_model

    if config.retrain_preset is not None and config.retrain_preset not in PRESETS:
        raise TicketEnrichError(
            f"unknown retrain_preset {config.retrain_preset!r}; known: {', '.join(PRESETS)}"
        )
    spec = PRESETS[config.retrain_preset] if config.retrain_preset else DataSpec()
    local = work_dir / "export" / PurePosixPath(export.name).name
    local.parent.mkdir(parents=True, exist_ok=True)
    client.bucket(export.bucket).blob(
        export.name, generation=export.generation
    ).download_to_filename(str(local))
    dataset = load_dataset(local, spec)
    done = next((v for v in registry.versions() if v.data_sha256 == dataset.sha256), None)
    if done is not None:
        return {
            "export": export.uri,
            "retrained": False,
            "reason": f"already trained on this data: version {done.version} ({done.stage})",
        }
    decision = retrain_model(
        dataset,
        registry,
        work_dir=work_dir / "models",
        tolerance=config.promotion_tolerance,
        progress=lambda message: _log.info(message, extra={"export": export.uri}),
    )
    return {"export": export.uri, "retrained": True, **decision.as_dict()}


# Built once per cold start, never at import.


@functools.cache
def settings() -> RetrainSettings:
    """The retraining functions' settings."""
    _install_logging()
    return RetrainSettings()


@functools.cache
def storage_client() -> Any:
    """The Cloud Storage client of this process."""
    # google-cloud-storage ships no type information.
    from google.cloud import storage  # type: ignore[attr-defined]

    return storage.Client(project=settings().gcp_project)


def build_registry(config: RetrainSettings, client: Any) -> ModelRegistry:
    """The Cloud Storage model registry named by the settings."""
    from adapters.gcp.registry import GcsModelRegistry

    if not config.registry_bucket:
        raise TicketEnrichError("retraining needs TICKET_ENRICH_REGISTRY_BUCKET")
    return GcsModelRegistry(client.bucket(config.registry_bucket))


def _run(export: Export) -> dict[str, Any]:
    config, client = settings(), storage_client()
    with tempfile.TemporaryDirectory(prefix="retrain-") as tmp:
        return retrain_on_export(export, client, build_registry(config, client), config, Path(tmp))


@functions_framework.cloud_event
def retrain_on_upload(event: CloudEvent) -> None:
    """Retrain on a closed-ticket export just written to the exports bucket."""
    export = export_of(event, settings().exports_prefix)
    if export is None:
        _log.info("not an export; ignored", extra={"event_id": event["id"]})
        return
    try:
        outcome = _run(export)
    except TrainingDataError as exc:
        # A retry reads the same bytes: acknowledge, and say why nothing was trained.
        _log.error("export refused", extra={"export": export.uri, "error": str(exc)})
        return
    _log.info("retraining done", extra=outcome)


@functions_framework.http
def retrain_on_schedule(request: flask.Request) -> tuple[dict[str, Any], int]:
    """Retrain on the newest export under the prefix (Cloud Scheduler)."""
    config = settings()
    if not config.exports_bucket:
        raise TicketEnrichError("the scheduled retraining needs TICKET_ENRICH_EXPORTS_BUCKET")
    export = newest_export(storage_client(), config.exports_bucket, config.exports_prefix)
    if export is None:
        where = f"gs://{config.exports_bucket}/{config.exports_prefix}"
        return {"retrained": False, "reason": f"no export under {where}"}, 200
    try:
        outcome = _run(export)
    except TrainingDataError as exc:
        _log.error("export refused", extra={"export": export.uri, "error": str(exc)})
        return {"export": export.uri, "retrained": False, "reason": str(exc)}, 422
    _log.info("retraining done", extra=outcome)
    return outcome, 200

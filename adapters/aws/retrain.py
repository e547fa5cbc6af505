"""The retrain function (the SAM template's `RetrainFunction`): a closed-ticket export landing
under ``closed/`` (S3 ``ObjectCreated``), or the schedule, which takes the newest export there,
→ `training.retrain.retrain_model` with the S3 model registry. The challenger is promoted or
refused there, with both sets of metrics, and the decision is logged as one JSON line.

Only this function imports the training stack; it has its own package (deploy/aws/retrain/),
and no serving handler imports this module.

Every trigger is at-least-once, and the schedule fires whether or not a new export came: an
export whose data a registered version was already judged on (same SHA-256) is not trained
again.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, S3Event
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field

from adapters.aws.registry import S3ModelRegistry
from adapters.aws.runtime import aws_client
from adapters.aws.s3_batch import object_key
from adapters.aws.settings import AwsSettings
from adapters.aws.telemetry import logger
from core.errors import TicketEnrichError, TrainingDataError
from training.data import DataSpec, load_dataset
from training.model import ModelConfig
from training.retrain import retrain_model

_EXPORT_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson")
_CHUNK = 1024 * 1024


class RetrainSettings(AwsSettings):
    """`AwsSettings` plus where the exports and the registry are and how exports read (same
    prefix, `TICKET_ENRICH_`); the template sets these on the retrain function."""

    registry_bucket: str = Field("", description="Bucket of the model registry.")
    registry_prefix: str = Field("models/", description="Key prefix of the model registry.")
    closed_bucket: str | None = Field(
        None, description="Bucket the schedule looks in for exports; default: registry_bucket."
    )
    closed_prefix: str = Field("closed/", description="Closed-ticket exports land under this.")
    retrain_data_spec: dict[str, Any] = Field(
        default_factory=dict,
        description="The export's columns: training.data.DataSpec fields; {} = its defaults.",
    )
    retrain_work_dir: Path = Field(
        Path("/tmp/ticket-enrich/retrain"), description="Scratch space for one training run."
    )


def data_spec(settings: RetrainSettings) -> DataSpec:
    """The export's `DataSpec`: its defaults overridden by `retrain_data_spec`."""
    defaults = DataSpec().as_dict()
    unknown = sorted(set(settings.retrain_data_spec) - set(defaults))
    if unknown:
        raise TrainingDataError(
            f"TICKET_ENRICH_RETRAIN_DATA_SPEC names unknown fields {unknown}; "
            f"known: {sorted(defaults)}"
        )
    return DataSpec.from_dict({**defaults, **settings.retrain_data_spec})


class Retrainer:
    """What the retrain function needs, built once per container."""

    def __init__(
        self, settings: RetrainSettings, *, s3: Any = None, config: ModelConfig | None = None
    ) -> None:
        if not settings.registry_bucket:
            raise TicketEnrichError("TICKET_ENRICH_REGISTRY_BUCKET is not set")
        self.settings = settings
        self.s3 = s3 if s3 is not None else aws_client("s3", settings)
        self.registry = S3ModelRegistry(self.s3, settings.registry_bucket, settings.registry_prefix)
        self.spec = data_spec(settings)
        self.config = config

    def newest_export(self) -> tuple[str, str] | None:
        """(bucket, key) of the newest export under the closed prefix (the latest
        modification; the greater key on a tie), or None."""
        bucket = self.settings.closed_bucket or self.settings.registry_bucket
        newest: tuple[Any, str] | None = None
        try:
            pages = self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=self.settings.closed_prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    candidate = (item["LastModified"], item["Key"])
                    if _is_export(item["Key"]) and (newest is None or candidate > newest):
                        newest = candidate
        except (ClientError, BotoCoreError) as exc:
            raise TicketEnrichError(
                f"cannot list s3://{bucket}/{self.settings.closed_prefix}: {exc}"
            ) from exc
        return (bucket, newest[1]) if newest else None

    def retrain_on(self, bucket: str, key: str) -> dict[str, Any]:
        """Train on one export and judge the challenger; the decision as JSON (or why the
        export was skipped)."""
        self.settings.retrain_work_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=self.settings.retrain_work_dir))
        try:
            export = work / PurePosixPath(key).name
            self._download(bucket, key, export)
            dataset = load_dataset(export, self.spec)
            judged = [
                v
                for v in self.registry.versions()
                if v.data_sha256 == dataset.sha256 and v.decision is not None
            ]
            if judged:
                return {
                    "skipped": True,
                    "reason": f"version {judged[-1].version} was already judged on this data",
                    "export": f"s3://{bucket}/{key}",
                    "version": judged[-1].version,
                    "stage": judged[-1].stage,
                }
            decision = retrain_model(
                dataset,
                self.registry,
                work_dir=work / "models",
                tolerance=self.settings.promotion_tolerance,
                config=self.config,
                progress=lambda message: logger.debug(message),
            )
            return {"export": f"s3://{bucket}/{key}", **decision.as_dict()}
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _download(self, bucket: str, key: str, dest: Path) -> None:
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"]
            with dest.open("wb") as out:
                for chunk in body.iter_chunks(_CHUNK):
                    out.write(chunk)
        except (ClientError, BotoCoreError) as exc:
            raise TrainingDataError(f"cannot read s3://{bucket}/{key}: {exc}") from exc


def _is_export(key: str) -> bool:
    return key.lower().endswith(_EXPORT_SUFFIXES)


def build_retrainer(
    settings: RetrainSettings, *, s3: Any = None, config: ModelConfig | None = None
) -> Retrainer:
    """Build the retrainer from settings; tests pass their own client or model grid."""
    return Retrainer(settings, s3=s3, config=config)


@functools.cache
def retrainer() -> Retrainer:
    """The container's retrainer, built on the first invocation from the environment."""
    return build_retrainer(RetrainSettings())


def _exports(event: dict[str, Any], rt: Retrainer) -> list[tuple[str, str]]:
    """The exports an event asks for: the S3 records' objects under the closed prefix, or for
    the schedule the newest export."""
    if "Records" in event:
        found = []
        for record in S3Event(event).records:
            key = object_key(record)
            if key.startswith(rt.settings.closed_prefix) and _is_export(key):
                found.append((record.s3.bucket.name, key))
            else:
                logger.warning("object skipped: not an export under the closed prefix", key=key)
        return found
    tick = EventBridgeEvent(event)
    logger.info("scheduled retraining", rule=list(tick.resources), time=tick.time)
    newest = rt.newest_export()
    if newest is None:
        logger.warning("no export to train on", prefix=rt.settings.closed_prefix)
    return [newest] if newest else []


@logger.inject_lambda_context(clear_state=True)
def retrain(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """S3 ``ObjectCreated`` under the closed prefix, or the schedule's tick → a challenger
    trained, registered, and promoted or refused."""
    rt = retrainer()
    runs = []
    for bucket, key in _exports(event, rt):
        try:
            outcome = rt.retrain_on(bucket, key)
        except TicketEnrichError:
            logger.exception("retraining failed", export=f"s3://{bucket}/{key}")
            raise
        if outcome.get("skipped"):
            logger.info("export skipped", **outcome)
        else:
            logger.info(
                "challenger promoted" if outcome["promoted"] else "challenger refused", **outcome
            )
        runs.append(outcome)
    return {"runs": runs}

"""The retraining job's entry point on Azure ML: a closed-ticket export → the core's retraining
(`training.retrain.retrain_model`) → the Blob Storage model registry, where the challenger is
registered and promoted or refused. The decision is written as JSON on stdout and, when given,
into the job's output folder.

    python -m adapters.azure.retrain --data ${{inputs.closed_tickets}} \
        --decision-out ${{outputs.decision}}

Azure ML mounts or downloads the job's input, so ``--data`` is a local path: one export (the
blob that landed), or a folder of exports (the scheduled run), of which the newest by name is
read. The data spec is ``--spec``/``--preset`` if given, else the one the production model was
trained with, so a new export of the same helpdesk is read alike.

This runs in the training environment (`deploy/azure/environment/training.yml`, scikit-learn);
the Functions app only submits the job and never imports this module.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from adapters.azure.registry import BlobModelRegistry
from adapters.azure.settings import AzureSettings
from core.artifact import read_artifact
from core.errors import TicketEnrichError, TrainingDataError
from core.registry import ModelRegistry

if TYPE_CHECKING:
    from training.data import DataSpec
    from training.model import ModelConfig
    from training.retrain import RetrainDecision

_log = logging.getLogger(__name__)
DECISION_FILE = "decision.json"


def registry_from_settings(settings: AzureSettings) -> BlobModelRegistry:
    """The Blob Storage registry the settings name (connection string, else the account URL
    with `DefaultAzureCredential`), its container created on first use."""
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob import ContainerClient

    name = settings.azure_registry_container
    if settings.azure_registry_connection_string is not None:
        container = ContainerClient.from_connection_string(
            settings.azure_registry_connection_string.get_secret_value(), name
        )
    elif settings.azure_registry_account_url:
        from azure.identity import DefaultAzureCredential

        container = ContainerClient(
            settings.azure_registry_account_url, name, credential=DefaultAzureCredential()
        )
    else:
        raise TicketEnrichError(
            "the Blob Storage registry needs TICKET_ENRICH_AZURE_REGISTRY_CONNECTION_STRING "
            "or TICKET_ENRICH_AZURE_REGISTRY_ACCOUNT_URL"
        )
    with contextlib.suppress(ResourceExistsError):
        container.create_container()
    return BlobModelRegistry(container)


def export_file(data: Path) -> Path:
    """The export to train on: ``data`` itself, or the newest file (by name) of a folder."""
    if not data.is_dir():
        return data
    files = sorted(
        p
        for p in data.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(data).parts)
    )
    if not files:
        raise TrainingDataError(f"{data}: no export in the folder")
    return files[-1]


def data_spec(registry: ModelRegistry, spec_json: str | None, preset: str | None) -> DataSpec:
    """``--spec`` (a JSON object as an artifact records it), else ``--preset``, else the
    production model's spec, else the product's own export columns."""
    from training.data import PRESETS, DataSpec

    if spec_json:
        try:
            return DataSpec.from_dict(json.loads(spec_json))
        except (ValueError, KeyError, TypeError) as exc:
            raise TicketEnrichError(f"--spec is not a data spec: {exc}") from None
    if preset:
        if preset not in PRESETS:
            raise TicketEnrichError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
        return PRESETS[preset]
    champion = registry.production()
    if champion is None:
        return DataSpec()
    metadata = read_artifact(registry.fetch(champion.version)).metadata
    return DataSpec.from_dict(metadata["training_data"]["spec"])


def retrain_export(
    data: Path,
    registry: ModelRegistry,
    *,
    spec: DataSpec,
    work_dir: Path,
    tolerance: float,
    config: ModelConfig | None = None,
) -> RetrainDecision:
    """Train a challenger on the export, judge it against production, register the outcome."""
    from training.data import load_dataset
    from training.retrain import retrain_model

    export = export_file(data)
    _log.info("retraining", extra={"export": str(export)})
    return retrain_model(
        load_dataset(export, spec),
        registry,
        work_dir=work_dir,
        tolerance=tolerance,
        config=config,
        progress=lambda message: _log.info(message),
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m adapters.azure.retrain", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--data", type=Path, required=True, help="an export, or a folder of them")
    parser.add_argument("--spec", help="the export's columns as JSON (DataSpec.as_dict)")
    parser.add_argument("--preset", help="a column preset of training.data.PRESETS")
    parser.add_argument(
        "--tolerance", type=float, help="default: TICKET_ENRICH_PROMOTION_TOLERANCE"
    )
    parser.add_argument("--work-dir", type=Path, help="where the challenger is trained")
    parser.add_argument("--decision-out", type=Path, help="a folder for decision.json")
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    settings: AzureSettings | None = None,
    config: ModelConfig | None = None,
) -> int:
    """Run one retraining: 0 whether the challenger was promoted or refused (the decision says
    which), 2 when the data, the registry or the options are wrong."""
    from adapters.azure.logs import install_json_logging

    install_json_logging()
    args = _parser().parse_args(argv)
    azure = settings if settings is not None else AzureSettings()
    try:
        registry = registry_from_settings(azure)
        spec = data_spec(registry, args.spec, args.preset)
        tolerance = azure.promotion_tolerance if args.tolerance is None else args.tolerance
        with tempfile.TemporaryDirectory(prefix="retrain-") as scratch:
            decision = retrain_export(
                args.data,
                registry,
                spec=spec,
                work_dir=args.work_dir or Path(scratch),
                tolerance=tolerance,
                config=config,
            )
    except TicketEnrichError as exc:
        _log.error("retraining failed", extra={"error": str(exc)})
        return 2
    result = json.dumps(decision.as_dict())
    if args.decision_out is not None:
        args.decision_out.mkdir(parents=True, exist_ok=True)
        (args.decision_out / DECISION_FILE).write_text(result + "\n")
    sys.stdout.write(result + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

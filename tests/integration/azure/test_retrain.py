"""Retraining on Azure, against Azurite: a closed-ticket export lands in Blob Storage, the
Functions app's Event Grid trigger submits the retraining job (to a double of `MLClient`: Azure
ML has no emulator), and the job's own command runs here as Azure ML would run it: its input
downloaded from Azurite, `adapters.azure.retrain` training a challenger and registering it in
the Blob Storage registry on Azurite, promoted, or refused when it is worse."""

from __future__ import annotations

import json
import shlex
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient

from adapters.azure import functions as handlers
from adapters.azure import retrain
from adapters.azure.registry import BlobModelRegistry
from adapters.azure.settings import AzureSettings
from adapters.local.cli import main
from core.enricher import load_enricher
from deploy.azure import rollout
from deploy.azure.command import stage_retrain_job
from deploy.azure.traffic import apply
from tests.integration.azure.conftest import Azurite
from tests.support import SMALL_CONFIG, SMALL_SPEC, write_tickets
from tests.unit.azure.fake_mlclient import Deployment, Endpoint, FakeMLClient

pytestmark = [
    pytest.mark.filterwarnings("ignore::marshmallow.warnings.RemovedInMarshmallow4Warning"),
    pytest.mark.filterwarnings("ignore::marshmallow.warnings.ChangedInMarshmallow4Warning"),
]
EVENT = Path(__file__).resolve().parents[2] / "events" / "azure" / "eventgrid_blob_created.json"
# Regularised into predicting the majority class: a challenger that must not replace anything.
CRIPPLED = replace(SMALL_CONFIG, c_grid=(1e-4,), class_weights=(None,))


@pytest.fixture
def storage(azurite: Azurite) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(azurite.connection_string)


@pytest.fixture
def exports(storage: BlobServiceClient) -> ContainerClient:
    return storage.create_container(f"closed-tickets-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def settings(azurite: Azurite, exports: ContainerClient) -> AzureSettings:
    return AzureSettings(
        azure_registry_connection_string=azurite.connection_string,
        azure_registry_container=f"models-{uuid.uuid4().hex[:8]}",
        azure_closed_tickets_container=exports.container_name,
    )


def _registry(storage: BlobServiceClient, settings: AzureSettings) -> BlobModelRegistry:
    return BlobModelRegistry(storage.get_container_client(settings.azure_registry_container))


def _blob_created(exports: ContainerClient, name: str) -> func.EventGridEvent:
    """The recorded BlobCreated event, for the blob Azurite now holds (its URL and ETag)."""
    raw = json.loads(EVENT.read_text())
    properties = exports.get_blob_client(name).get_blob_properties()
    blob_url = exports.get_blob_client(name).url
    return func.EventGridEvent(
        id=raw["id"],
        data={
            **raw["data"],
            "url": blob_url,
            "eTag": properties.etag,
            "contentLength": properties.size,
        },
        topic=raw["topic"],
        subject=f"/blobServices/default/containers/{exports.container_name}/blobs/{name}",
        event_type=raw["eventType"],
        event_time=None,
        data_version=raw["dataVersion"],
    )


def _run_like_azure_ml(
    job: Any,
    exports: ContainerClient,
    settings: AzureSettings,
    work: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[int, dict[str, Any]]:
    """Run the submitted job's step: its uri_file input downloaded (mode: download), its
    output a local folder, its environment variables read by AzureSettings, its command."""
    step = job.jobs["retrain"]
    source = job.inputs["closed_tickets"]
    assert source.mode == "download"
    name = source.path.removeprefix(exports.url + "/")
    local = work / "inputs" / Path(name).name
    local.parent.mkdir(parents=True)
    local.write_bytes(exports.download_blob(name).readall())
    decision_dir = work / "outputs" / "decision"
    command = step.component.command.replace("${{inputs.closed_tickets}}", str(local))
    command = command.replace("${{outputs.decision}}", str(decision_dir))
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "adapters.azure.retrain"]
    # The job's environment names real settings; Azurite's stand in for the Azure account.
    for key, value in (step.environment_variables or {}).items():
        monkeypatch.setenv(key, value)
    from_job = AzureSettings()
    account_url = step.environment_variables["TICKET_ENRICH_AZURE_REGISTRY_ACCOUNT_URL"]
    assert from_job.azure_registry_account_url == account_url
    run_with = from_job.model_copy(
        update={
            "azure_registry_connection_string": settings.azure_registry_connection_string,
            "azure_registry_container": settings.azure_registry_container,
        }
    )
    code = retrain.main(
        [*argv[3:], "--spec", json.dumps(SMALL_SPEC.as_dict())],
        settings=run_with,
        config=SMALL_CONFIG,
    )
    written = decision_dir / retrain.DECISION_FILE
    return code, json.loads(written.read_text()) if written.exists() else {}


def test_an_export_landing_retrains_and_promotes_in_the_blob_registry(
    storage: BlobServiceClient,
    exports: ContainerClient,
    settings: AzureSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    export = write_tickets(tmp_path / "export.jsonl", rows=160)
    exports.upload_blob("exports/2026-05-04.jsonl", export.read_bytes())
    client = FakeMLClient()
    submitter = handlers.RetrainSubmitter(
        settings, client, stage_retrain_job(tmp_path / "app" / "retrain")
    )
    landed = _blob_created(exports, "exports/2026-05-04.jsonl")
    name = handlers.submit_retrain(landed, submitter)
    assert name is not None
    # Event Grid delivers at least once: the same event again submits nothing new.
    assert handlers.submit_retrain(landed, submitter) == name
    assert list(client.jobs_created) == [name]

    code, decision = _run_like_azure_ml(
        client.jobs_created[name], exports, settings, tmp_path / "job", monkeypatch
    )
    assert code == 0
    assert decision["promoted"] is True and decision["champion"] is None
    registry = _registry(storage, settings)
    production = registry.production()
    assert production is not None and production.version == decision["challenger"]
    assert production.decision == decision
    served = load_enricher(registry.fetch(production.version))
    assert served.model_version == production.version

    # The promoted version goes to the endpoint as a canary beside the live deployment.
    monkeypatch.setattr(rollout, "ml_client", lambda args, settings: client)
    apply(client, Endpoint("ticket-enrich"), Deployment(tags={"model_version": "v0"}), 10)
    for key, value in {
        "CONNECTION_STRING": str(settings.azure_registry_connection_string.get_secret_value()),
        "CONTAINER": settings.azure_registry_container,
    }.items():
        monkeypatch.setenv(f"TICKET_ENRICH_AZURE_REGISTRY_{key}", value)
    argv = ["rollout", "azure", "start", "--version", production.version, "--share", "20"]
    assert main([*argv, "--build-dir", str(tmp_path / "build")]) == 0
    assert client.endpoints["ticket-enrich"].traffic == {"blue": 80, "green": 20}
    assert client.deployments["green"].tags["model_version"] == production.version


def test_a_worse_challenger_is_refused_and_production_stays(
    storage: BlobServiceClient,
    settings: AzureSettings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The scheduled run's input: the exports' folder; the newest by name is read.
    folder = tmp_path / "closed-tickets"
    (folder / "exports").mkdir(parents=True)
    write_tickets(folder / "exports" / "2026-04-27.jsonl", rows=40, seed=1)
    write_tickets(folder / "exports" / "2026-05-04.jsonl", rows=160)
    assert retrain.export_file(folder).name == "2026-05-04.jsonl"
    spec = ["--spec", json.dumps(SMALL_SPEC.as_dict())]

    first = retrain.main(["--data", str(folder), *spec], settings=settings, config=SMALL_CONFIG)
    assert first == 0
    registry = _registry(storage, settings)
    champion = registry.production()
    assert champion is not None
    capsys.readouterr()

    # No --spec: the production model's own spec reads the export.
    worse = retrain.main(["--data", str(folder)], settings=settings, config=CRIPPLED)
    assert worse == 0
    decision = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert decision["promoted"] is False and decision["reason"].startswith("refused: ")
    assert "urgent_recall" in decision["reason"]
    assert decision["metrics"]["challenger"]["urgent_recall"] == 0.0
    refused = load_enricher(registry.fetch(decision["challenger"]))
    assert refused.metadata["training_data"]["spec"] == SMALL_SPEC.as_dict()
    assert decision["champion"] == champion.version
    assert registry.get(decision["challenger"]).stage == "candidate"
    assert registry.get(decision["challenger"]).decision == decision
    assert registry.production() == champion


def test_bad_input_fails_the_job(settings: AzureSettings, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert retrain.main(["--data", str(tmp_path / "empty")], settings=settings) == 2
    unreadable = tmp_path / "export.jsonl"
    unreadable.write_text('{"subject": "no label, no date"}\n')
    assert retrain.main(["--data", str(unreadable)], settings=settings) == 2
    nowhere = AzureSettings(azure_registry_connection_string=None, azure_registry_account_url=None)
    assert retrain.main(["--data", str(unreadable)], settings=nowhere) == 2

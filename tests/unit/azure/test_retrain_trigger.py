"""The retraining trigger: an Event Grid BlobCreated event for a closed-ticket export → the Azure
ML job submitted through `MLClient.jobs.create_or_update`, once per blob version. Azure ML has no
local emulator, so the client is a double (`fake_mlclient`); the job itself is the real SDK
entity loaded from the staged retrain-job.yml, checked with the SDK's own request building.
The event is Microsoft's documented BlobCreated sample, for the closed-tickets container."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.core.exceptions import HttpResponseError

from adapters.azure import function_app
from adapters.azure import functions as handlers
from adapters.azure.settings import AzureSettings
from core.errors import TicketEnrichError
from deploy.azure.command import stage_retrain_job
from tests.unit.azure.fake_mlclient import FakeMLClient

pytestmark = [
    pytest.mark.filterwarnings("ignore::marshmallow.warnings.RemovedInMarshmallow4Warning"),
    pytest.mark.filterwarnings("ignore::marshmallow.warnings.ChangedInMarshmallow4Warning"),
]
EVENT = Path(__file__).resolve().parents[2] / "events" / "azure" / "eventgrid_blob_created.json"


def event(**changes: Any) -> func.EventGridEvent:
    """The recorded event as the Functions host hands it over, with ``changes`` to its data
    (``subject``/``event_type`` change the envelope)."""
    raw = json.loads(EVENT.read_text())
    subject = changes.pop("subject", raw["subject"])
    event_type = changes.pop("event_type", raw["eventType"])
    return func.EventGridEvent(
        id=raw["id"],
        data={**raw["data"], **changes},
        topic=raw["topic"],
        subject=subject,
        event_type=event_type,
        event_time=None,
        data_version=raw["dataVersion"],
    )


@pytest.fixture(scope="module")
def job_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return stage_retrain_job(tmp_path_factory.mktemp("functions") / "retrain")


@pytest.fixture
def submitter(job_file: Path) -> handlers.RetrainSubmitter:
    return handlers.RetrainSubmitter(AzureSettings(), FakeMLClient(), job_file)


def test_an_export_submits_the_job_with_the_blob_as_its_input(
    submitter: handlers.RetrainSubmitter,
) -> None:
    landed = event()
    name = handlers.submit_retrain(landed, submitter)
    data = landed.get_json()
    assert name == handlers.retrain_job_name(data["url"], data["eTag"])
    job = submitter.client.jobs_created[name]
    assert job.tags["export"] == data["url"]
    # What MLClient would send, built by the SDK itself: the export as a downloaded uri_file.
    rest = job._to_rest_object().as_dict()["properties"]
    assert rest["inputs"]["closed_tickets"] == {
        "uri": data["url"],
        "mode": "Download",
        "jobInputType": "uri_file",
    }
    step = job.jobs["retrain"]
    assert step.component.command.startswith(
        "python -m adapters.azure.retrain --data ${{inputs.closed_tickets}}"
    )
    code = Path(step.component.base_path) / step.component.code
    assert (code / "adapters" / "azure" / "retrain.py").is_file()
    assert (code / "training" / "retrain.py").is_file()
    assert not (code / "training" / "data").exists()
    pip = step.component.environment.conda_file["dependencies"][-1]["pip"]
    assert any(p.startswith("scikit-learn") for p in pip)


def test_the_same_event_twice_submits_one_job_and_a_new_upload_another(
    submitter: handlers.RetrainSubmitter,
) -> None:
    first = handlers.submit_retrain(event(), submitter)
    again = handlers.submit_retrain(event(), submitter)
    assert first == again
    assert [c[0] for c in submitter.client.calls] == ["job"]
    replaced = handlers.submit_retrain(event(eTag="0x8D4BCC2E4835CD1"), submitter)
    assert replaced != first
    assert len(submitter.client.jobs_created) == 2


def test_a_job_created_by_a_concurrent_delivery_counts_as_submitted(
    submitter: handlers.RetrainSubmitter, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = submitter.client.jobs
    create = jobs.create_or_update

    def raced(job: Any) -> Any:
        create(job)  # the other delivery won...
        raise HttpResponseError("job already exists")  # ...and this one is refused

    monkeypatch.setattr(jobs, "create_or_update", raced)
    name = handlers.submit_retrain(event(), submitter)
    assert name in submitter.client.jobs_created


def test_a_failed_submission_raises_so_event_grid_delivers_again(
    submitter: handlers.RetrainSubmitter, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(job: Any) -> Any:
        raise HttpResponseError("service unavailable")

    monkeypatch.setattr(submitter.client.jobs, "create_or_update", down)
    with pytest.raises(HttpResponseError):
        handlers.submit_retrain(event(), submitter)


@pytest.mark.parametrize(
    "changes",
    [
        {"subject": "/blobServices/default/containers/scoring-logs/blobs/x.jsonl"},
        {"event_type": "Microsoft.Storage.BlobDeleted"},
        {"contentLength": 0},
    ],
)
def test_other_events_submit_nothing(
    submitter: handlers.RetrainSubmitter, changes: dict[str, Any]
) -> None:
    assert handlers.submit_retrain(event(**changes), submitter) is None
    assert submitter.client.calls == []


def test_the_registered_function_submits_through_the_worker_submitter(
    submitter: handlers.RetrainSubmitter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handlers, "retrain_submitter", lambda: submitter)
    # The host indexes an app once (a second get_functions() refuses): index a fresh one.
    fresh = importlib.reload(function_app).app
    functions = {f.get_function_name(): f for f in fresh.get_functions()}
    trigger = functions["retrain_on_export"]
    bindings = json.loads(trigger.get_function_json())["bindings"]
    assert [b["type"] for b in bindings] == ["eventGridTrigger"]
    trigger.get_user_function()(event())
    assert len(submitter.client.jobs_created) == 1


def test_the_submitter_needs_the_workspace(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SUBSCRIPTION_ID", "RESOURCE_GROUP", "ML_WORKSPACE"):
        monkeypatch.delenv(f"TICKET_ENRICH_AZURE_{name}", raising=False)
    handlers.retrain_submitter.cache_clear()
    with pytest.raises(TicketEnrichError, match="TICKET_ENRICH_AZURE_ML_WORKSPACE"):
        handlers.retrain_submitter()

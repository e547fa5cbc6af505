"""`ticket-enrich deploy azure`: the blue/green logic against a fake `MLClient`, the YAML
loaded and validated offline by `azure-ai-ml`, and the dry run end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from adapters.local.cli import main
from core.errors import TicketEnrichError
from deploy.azure.command import (
    HERE,
    apply,
    load_definitions,
    plan_rollout,
    promote,
    promoted,
    stage_functions_app,
)
from tests.unit.azure.fake_mlclient import Deployment, Endpoint, FakeMLClient

# azure-ai-ml's schemas still use marshmallow 3 idioms that marshmallow warns about.
pytestmark = [
    pytest.mark.filterwarnings("ignore::marshmallow.warnings.RemovedInMarshmallow4Warning"),
    pytest.mark.filterwarnings("ignore::marshmallow.warnings.ChangedInMarshmallow4Warning"),
]
SERVING_FORBIDDEN = ("scikit-learn", "sklearn", "scipy", "pandas", "numpy")


@pytest.mark.parametrize(
    ("traffic", "deployment", "split"),
    [
        ({}, "blue", {"blue": 100}),
        ({"blue": 0}, "blue", {"blue": 100}),
        ({"blue": 100}, "green", {"blue": 90, "green": 10}),
        ({"green": 100}, "blue", {"green": 90, "blue": 10}),
        # A canary already beside blue is replaced by the newer one, split unchanged.
        ({"blue": 90, "green": 10}, "green", {"blue": 90, "green": 10}),
    ],
)
def test_plan_rollout(traffic: dict[str, int], deployment: str, split: dict[str, int]) -> None:
    rollout = plan_rollout(traffic)
    assert rollout.deployment == deployment
    assert rollout.traffic == split


def test_plan_rollout_refuses_a_share_outside_1_to_99() -> None:
    with pytest.raises(TicketEnrichError):
        plan_rollout({"blue": 100}, 100)


def test_promote_moves_everything_to_the_canary() -> None:
    assert promoted({"blue": 90, "green": 10}) == {"blue": 0, "green": 100}
    with pytest.raises(TicketEnrichError):
        promoted({"blue": 100})


def test_first_deploy_creates_the_endpoint_and_blue_then_green_takes_10_percent() -> None:
    client = FakeMLClient()
    first = apply(client, Endpoint("ticket-enrich"), Deployment(), 10)
    assert first.deployment == "blue"
    assert client.endpoints["ticket-enrich"].traffic == {"blue": 100}
    assert client.calls == [
        ("endpoint", "ticket-enrich", {}),
        ("deployment", "blue", {}),
        ("endpoint", "ticket-enrich", {"blue": 100}),
    ]

    client.calls.clear()
    second = apply(client, Endpoint("ticket-enrich"), Deployment(), 10)
    assert second.deployment == "green" and second.live == "blue"
    assert client.endpoints["ticket-enrich"].traffic == {"blue": 90, "green": 10}
    # The new deployment exists before any traffic is sent to it; the endpoint is not recreated.
    assert [c[0] for c in client.calls] == ["deployment", "endpoint"]
    assert set(client.deployments) == {"blue", "green"}


def test_yaml_loads_and_validates_offline(small_model_dir: Path, tmp_path: Path) -> None:
    endpoint, deployment = load_definitions(
        model_dir=small_model_dir, code_dir=tmp_path, instance_count=3
    )
    assert endpoint.name == "ticket-enrich" and endpoint.auth_mode == "key"
    assert deployment.endpoint_name == "ticket-enrich"
    assert deployment.instance_type and deployment.instance_count == 3
    assert deployment.code_configuration.scoring_script == "adapters/azure/score.py"
    assert deployment.request_settings.request_timeout_ms > 0
    for probe in (deployment.liveness_probe, deployment.readiness_probe):
        # Time for the container and init() before a restart: ≥ 2 minutes of failures.
        assert probe.initial_delay >= 10
        assert probe.period * probe.failure_threshold >= 120
    assert Path(deployment.model.path) == small_model_dir.resolve()


def _pip_requirements(conda: dict[str, Any]) -> list[str]:
    for dependency in conda["dependencies"]:
        if isinstance(dependency, dict):
            return list(dependency["pip"])
    return []


def test_serving_environments_have_the_runtime_and_no_training_stack(tmp_path: Path) -> None:
    _, deployment = load_definitions(model_dir=tmp_path, code_dir=tmp_path)
    conda = deployment.environment.conda_file
    assert "python=3.11" in conda["dependencies"]
    environments = {
        "conda.yml": [r.lower() for r in _pip_requirements(conda)],
        "functions/requirements.txt": [
            line.strip().lower()
            for line in (HERE / "functions" / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ],
    }
    import tomllib

    project = tomllib.loads((HERE.parents[1] / "pyproject.toml").read_text())["project"]
    runtime = [d.split(">")[0].split("=")[0].lower() for d in project["dependencies"]]
    for name, requirements in environments.items():
        names = {r.split(">")[0].split("=")[0].split("<")[0] for r in requirements}
        assert not names & set(SERVING_FORBIDDEN), name
        assert set(runtime) <= names, f"{name} lacks {set(runtime) - names}"
    assert "azureml-inference-server-http" in {r.split("=")[0] for r in environments["conda.yml"]}


def test_dry_run_prints_the_plan_and_stages_the_code(
    small_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["deploy", "azure", "--dry-run", "--model", str(small_model_dir),
         "--build-dir", str(tmp_path)]
    )  # fmt: skip
    assert code == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["endpoint"]["name"] == "ticket-enrich"
    assert plan["traffic"]["no_deployment_yet"]["traffic"] == {"blue": 100}
    assert plan["traffic"]["blue_live"] == {
        "deployment": "green",
        "traffic": {"blue": 90, "green": 10},
    }
    assert plan["deployment"]["liveness_probe"]["initial_delay"] >= 10
    assert plan["deployment"]["tags"]["model_version"] == plan["model_version"]
    schedule = plan["retrain_schedule"]
    assert schedule["trigger"]["type"].lower() == "recurrence"
    assert schedule["trigger"]["frequency"] == "week"
    step = schedule["job"]["steps"]["retrain"]
    assert step["command"].startswith("python -m adapters.azure.retrain --data ")
    assert Path(step["code"]) == tmp_path / "retrain" / "code"
    staged = tmp_path / "code"
    assert (staged / "adapters" / "azure" / "score.py").is_file()
    assert (staged / "core" / "enricher.py").is_file()
    assert not (staged / "training").exists() and not (staged / "tests").exists()
    assert not (staged / "adapters" / "local").exists()


def test_staged_functions_app_indexes_both_functions(small_model_dir: Path, tmp_path: Path) -> None:
    app_root = stage_functions_app(tmp_path / "functions", small_model_dir)
    assert (app_root / "model" / "checksums.json").is_file()
    assert (app_root / "host.json").is_file()
    # As the Functions host does: import function_app.py from the app root, index `app`.
    listing = subprocess.run(
        [
            sys.executable,
            "-c",
            "import function_app, json, adapters; "
            "from adapters.azure.functions import STAGED_RETRAIN_JOB as job; "
            "print(json.dumps([adapters.__file__, str(job), "
            "sorted(f.get_function_name() for f in function_app.app.get_functions())]))",
        ],
        cwd=app_root,
        capture_output=True,
        text=True,
        check=True,
    )
    module_file, job_file, names = json.loads(listing.stdout)
    # The retraining trigger finds the job definition where the staging put it.
    assert Path(job_file) == app_root.resolve() / "retrain" / "retrain-job.yml"
    assert Path(module_file).is_relative_to(app_root)
    assert names == ["drain_outbox", "get_ticket", "retrain_on_export", "submit_ticket"]
    # The retraining job travels with the app, to be uploaded to Azure ML; the app never
    # imports its training code (scikit-learn is not in requirements.txt).
    assert (app_root / "retrain" / "retrain-job.yml").is_file()
    assert (app_root / "retrain" / "code" / "training" / "retrain.py").is_file()


def test_promote_sends_all_traffic_to_the_canary() -> None:
    client = FakeMLClient()
    apply(client, Endpoint("ticket-enrich"), Deployment(), 10)
    apply(client, Endpoint("ticket-enrich"), Deployment(), 10)
    assert promote(client, "ticket-enrich") == {"blue": 0, "green": 100}
    # The next version then goes to blue, beside the now-live green.
    assert apply(client, Endpoint("ticket-enrich"), Deployment(), 10).traffic == {
        "green": 90,
        "blue": 10,
    }


def test_deploy_without_a_workspace_stops_before_contacting_azure(
    small_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("SUBSCRIPTION_ID", "RESOURCE_GROUP", "ML_WORKSPACE"):
        monkeypatch.delenv(f"TICKET_ENRICH_AZURE_{name}", raising=False)
    code = main(["deploy", "azure", "--model", str(small_model_dir), "--build-dir", str(tmp_path)])
    assert code == 2
    assert "--subscription" in capsys.readouterr().err

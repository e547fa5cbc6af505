"""`ticket-enrich deploy gcp --dry-run` with a registry and an exports bucket: the retraining
functions' requests, their own source bundle (with scikit-learn, which the enrichment bundle
never gets) and the Cloud Scheduler job, built with the client libraries' types, no network."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from deploy.gcp.bundle import requirements, retrain_requirements

FORBIDDEN = {"scikit-learn", "scipy", "pandas", "numpy", "joblib"}


def _names(listed: list[str]) -> set[str]:
    return {r.split(">")[0].split("<")[0].split("=")[0].lower() for r in listed}


@pytest.fixture(scope="module")
def dry_run(
    small_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bundle") / "gcp.zip"
    done = subprocess.run(
        [
            sys.executable, "-m", "adapters.local.cli", "deploy", "gcp", "--dry-run",
            "--project", "demo-ticket-enrich", "--region", "europe-west1",
            "--model", str(small_model_dir), "--bundle", str(out),
            "--registry-bucket", "demo-registry", "--exports-bucket", "demo-exports",
            "--exports-region", "eu", "--scheduler-service-account",
            "scheduler@demo-ticket-enrich.iam.gserviceaccount.com",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "TICKET_ENRICH_RETRAIN_PRESET": "hadoop"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = done.stdout
    return out, json.loads(text[text.index("{") : text.rindex("}") + 1])


def test_the_retraining_functions_are_created_with_their_triggers(
    dry_run: tuple[Path, dict[str, Any]],
) -> None:
    _, printed = dry_run
    requests = {r["create"]["functionId"]: r["create"]["function"] for r in printed["requests"]}
    assert {"ticket-enrich-firestore", "ticket-enrich-drain"} <= set(requests)
    upload = requests["ticket-enrich-retrain-upload"]
    assert upload["buildConfig"]["entryPoint"] == "retrain_on_upload"
    trigger = upload["eventTrigger"]
    assert trigger["eventType"] == "google.cloud.storage.object.v1.finalized"
    assert trigger["eventFilters"] == [{"attribute": "bucket", "value": "demo-exports"}]
    assert trigger["triggerRegion"] == "eu"
    assert trigger["retryPolicy"] == "RETRY_POLICY_RETRY"
    schedule = requests["ticket-enrich-retrain-schedule"]
    assert schedule["buildConfig"]["entryPoint"] == "retrain_on_schedule"
    assert "eventTrigger" not in schedule
    for function, timeout in ((upload, 540), (schedule, 1800)):
        service = function["serviceConfig"]
        assert service["timeoutSeconds"] == timeout
        assert service["availableMemory"] == "2Gi"
        assert service["maxInstanceCount"] == 1
        assert service["maxInstanceRequestConcurrency"] == 1
        assert service["environmentVariables"] == {
            "TICKET_ENRICH_EXPORTS_BUCKET": "demo-exports",
            "TICKET_ENRICH_EXPORTS_PREFIX": "closed/",
            "TICKET_ENRICH_GCP_PROJECT": "demo-ticket-enrich",
            "TICKET_ENRICH_PROMOTION_TOLERANCE": "0.01",
            "TICKET_ENRICH_REGISTRY_BUCKET": "demo-registry",
            "TICKET_ENRICH_RETRAIN_PRESET": "hadoop",
        }
        assert "secretEnvironmentVariables" not in service


def test_the_schedule_calls_the_scheduled_function_with_an_oidc_token(
    dry_run: tuple[Path, dict[str, Any]],
) -> None:
    _, printed = dry_run
    job = printed["scheduler"]["job"]
    assert printed["scheduler"]["parent"] == "projects/demo-ticket-enrich/locations/europe-west1"
    assert job["name"].endswith("/jobs/ticket-enrich-retrain")
    assert job["schedule"] == "0 3 * * 1" and job["timeZone"] == "Etc/UTC"
    target = job["httpTarget"]
    assert target["httpMethod"] == "POST"
    assert target["oidcToken"] == {
        "serviceAccountEmail": "scheduler@demo-ticket-enrich.iam.gserviceaccount.com",
        "audience": "<url of ticket-enrich-retrain-schedule>",
    }
    assert job["attemptDeadline"] == "1800s"


def test_only_the_retraining_bundle_has_the_training_stack(
    dry_run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    bundle, printed = dry_run
    retrain = bundle.with_name("gcp-retrain.zip")
    names = set(zipfile.ZipFile(retrain).namelist())
    assert {
        "main.py",
        "training/retrain.py",
        "adapters/gcp/retrain.py",
        "core/registry.py",
    } <= names
    assert not any(n.startswith(("model/", "adapters/helpdesk/", "adapters/local/")) for n in names)
    assert "training/spark.py" not in names
    listed = zipfile.ZipFile(retrain).read("requirements.txt").decode().split()
    assert listed == printed["retrain_requirements"] == retrain_requirements()
    assert {"scikit-learn", "functions-framework", "google-cloud-storage"} <= _names(listed)
    assert "google-cloud-run" not in _names(listed)
    served = zipfile.ZipFile(bundle).read("requirements.txt").decode().split()
    assert served == printed["requirements"] == requirements()
    assert not _names(served) & FORBIDDEN
    assert not _names(served) & {"google-cloud-run", "google-cloud-scheduler"}
    assert not any(n.startswith("training/") for n in zipfile.ZipFile(bundle).namelist())

    # Its main.py finds both entry points in its own files.
    zipfile.ZipFile(retrain).extractall(tmp_path)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import main; "
        "assert main.__file__.startswith(sys.argv[1]); "
        "print(sorted(n for n in ('retrain_on_upload', 'retrain_on_schedule') if hasattr(main, n)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['retrain_on_schedule', 'retrain_on_upload']"


def test_a_real_deploy_of_retraining_needs_the_scheduler_identity(
    small_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from adapters.local.cli import main

    code = main(
        [
            "deploy", "gcp", "--project", "p", "--model", str(small_model_dir),
            "--registry-bucket", "r", "--exports-bucket", "e",
        ]
    )  # fmt: skip
    assert code == 2
    assert "--scheduler-service-account" in capsys.readouterr().err

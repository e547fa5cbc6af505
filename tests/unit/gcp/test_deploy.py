"""`ticket-enrich deploy gcp --dry-run`: the bundle and the Cloud Functions v2 requests it prints,
built with google-cloud-functions' types and no network."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from adapters.local.cli import main
from deploy.gcp.bundle import requirements

FORBIDDEN = {"scikit-learn", "scipy", "pandas", "numpy", "joblib"}


@pytest.fixture(scope="module")
def dry_run(
    small_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any], str]:
    out = tmp_path_factory.mktemp("bundle") / "gcp.zip"
    capture = tmp_path_factory.mktemp("stdout") / "stdout.txt"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "adapters.local.cli",
            "deploy",
            "gcp",
            "--dry-run",
            "--project",
            "demo-ticket-enrich",
            "--region",
            "europe-west1",
            "--model",
            str(small_model_dir),
            "--bundle",
            str(out),
            "--rtdb-instance",
            "demo-rtdb",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "TICKET_ENRICH_DELIVER": "true"},
    )
    assert done.returncode == 0, done.stderr
    capture.write_text(done.stdout)
    text = done.stdout
    start, end = text.index("{"), text.rindex("}") + 1
    return out, json.loads(text[start:end]), text


def test_the_bundle_holds_the_function_core_adapters_and_verified_model(
    dry_run: tuple[Path, dict[str, Any], str],
) -> None:
    bundle, _, _ = dry_run
    names = set(zipfile.ZipFile(bundle).namelist())
    assert {"main.py", "requirements.txt", "core/enricher.py", "adapters/gcp/main.py"} <= names
    assert {"adapters/helpdesk/webhook.py", "model/checksums.json", "model/weights.bin"} <= names
    assert not any(
        n.startswith(("adapters/local/", "adapters/aws/", "adapters/azure/", "training/"))
        for n in names
    )


def test_the_bundle_requirements_have_no_training_stack(
    dry_run: tuple[Path, dict[str, Any], str],
) -> None:
    bundle, printed, _ = dry_run
    listed = zipfile.ZipFile(bundle).read("requirements.txt").decode().split()
    names = {r.split(">")[0].split("<")[0].split("=")[0].lower() for r in listed}
    assert not names & FORBIDDEN
    assert {
        "functions-framework",
        "google-events",
        "google-cloud-firestore",
        "firebase-admin",
    } <= names
    assert "google-cloud-functions" not in names
    assert listed == printed["requirements"] == requirements()


def test_the_bundle_runs_from_its_own_files(
    dry_run: tuple[Path, dict[str, Any], str], tmp_path: Path
) -> None:
    bundle, _, _ = dry_run
    zipfile.ZipFile(bundle).extractall(tmp_path)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import main, core, adapters.gcp.main as m; "
        "assert main.__file__.startswith(sys.argv[1]) and core.__file__.startswith(sys.argv[1]); "
        "from core import load_enricher; load_enricher(sys.argv[1] + '/model'); "
        "print(sorted(n for n in ('on_ticket_created', 'on_ticket_written', 'drain_outbox') if hasattr(main, n)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['drain_outbox', 'on_ticket_created', 'on_ticket_written']"


def test_the_printed_requests_create_the_three_functions(
    dry_run: tuple[Path, dict[str, Any], str],
) -> None:
    _, printed, text = dry_run
    requests = {r["create"]["functionId"]: r for r in printed["requests"]}
    assert set(requests) == {"ticket-enrich-firestore", "ticket-enrich-rtdb", "ticket-enrich-drain"}
    for request in requests.values():
        assert request["create"]["parent"] == "projects/demo-ticket-enrich/locations/europe-west1"
        assert request["create"]["function"]["buildConfig"]["runtime"] == "python311"
        assert request["update_mask_if_it_exists"]
        env = request["create"]["function"]["serviceConfig"]["environmentVariables"]
        assert env["TICKET_ENRICH_MODEL_DIR"] == "model"
        secrets = request["create"]["function"]["serviceConfig"]["secretEnvironmentVariables"]
        assert secrets == [
            {
                "key": "TICKET_ENRICH_HELPDESK_WEBHOOK_SECRET",
                "projectId": "demo-ticket-enrich",
                "secret": "ticket-enrich-helpdesk-webhook-secret",
                "version": "latest",
            }
        ]
    firestore = requests["ticket-enrich-firestore"]["create"]["function"]
    assert firestore["buildConfig"]["entryPoint"] == "on_ticket_created"
    trigger = firestore["eventTrigger"]
    assert trigger["eventType"] == "google.cloud.firestore.document.v1.created"
    assert {
        "attribute": "document",
        "value": "tickets/{ticketId}",
        "operator": "match-path-pattern",
    } in trigger["eventFilters"]
    assert trigger["retryPolicy"] == "RETRY_POLICY_RETRY"
    rtdb = requests["ticket-enrich-rtdb"]["create"]["function"]["eventTrigger"]
    assert rtdb["eventType"] == "google.firebase.database.ref.v1.written"
    assert {"attribute": "instance", "value": "demo-rtdb"} in rtdb["eventFilters"]
    assert "eventTrigger" not in requests["ticket-enrich-drain"]["create"]["function"]
    assert "firebase deploy" in text and "gcloud scheduler jobs create http" in text


def test_deploy_without_a_project_says_so(
    small_model_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TICKET_ENRICH_GCP_PROJECT", raising=False)
    assert main(["deploy", "gcp", "--dry-run", "--model", str(small_model_dir)]) == 2
    assert "--project" in capsys.readouterr().err


def test_the_dead_letter_topic_is_declared_and_given_to_the_functions(
    dry_run: tuple[Path, dict[str, Any], str],
) -> None:
    _, printed, text = dry_run
    topic = "projects/demo-ticket-enrich/topics/ticket-enrich-rejected"
    assert printed["dead_letters"]["topic"]["name"] == topic
    hold = printed["dead_letters"]["subscription"]
    assert hold["topic"] == topic
    # Kept as long as Pub/Sub keeps anything, and never expiring for want of readers: a topic
    # without a subscription would drop what is published to it.
    assert hold["messageRetentionDuration"] == "604800s" and hold["expirationPolicy"] == {}
    for request in printed["requests"]:
        env = request["create"]["function"]["serviceConfig"]["environmentVariables"]
        assert env["TICKET_ENRICH_DEAD_LETTER_TOPIC"] == "ticket-enrich-rejected"
    assert "roles/pubsub.publisher" in text

"""The enrichment functions import what serving needs and nothing that only deploy or
retraining uses (issue 24): checked in a fresh interpreter, as a cold start imports."""

from __future__ import annotations

import json
import subprocess
import sys

# Retraining and deploy code, the training stack, and the clients only they use.
NOT_FOR_SERVING = (
    "adapters.gcp.retrain",
    "deploy",
    "training",
    "sklearn",
    "scipy",
    "numpy",
    "google.cloud.storage",
    "google.cloud.run_v2",
    "google.cloud.scheduler_v1",
    "google.cloud.functions_v2",
    # Pub/Sub's client is built on the first ticket that can never be enriched, not before.
    "google.cloud.pubsub_v1",
)


def test_the_functions_module_imports_nothing_of_deploy_or_retraining() -> None:
    code = "import sys, json, adapters.gcp.main; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(done.stdout)
    assert "adapters.gcp.main" in loaded
    wrong = sorted(
        name
        for name in loaded
        if any(name == n or name.startswith(f"{n}.") for n in NOT_FOR_SERVING)
    )
    assert wrong == []

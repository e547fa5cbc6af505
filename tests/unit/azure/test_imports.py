"""The scoring script's cold start imports what scoring a well-formed ticket needs (issue 24):
checked in a fresh interpreter, as the inference server's worker loads `score.py`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from adapters.azure import score

# argv: a ticket body. Prints the modules loaded after a valid ticket, then after a refused one.
_CODE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("entry_module", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.init()
answer = module.run(sys.argv[2], {"x-request-id": "imports"})
after_valid = sorted(sys.modules)
# The scorer behind run(): its refusal becomes the inference server's response type there.
refused = module._scorer().score(json.dumps({"subject": "", "description": "   "}), "r")
print(json.dumps({"label": answer["enrichment"]["priority"]["label"], "valid": after_valid,
                  "refused_status": refused.status, "refused": sorted(sys.modules)}))
"""

# Only a refusal needs the pydantic ticket model; only delivery needs the outbox's modules.
NOT_FOR_A_VALID_TICKET = ("core.ticket", "core.delivery", "core.ports")


def test_a_valid_ticket_is_scored_without_the_ticket_model_or_the_delivery_code(
    small_model_dir: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKET_ENRICH_")}
    env["AZUREML_MODEL_DIR"] = str(small_model_dir)
    ticket = json.dumps({"subject": "Disk full on node 7", "description": "The job fails."})
    done = subprocess.run(
        [sys.executable, "-c", _CODE, str(Path(score.__file__)), ticket],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    result = json.loads(done.stdout.splitlines()[-1])

    assert result["label"]
    assert [name for name in NOT_FOR_A_VALID_TICKET if name in result["valid"]] == []
    # The refusal is worded by the pydantic model, which is then imported.
    assert result["refused_status"] == 400
    assert "core.ticket" in result["refused"]

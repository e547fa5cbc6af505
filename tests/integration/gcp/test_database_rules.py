"""deploy/gcp/database.rules.json, evaluated by targaryen (the Realtime Database rules
interpreter that firebase-server itself uses; installed with it by tests/setup.d/30-gcp.sh).

Google's Realtime Database emulator is a download from Google's servers (firebase-tools fetches
it at first use), which cannot be reached here, and firebase-server applies rules to its
WebSocket clients only, not to REST requests; targaryen is the closest real tool.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from tests.integration.gcp.conftest import ROOT, SETUP_HINT

TARGARYEN = ROOT / ".tools" / "firebase-server" / "node_modules" / "targaryen"
RULES = ROOT / "deploy" / "gcp" / "database.rules.json"

SCRIPT = """
const targaryen = require(process.argv[1]);
const rules = require(process.argv[2]);
const {data, cases} = JSON.parse(require("fs").readFileSync(0, "utf8"));
const db = targaryen.database(rules, data);
const out = cases.map(([who, op, path, value]) => {
  const as = who === null ? db.as(null) : db.as(who);
  const result = op === "read" ? as.read(path) : op === "update" ? as.update(path, value) : as.write(path, value);
  return result.allowed;
});
process.stdout.write(JSON.stringify(out));
"""

DATA = {
    "tickets": {
        "k1": {
            "subject": "Disk full",
            "owner": "uid-ann",
            "enrichment": {"priority": {"label": "normal"}},
            "enrichment_state": {"status": "enriched"},
        },
        "k2": {"subject": "Not yet enriched", "owner": "uid-bob"},
    }
}
ANN = {"uid": "uid-ann", "provider": "custom", "token": {}}
BOB = {"uid": "uid-bob", "provider": "custom", "token": {}}
AGENT = {"uid": "uid-agent", "provider": "custom", "token": {"agent": True}}

CASES: list[tuple[str, Any, str, str, Any, bool]] = [
    (
        "customer creates own ticket",
        ANN,
        "write",
        "/tickets/n1",
        {"subject": "x", "owner": "uid-ann"},
        True,
    ),
    (
        "customer creates with description only",
        ANN,
        "write",
        "/tickets/n2",
        {"description": "x", "owner": "uid-ann"},
        True,
    ),
    (
        "customer creates in another's name",
        ANN,
        "write",
        "/tickets/n3",
        {"subject": "x", "owner": "uid-bob"},
        False,
    ),
    ("customer creates without owner", ANN, "write", "/tickets/n4", {"subject": "x"}, False),
    ("customer creates without text", ANN, "write", "/tickets/n5", {"owner": "uid-ann"}, False),
    (
        "customer writes enrichment",
        ANN,
        "write",
        "/tickets/n6",
        {"subject": "x", "owner": "uid-ann", "enrichment": {"priority": "urgent"}},
        False,
    ),
    (
        "customer writes the marker",
        ANN,
        "write",
        "/tickets/n7",
        {"subject": "x", "owner": "uid-ann", "enrichment_state": {"status": "enriched"}},
        False,
    ),
    (
        "customer writes an unknown field",
        ANN,
        "write",
        "/tickets/n8",
        {"subject": "x", "owner": "uid-ann", "severity": 1},
        False,
    ),
    (
        "customer overwrites own ticket",
        ANN,
        "write",
        "/tickets/k1",
        {"subject": "y", "owner": "uid-ann"},
        False,
    ),
    ("customer corrects priority", ANN, "write", "/tickets/k1/corrected_priority", "urgent", False),
    (
        "customer edits enrichment",
        ANN,
        "write",
        "/tickets/k1/enrichment/priority/label",
        "urgent",
        False,
    ),
    (
        "nobody signed in creates",
        None,
        "write",
        "/tickets/n9",
        {"subject": "x", "owner": "uid-ann"},
        False,
    ),
    ("customer reads own", ANN, "read", "/tickets/k1", None, True),
    ("customer reads another's", BOB, "read", "/tickets/k1", None, False),
    ("customer lists every ticket", ANN, "read", "/tickets", None, False),
    ("nobody signed in reads", None, "read", "/tickets/k1", None, False),
    ("agent lists every ticket", AGENT, "read", "/tickets", None, True),
    ("agent reads any", AGENT, "read", "/tickets/k2", None, True),
    ("agent corrects priority", AGENT, "write", "/tickets/k1/corrected_priority", "urgent", True),
    (
        "agent corrects an unenriched ticket",
        AGENT,
        "write",
        "/tickets/k2/corrected_priority",
        "urgent",
        False,
    ),
    ("agent sets an empty priority", AGENT, "write", "/tickets/k1/corrected_priority", "", False),
    (
        "agent edits enrichment",
        AGENT,
        "write",
        "/tickets/k1/enrichment/priority/label",
        "urgent",
        False,
    ),
    ("agent edits the subject", AGENT, "write", "/tickets/k1/subject", "y", False),
    ("agent writes the root", AGENT, "write", "/", {}, False),
]


@pytest.fixture(scope="module")
def verdicts() -> list[bool]:
    node = shutil.which("node")
    if node is None or not TARGARYEN.exists():
        pytest.fail(f"node and targaryen are needed to evaluate the database rules: {SETUP_HINT}")
    payload = {
        "data": DATA,
        "cases": [[who, op, path, value] for _, who, op, path, value, _ in CASES],
    }
    done = subprocess.run(
        [node, "-e", SCRIPT, str(TARGARYEN), str(RULES)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result: list[bool] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("index", range(len(CASES)), ids=[case[0] for case in CASES])
def test_database_rules(verdicts: list[bool], index: int) -> None:
    what, *_, expected = CASES[index]
    assert verdicts[index] is expected, f"{what}: expected {'allowed' if expected else 'denied'}"

"""Azure: cold start of the scoring script (a fresh process, `init()` plus one `run()`) beside
the core alone, the Azure client libraries' import reported on its own, and the size of what
the endpoint and the Functions app install.

Child processes run round-robin (as in `bench/coldstart.py`), each timed by this process around
`subprocess.run`:

- ``core``: `import core`, `core.load_enricher`, one `enrich` (the default fields);
- ``score``: `score.py` loaded by path as the inference server does, `init()`, one `run()`, with
  no scoring log configured;
- ``score_with_log``: the same with the Blob scoring log configured (its client built in
  `init()`; the write happens on a background thread, to an address where nothing listens);
- ``azure_import``: `import azure.storage.blob` alone, the Azure library the scoring log needs.

- ``functions``: the Functions app's ticket intake as the Python worker runs it: import
  `azure.functions` and `azure.data.tables` (the Azure libraries it cannot do without, timed
  apart), import `function_app`, then one `POST /api/tickets` through the registered
  `submit_ticket` (settings, the model, the Table Storage client, one entity-group transaction on
  Azurite), delivery off.

The adapter's cost is ``score_with_log`` (and ``functions``) minus ``core`` minus the Azure
import measured inside the same child.

Warm, in one process each after a first request: ``submit_ticket`` storing a new ticket in
Azurite's Table Storage, and `run()` of the scoring script; and what a bad record costs: a ticket
that fails validation sent to ``submit_ticket`` (answered 4xx; HTTP is not retried by Azure;
the table is counted afterwards to show nothing was stored).

Every child leaves with `os._exit` once it has answered: a serving worker never pays interpreter
exit (nor the scoring log's flush at exit) before its first answer. The
inference server itself (Flask, gunicorn) is not in these processes: it runs the script, and
what it adds is the platform's, the same for every scoring script.
"""

from __future__ import annotations

import importlib.metadata as importlib_metadata
import json
import re
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.context import PEAK_RSS, REPO_ROOT, Context, child_json, log, run_child, summarize
from bench.markdown import fmt, table

TARGET_OVER_CORE_MS = 300.0

CORE = (
    PEAK_RSS
    + """
import json, sys, time
ticket = json.loads(sys.argv[2])
t0 = time.perf_counter()
import core
enricher = core.load_enricher(sys.argv[1])
out = enricher.enrich(ticket)
t1 = time.perf_counter()
print(json.dumps({"inside_s": t1 - t0, "azure_import_s": 0.0,
                  "label": out["enrichment"]["priority"]["label"],
                  "peak_rss_kib": peak_rss_kib()}))
sys.stdout.flush()
import os
os._exit(0)
"""
)

# argv: score.py, ticket JSON, "log" or "no-log". AZUREML_MODEL_DIR and the scoring-log
# settings come in the environment, as the inference server passes them.
SCORE = (
    PEAK_RSS
    + """
import json, sys, time
ticket = sys.argv[2]
t0 = time.perf_counter()
if sys.argv[3] == "log":
    import azure.storage.blob
t1 = time.perf_counter()
import importlib.util
spec = importlib.util.spec_from_file_location("entry_module", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.init()
out = module.run(ticket, {"x-request-id": "bench"})
t2 = time.perf_counter()
print(json.dumps({"inside_s": t2 - t0, "azure_import_s": t1 - t0,
                  "label": out["enrichment"]["priority"]["label"],
                  "peak_rss_kib": peak_rss_kib()}))
sys.stdout.flush()
import os
os._exit(0)
"""
)

# argv: ticket JSON. The environment names the model, the table and Azurite.
FUNCTIONS = (
    PEAK_RSS
    + """
import json, sys, time
body = sys.argv[1].encode()
t0 = time.perf_counter()
import azure.functions as func, azure.data.tables
t1 = time.perf_counter()
from adapters.azure import function_app
submit = {f.get_function_name(): f.get_user_function()
          for f in function_app.app.get_functions()}["submit_ticket"]
request = func.HttpRequest("POST", "https://bench.azurewebsites.net/api/tickets",
                           headers={"content-type": "application/json"}, body=body)
reply = submit(request)
t2 = time.perf_counter()
assert reply.status_code == 201, reply.get_body()
label = json.loads(reply.get_body())["enrichment"]["priority"]["label"]
print(json.dumps({"inside_s": t2 - t0, "azure_import_s": t1 - t0, "label": label,
                  "peak_rss_kib": peak_rss_kib()}), flush=True)
import os
os._exit(0)
"""
)

# argv: a JSON file of [good bodies, bad bodies], score.py. One worker: a first request, then
# each body timed as a warm instance answers it.
WARM = """
import json, statistics, sys, time
import azure.functions as func
from adapters.azure import function_app
good, bad = json.loads(open(sys.argv[1]).read())
submit = {f.get_function_name(): f.get_user_function()
          for f in function_app.app.get_functions()}["submit_ticket"]
def post(body):
    request = func.HttpRequest("POST", "https://bench.azurewebsites.net/api/tickets",
                               headers={"content-type": "application/json"}, body=body.encode())
    t0 = time.perf_counter()
    status = submit(request).status_code
    return time.perf_counter() - t0, status
post(good[0])
good_times, good_status = zip(*(post(b) for b in good[1:]))
bad_times, bad_status = zip(*(post(b) for b in bad))
import importlib.util
spec = importlib.util.spec_from_file_location("entry_module", sys.argv[2])
score = importlib.util.module_from_spec(spec)
spec.loader.exec_module(score)
score.init()
score.run(good[0])
score_times = []
for body in good[1:]:
    t0 = time.perf_counter()
    score.run(body)
    score_times.append(time.perf_counter() - t0)
print(json.dumps({
    "functions_p50_s": statistics.median(good_times),
    "functions_statuses": sorted(set(good_status)),
    "bad_p50_s": statistics.median(bad_times), "bad_statuses": sorted(set(bad_status)),
    "score_p50_s": statistics.median(score_times), "events": len(good_times),
    "bad_events": len(bad_times),
}), flush=True)
import os
os._exit(0)
"""
WARM_REQUESTS = 200
BAD_REQUESTS = 100
BAD_TICKET = {"subject": "", "description": "   "}
SETUP = "run sh tests/setup.d/40-azure.sh"
AZURITE = REPO_ROOT / ".tools" / "azurite" / "node_modules" / ".bin" / "azurite"
# Azurite's well-known development account (public, documented by Microsoft, not a secret).
_AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

AZURE_IMPORT = """
import json, time
t0 = time.perf_counter()
import azure.storage.blob
t1 = time.perf_counter()
print(json.dumps({"inside_s": t1 - t0, "azure_import_s": t1 - t0}), flush=True)
import os
os._exit(0)
"""

# Where nothing listens: the scoring log's client is built, its background write fails fast.
_DEAD_STORAGE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
    "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
)
LABELS = {
    "core": "core alone: `import core`, `load_enricher`, `enrich`",
    "score": "score.py: `init()` + one `run()`, no scoring log",
    "score_with_log": "score.py: `init()` + one `run()`, Blob scoring log on",
    "azure_import": "`import azure.storage.blob` alone",
    "functions": "Functions: `function_app` + one `POST /api/tickets` (Table Storage on Azurite)",
}


def _requirement_names(requirements: list[str]) -> list[str]:
    return [re.split(r"[<>=!~;\[ ]", r.strip(), maxsplit=1)[0] for r in requirements if r.strip()]


def _closure(names: list[str]) -> dict[str, int]:
    """Installed bytes per distribution for ``names`` and everything they require (in the
    interpreter running the benchmark), markers for extras left out."""
    sizes: dict[str, int] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in sizes:
            continue
        try:
            dist = importlib_metadata.distribution(name)
        except importlib_metadata.PackageNotFoundError:
            sizes[key] = 0
            continue
        sizes[key] = sum(f.size or 0 for f in dist.files or [])
        for requirement in dist.requires or []:
            if "extra ==" in requirement:
                continue
            todo += _requirement_names([requirement])
    return sizes


def _sizes() -> dict[str, Any]:
    conda = (REPO_ROOT / "deploy" / "azure" / "environment" / "conda.yml").read_text()
    endpoint_pip = [
        line.strip()[2:]
        for line in conda.splitlines()
        if line.strip().startswith("- ") and re.search(r"[<>=]", line) and "python=" not in line
    ]
    functions = (REPO_ROOT / "deploy" / "azure" / "functions" / "requirements.txt").read_text()
    functions_pip = [
        line for line in functions.splitlines() if line.strip() and not line.startswith("#")
    ]
    infsrv_site = REPO_ROOT / ".tools" / "azmlinfsrv" / "lib" / "python3.11" / "site-packages"
    result: dict[str, Any] = {
        "functions_dependencies_bytes": sum(_closure(_requirement_names(functions_pip)).values()),
        "endpoint_dependencies_bytes_without_server": sum(
            _closure(
                [n for n in _requirement_names(endpoint_pip) if not n.startswith("azureml")]
            ).values()
        ),
        "code_bytes": sum(
            p.stat().st_size
            for folder in ("core", "adapters/azure")
            for p in (REPO_ROOT / folder).rglob("*.py")
        ),
    }
    if infsrv_site.is_dir():
        result["azmlinfsrv_venv_site_packages_bytes"] = sum(
            p.stat().st_size for p in infsrv_site.rglob("*") if p.is_file()
        )
    return result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _azurite() -> Iterator[str]:
    """Azurite's Table service on a free loopback port; its connection string."""
    if not AZURITE.exists():
        raise RuntimeError(
            f"the Azure benchmark needs Azurite at {AZURITE}: run tests/setup.d/40-azure.sh"
        )
    with tempfile.TemporaryDirectory(prefix="azurite-") as workspace:
        blob, queue, table = _free_port(), _free_port(), _free_port()
        proc = subprocess.Popen(
            [
                str(AZURITE),
                "--blobHost", "127.0.0.1", "--blobPort", str(blob),
                "--queueHost", "127.0.0.1", "--queuePort", str(queue),
                "--tableHost", "127.0.0.1", "--tablePort", str(table),
                "--location", workspace, "--skipApiVersionCheck", "--disableTelemetry", "--silent",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", table), timeout=0.5):
                        break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("Azurite did not start") from None
                    time.sleep(0.1)
            yield (
                f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                f"AccountKey={_AZURITE_KEY};"
                f"TableEndpoint=http://127.0.0.1:{table}/devstoreaccount1;"
            )
        finally:
            proc.terminate()
            proc.wait(timeout=15)


def _body(ticket: dict[str, Any]) -> str:
    """A new ticket each time (its id derives from external_id)."""
    return json.dumps({**ticket, "external_id": f"bench-{uuid.uuid4().hex}"})


def _count_tickets(connection: str, table: str) -> int:
    from azure.data.tables import TableClient

    client = TableClient.from_connection_string(connection, table)
    return sum(1 for _ in client.query_entities("RowKey eq 'ticket'", select=["PartitionKey"]))


def bench_azure(ctx: Context) -> dict[str, Any]:
    """Cold start of the Azure scoring script beside the core, and the Azure installs' size."""
    repeats = ctx.settings.coldstart_repeats
    artifact_dir = str(ctx.trained().artifact_dir)
    tickets, _ = ctx.test_tickets()
    ticket = json.dumps(tickets[0])
    score_py = str(REPO_ROOT / "adapters" / "azure" / "score.py")
    base = {k: v for k, v in ctx.child_env.items() if not k.startswith("TICKET_ENRICH_")}
    base["AZUREML_MODEL_DIR"] = artifact_dir
    # As deploy/azure/deployment.yml and the Functions app's settings set it: no pydantic plugin
    # lookup (which reads every installed package's entry points) on the first model built.
    base["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
    with_log = {
        **base,
        "TICKET_ENRICH_AZURE_SCORING_LOG_CONNECTION_STRING": _DEAD_STORAGE,
        "TICKET_ENRICH_AZURE_STORAGE_RETRIES": "0",
    }
    with _azurite() as connection:
        table = f"bench{uuid.uuid4().hex[:16]}"
        functions_env = {
            **base,
            "TICKET_ENRICH_MODEL_DIR": artifact_dir,
            "TICKET_ENRICH_DELIVER": "false",
            "TICKET_ENRICH_AZURE_TABLES_CONNECTION_STRING": connection,
            "TICKET_ENRICH_AZURE_TICKETS_TABLE": table,
        }
        variants: dict[str, tuple[str, tuple[str, ...], dict[str, str]]] = {
            "core": (CORE, (artifact_dir, ticket), base),
            "score": (SCORE, (score_py, ticket, "no-log"), base),
            "score_with_log": (SCORE, (score_py, ticket, "log"), with_log),
            "azure_import": (AZURE_IMPORT, (), base),
            "functions": (FUNCTIONS, (ticket,), functions_env),
        }
        log(f"azure cold start: 1 warm-up + {repeats} runs of each of {', '.join(variants)}")
        for name, (code, args, env) in variants.items():
            fresh = (_body(tickets[0]),) if name == "functions" else args
            run_child(code, *fresh, env=env)
        wall: dict[str, list[float]] = {name: [] for name in variants}
        inside: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
        for _ in range(repeats):
            for name, (code, args, env) in variants.items():
                fresh = (_body(tickets[0]),) if name == "functions" else args
                seconds, stdout, _stderr = run_child(code, *fresh, env=env)
                wall[name].append(seconds)
                inside[name].append(child_json(stdout))
        log(f"azure warm: {WARM_REQUESTS} new tickets, {BAD_REQUESTS} bad ones, in one worker")
        stored_before = _count_tickets(connection, table)
        bodies = Path(ctx.workdir) / "azure-warm.json"
        good = [_body(tickets[n % len(tickets)]) for n in range(WARM_REQUESTS + 1)]
        bad = [_body(BAD_TICKET) for _ in range(BAD_REQUESTS)]
        bodies.write_text(json.dumps([good, bad]))
        warm = child_json(run_child(WARM, str(bodies), score_py, env=functions_env)[1])
        stored_after = _count_tickets(connection, table)

    results: dict[str, Any] = {}
    for name in variants:
        runs = inside[name]
        results[name] = {
            "wall": summarize(wall[name]),
            "inside_median_ms": statistics.median(r["inside_s"] for r in runs) * 1000.0,
            "azure_import_median_ms": statistics.median(r["azure_import_s"] for r in runs) * 1000.0,
        }
        if "peak_rss_kib" in runs[-1]:
            results[name]["peak_rss_mib"] = max(r["peak_rss_kib"] for r in runs) / 1024.0
            results[name]["label"] = runs[-1]["label"]
    core_ms = results["core"]["wall"]["median_ms"]
    over = {}
    for name in ("score", "score_with_log", "functions"):
        # Per run, so that the Azure import subtracted is the one that run paid.
        per_run = [
            w * 1000.0 - r["azure_import_s"] * 1000.0
            for w, r in zip(wall[name], inside[name], strict=True)
        ]
        over[name] = statistics.median(per_run) - core_ms
    results["over_core_ms"] = over
    results["target_over_core_ms"] = TARGET_OVER_CORE_MS
    results["target_met"] = max(over.values()) <= TARGET_OVER_CORE_MS
    results["same_label"] = (
        results["core"]["label"] == results["score"]["label"] == results["functions"]["label"]
    )
    results["warm"] = {
        "functions_p50_ms": warm["functions_p50_s"] * 1000.0,
        "functions_statuses": warm["functions_statuses"],
        "score_run_p50_ms": warm["score_p50_s"] * 1000.0,
        "requests": warm["events"],
    }
    results["bad_record"] = {
        "p50_ms": warm["bad_p50_s"] * 1000.0,
        "statuses": warm["bad_statuses"],
        "requests": warm["bad_events"],
        # HTTP: the caller gets the 4xx; neither the Functions host nor the endpoint retries it.
        "retries": 0,
        "stored": stored_after - stored_before - warm["events"] - 1,
        "ends_in": "the caller's 4xx answer (error body with code and problems); nothing stored",
    }
    results["sizes"] = _sizes()
    results["repeats"] = repeats
    results["note"] = (
        "wall = perf_counter around subprocess.run after one warm-up run per variant; the Azure "
        "import is timed inside the child and subtracted per run for 'over the core'"
    )
    return results


def render_azure(result: dict[str, Any]) -> list[str]:
    """Markdown for `bench_azure`."""
    rows = [
        [
            label,
            fmt(result[key]["wall"]["median_ms"], 1),
            fmt(result[key]["wall"]["min_ms"], 1),
            fmt(result[key]["inside_median_ms"], 1),
            fmt(result[key]["azure_import_median_ms"], 1),
            fmt(result[key].get("peak_rss_mib"), 1),
        ]
        for key, label in LABELS.items()
    ]
    over = result["over_core_ms"]
    sizes = result["sizes"]
    warm, bad = result["warm"], result["bad_record"]
    mib = 1024.0 * 1024.0
    lines = [
        f"## Azure: scoring script cold start (fresh process, {result['repeats']} runs each, ms)",
        "",
        *table(
            ["process", "wall median", "wall min", "inside", "Azure import", "peak RSS MiB"],
            rows,
        ),
        "",
        f"- Over the core alone, Azure import excluded (median): **{over['score']:.1f} ms** "
        f"without the scoring log, **{over['score_with_log']:.1f} ms** with it; target "
        f"≤ {result['target_over_core_ms']:.0f} ms: {'met' if result['target_met'] else 'not met'}."
        f" Same predicted priority as the core: {fmt(result['same_label'])}.",
        f"- Functions (`submit_ticket`, Table Storage on Azurite) over the core, Azure imports "
        f"(`azure.functions`, `azure.data.tables`) excluded: **{over['functions']:.1f} ms**.",
        f"- Warm, one worker: `submit_ticket` storing a new ticket **{warm['functions_p50_ms']:.2f}"
        f" ms** p50 (statuses {warm['functions_statuses']}), `score.py` `run()` "
        f"**{warm['score_run_p50_ms']:.2f} ms** p50, over {warm['requests']} requests each.",
        f"- A ticket that fails validation: **{bad['p50_ms']:.2f} ms** p50 over {bad['requests']} "
        f"requests, answered {bad['statuses']}, {bad['retries']} retries (HTTP), "
        f"{bad['stored']} stored; it ends in {bad['ends_in']}.",
        f"- Installed size: the Functions app's dependencies "
        f"{sizes['functions_dependencies_bytes'] / mib:.1f} MiB; the endpoint's, without the "
        f"inference server, {sizes['endpoint_dependencies_bytes_without_server'] / mib:.1f} MiB"
        + (
            f"; the whole azmlinfsrv environment (server, Flask, gunicorn, OpenTelemetry, the "
            f"project) {sizes['azmlinfsrv_venv_site_packages_bytes'] / mib:.1f} MiB"
            if "azmlinfsrv_venv_site_packages_bytes" in sizes
            else ""
        )
        + f"; the code (core/ and adapters/azure/) {sizes['code_bytes'] / 1024:.0f} KiB.",
        f"- {result['note']}.",
    ]
    return lines

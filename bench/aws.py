"""AWS: cold start of the HTTP API handler beside the core alone, with and without SnapStart's
pre-snapshot work, and the Lambda package's size.

Cold start: fresh child processes, round-robin, each timed from this process around
`subprocess.run` as in `bench.coldstart`. The core child imports `core`, loads the model and
enriches one ticket; the handler child imports `adapters.aws.api` (Powertools' event handler),
builds its runtime (boto3's session and DynamoDB client, the same model from the bundled
directory) and answers one API Gateway HTTP API event (payload 2.0, as `sam local
generate-event` records it) that stores the ticket in DynamoDB, here moto's server on loopback
started by this process. The difference is what the AWS adapter adds without SnapStart.

The SnapStart child does what Lambda does with a published version: the init phase (import the
handler module, which registers the runtime hooks with ``snapshot_restore_py``, then run the
before-snapshot hooks in reverse order of registration), then, as a restored copy, the
after-restore hooks and the same event. Its "restored" time is what a request waits for on top
of Lambda restoring the snapshot's memory, which only Lambda can measure. Package size: `sam
build` of deploy/aws/template.yaml (arm64 wheels from PyPI) with the model bundled, zipped as
Lambda receives it.

The AWS SDK it cannot do without (boto3 and botocore) is imported first in the handler child and
timed apart, so what the adapter adds is reported both with and without it. A bad record: one
environment answers Kinesis batches of one record each that can never succeed (a ticket with no
text), each sent to the SQS dead-letter queue on moto with the reason and reported as no batch
item failure (so Lambda does not retry it); the queue is counted afterwards. And the same ticket
posted to the HTTP API, answered 422.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import statistics
from pathlib import Path
from typing import Any

from bench.context import PEAK_RSS, REPO_ROOT, Context, child_json, log, run_child, summarize
from bench.markdown import fmt, size, table

HANDLER_ADDS_LIMIT_MS = 300.0
# What the SAM template's Globals set besides the functions' own settings and that changes the
# cold start: no pydantic plugin lookup (which reads every installed package's entry points).
DEPLOYED_ENV = {"PYDANTIC_DISABLE_PLUGINS": "__all__"}
ZIPPED_LIMIT_BYTES = 25 * 1024 * 1024
EVENT = REPO_ROOT / "tests" / "events" / "aws" / "http_post_ticket.json"

CORE = (
    PEAK_RSS
    + """
import json, sys, time
ticket = json.loads(sys.argv[2])
t0 = time.perf_counter()
import core
t1 = time.perf_counter()
enricher = core.load_enricher(sys.argv[1])
t2 = time.perf_counter()
out = enricher.enrich(ticket)
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_call_s": t3 - t2,
                  "label": out["enrichment"]["priority"]["label"], "peak_rss_kib": peak_rss_kib()}))
sys.stdout.flush()
import os
os._exit(0)
"""
)

# The environment (endpoint, table, model directory, credentials) is set by the parent, as the
# SAM template sets it on the function; the event file is read before the clock starts.
HANDLER = (
    PEAK_RSS
    + """
import json, sys, time
event = json.loads(open(sys.argv[1]).read())
class Context:
    function_name = "bench"; memory_limit_in_mb = 512; aws_request_id = "bench"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    def get_remaining_time_in_millis(self): return 30000
s0 = time.perf_counter()
import boto3, botocore.session
t0 = time.perf_counter()
# The same imports the handler module makes, in parts, so that each part's cost is reported
# (importing them first changes no total: a module is imported once).
import core.ticket
p0 = time.perf_counter()
import core.settings
p1 = time.perf_counter()
import aws_lambda_powertools.event_handler, aws_lambda_powertools.logging
p2 = time.perf_counter()
from adapters.aws import api
from adapters.aws import runtime as runtime_module
t1 = time.perf_counter()
# Building the DynamoDB client (a boto3 session and botocore's service model), timed in place.
client_s = []
def timed(function):
    def call(*args, **kwargs):
        c0 = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            client_s.append(time.perf_counter() - c0)
    return call
runtime_module.new_session = timed(runtime_module.new_session)
runtime_module.aws_client = timed(runtime_module.aws_client)
runtime_module.runtime()
t2 = time.perf_counter()
response = api.http_api(event, Context())
t3 = time.perf_counter()
body = json.loads(response["body"])
# Warm: the same environment answering more events (new tickets, each stored in DynamoDB).
import base64, statistics, uuid
ticket = json.loads(base64.b64decode(event["body"]))
run = uuid.uuid4().hex
warm = []
for n in range(int(sys.argv[2])):
    payload = json.dumps({**ticket, "external_id": f"warm-{run}-{n}"}).encode()
    event["body"] = base64.b64encode(payload).decode()
    w0 = time.perf_counter()
    answer = api.http_api(event, Context())
    warm.append(time.perf_counter() - w0)
    assert answer["statusCode"] == 201, answer
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_call_s": t3 - t2,
                  "sdk_import_s": t0 - s0, "sdk_client_s": sum(client_s),
                  "ticket_model_import_s": p0 - t0, "settings_import_s": p1 - p0,
                  "powertools_import_s": p2 - p1, "adapter_import_s": t1 - p2,
                  "warm_p50_s": statistics.median(warm) if warm else None,
                  "status": response["statusCode"],
                  "label": body.get("enrichment", {}).get("priority", {}).get("label"),
                  "peak_rss_kib": peak_rss_kib()}))
sys.stdout.flush()
import os
os._exit(0)
"""
)

# Lambda's init phase for a SnapStart version, then one restored copy's first request.
SNAPSTART = (
    PEAK_RSS
    + """
import json, sys, time
event = json.loads(open(sys.argv[1]).read())
class Context:
    function_name = "bench"; memory_limit_in_mb = 512; aws_request_id = "bench"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    def get_remaining_time_in_millis(self): return 30000
t0 = time.perf_counter()
from adapters.aws import api
import snapshot_restore_py
t1 = time.perf_counter()
for func, args, kwargs in reversed(snapshot_restore_py.get_before_snapshot()):
    func(*args, **kwargs)
t2 = time.perf_counter()
for func, args, kwargs in snapshot_restore_py.get_after_restore():
    func(*args, **kwargs)
t3 = time.perf_counter()
response = api.http_api(event, Context())
t4 = time.perf_counter()
body = json.loads(response["body"])
print(json.dumps({"import_s": t1 - t0, "before_snapshot_s": t2 - t1, "after_restore_s": t3 - t2,
                  "first_call_s": t4 - t3, "init_s": t2 - t0, "restored_s": t4 - t2,
                  "status": response["statusCode"],
                  "label": body.get("enrichment", {}).get("priority", {}).get("label"),
                  "peak_rss_kib": peak_rss_kib()}))
sys.stdout.flush()
import os
os._exit(0)
"""
)

# argv: the Kinesis event file, the HTTP event file, how many bad records. The environment
# names the dead-letter queue.
BAD = """
import base64, copy, json, statistics, sys, time
kinesis, http = (json.loads(open(path).read()) for path in sys.argv[1:3])
count = int(sys.argv[3])
class Context:
    function_name = "bench"; memory_limit_in_mb = 512; aws_request_id = "bench"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    def get_remaining_time_in_millis(self): return 30000
from adapters.aws import api, handlers
(template,) = kinesis["Records"]
good = base64.b64encode(json.dumps({"subject": "Disk full on node 7"}).encode()).decode()
bad = base64.b64encode(json.dumps({"subject": "", "description": "   "}).encode()).decode()
def batch(n, data):
    record = copy.deepcopy(template)
    record["kinesis"]["sequenceNumber"] = str(int(template["kinesis"]["sequenceNumber"]) + n)
    record["kinesis"]["data"] = data
    shard = template["eventID"].split(":")[0]
    record["eventID"] = shard + ":" + record["kinesis"]["sequenceNumber"]
    return {"Records": [record]}
handlers.kinesis_batch(batch(0, good), Context())  # warm: clients and model built
times, failures = [], 0
for n in range(1, count + 1):
    t0 = time.perf_counter()
    answer = handlers.kinesis_batch(batch(n, bad), Context())
    times.append(time.perf_counter() - t0)
    failures += len(answer["batchItemFailures"])
http["body"] = bad
http["isBase64Encoded"] = True
http_times, statuses = [], set()
for n in range(count):
    t0 = time.perf_counter()
    answer = api.http_api(http, Context())
    http_times.append(time.perf_counter() - t0)
    statuses.add(answer["statusCode"])
print(json.dumps({"kinesis_p50_s": statistics.median(times), "batch_item_failures": failures,
                  "records": count, "http_p50_s": statistics.median(http_times),
                  "http_statuses": sorted(statuses)}), flush=True)
import os
os._exit(0)
"""
BAD_RECORDS = 100
KINESIS_EVENT = REPO_ROOT / "tests" / "events" / "aws" / "kinesis_get_records.json"

PHASES = ("import_s", "load_s", "first_call_s")
WARM_CALLS = 200
SNAPSTART_PHASES = (
    "import_s",
    "before_snapshot_s",
    "init_s",
    "after_restore_s",
    "first_call_s",
    "restored_s",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _phases(runs: list[dict[str, Any]], phases: tuple[str, ...] = PHASES) -> dict[str, float]:
    return {
        k.removesuffix("_s") + "_ms": statistics.median(r[k] for r in runs) * 1e3 for k in phases
    }


def _cold_start(ctx: Context, endpoint: str, table: str) -> dict[str, Any]:
    artifact_dir = str(ctx.trained().artifact_dir)
    tickets, _ = ctx.test_tickets()
    ticket = tickets[0]
    event = json.loads(EVENT.read_text())
    event["body"] = base64.b64encode(json.dumps(ticket).encode()).decode()
    event_path = ctx.workdir / "aws-http-event.json"
    event_path.write_text(json.dumps(event))
    env = dict(ctx.child_env)
    env = {k: v for k, v in env.items() if not k.startswith(("TICKET_ENRICH_", "AWS_"))}
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        TICKET_ENRICH_AWS_ENDPOINT_URL=endpoint,
        TICKET_ENRICH_AWS_REGION="us-east-1",
        TICKET_ENRICH_TICKETS_TABLE=table,
        TICKET_ENRICH_MODEL_DIR=artifact_dir,
        **DEPLOYED_ENV,
    )
    variants = {
        "core": (CORE, (artifact_dir, json.dumps(ticket))),
        "http_handler": (HANDLER, (str(event_path), "0")),
        "snapstart": (SNAPSTART, (str(event_path),)),
    }
    repeats = ctx.settings.coldstart_repeats
    log(
        f"aws cold start: 1 warm-up + {repeats} runs of the core and of the HTTP API handler, "
        "without and with SnapStart's hooks"
    )
    for code, args in variants.values():
        run_child(code, *args, env=env)
    wall: dict[str, list[float]] = {name: [] for name in variants}
    inside: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    empty: list[float] = []
    for _ in range(repeats):
        empty.append(run_child("import os; os._exit(0)", env=env)[0])
        for name, (code, args) in variants.items():
            seconds, stdout, _ = run_child(code, *args, env=env)
            wall[name].append(seconds)
            inside[name].append(child_json(stdout))
    result: dict[str, Any] = {}
    for name in variants:
        runs = inside[name]
        result[name] = {
            "wall": summarize(wall[name]),
            "phases_median": _phases(runs, SNAPSTART_PHASES if name == "snapstart" else PHASES),
            "peak_rss_mib": max(r["peak_rss_kib"] for r in runs) / 1024.0,
            "label": runs[-1]["label"],
        }
    handler_runs = inside["http_handler"]
    result["http_handler"]["statuses"] = sorted({r["status"] for r in handler_runs})
    # Warm: one more handler process, answering WARM_CALLS events after its first (not timed
    # from outside, so the cold rows above are not affected).
    warm = child_json(run_child(HANDLER, str(event_path), str(WARM_CALLS), env=env)[1])
    result["http_handler"]["warm_p50_ms"] = warm["warm_p50_s"] * 1e3
    result["http_handler"]["warm_calls"] = WARM_CALLS
    # The SDK it cannot do without, timed inside the same children and subtracted per run.
    without_sdk = [
        w - r["sdk_import_s"] for w, r in zip(wall["http_handler"], handler_runs, strict=True)
    ]
    result["http_handler"]["sdk_import_median_ms"] = (
        statistics.median(r["sdk_import_s"] for r in handler_runs) * 1e3
    )
    result["handler_adds_without_sdk_import_ms"] = (
        statistics.median(without_sdk) * 1e3 - result["core"]["wall"]["median_ms"]
    )
    # Counting the DynamoDB client's creation (timed in place) as SDK cost too: botocore reads
    # its service model and lists its data directories; the adapter only asks for one client.
    without_client = [
        w - r["sdk_import_s"] - r["sdk_client_s"]
        for w, r in zip(wall["http_handler"], handler_runs, strict=True)
    ]
    result["handler_adds_without_sdk_import_and_client_ms"] = (
        statistics.median(without_client) * 1e3 - result["core"]["wall"]["median_ms"]
    )
    result["http_handler"]["breakdown_median_ms"] = {
        key.removesuffix("_s"): statistics.median(r[key] for r in handler_runs) * 1e3
        for key in (
            "sdk_import_s",
            "ticket_model_import_s",
            "settings_import_s",
            "powertools_import_s",
            "adapter_import_s",
            "sdk_client_s",
        )
    }
    result["snapstart"]["statuses"] = sorted({r["status"] for r in inside["snapstart"]})
    result["empty_interpreter"] = summarize(empty)
    result["handler_adds_ms"] = (
        result["http_handler"]["wall"]["median_ms"] - result["core"]["wall"]["median_ms"]
    )
    # A request's wait inside the function: without SnapStart, the whole init phase and the
    # first call (interpreter start-up included); with it, the hooks after restore and the call.
    snap = result["snapstart"]["phases_median"]
    handler = result["http_handler"]["phases_median"]
    result["first_request_without_snapstart_ms"] = (
        handler["import_ms"] + handler["load_ms"] + handler["first_call_ms"]
    )
    result["first_request_restored_ms"] = snap["restored_ms"]
    result["init_phase_ms"] = snap["init_ms"]
    result["repeats"] = repeats
    return result


def _bad_record(ctx: Context, endpoint: str, table: str, queue_url: str) -> dict[str, Any]:
    """What a record that can never succeed costs: Kinesis (to the dead-letter queue) and HTTP."""
    import boto3

    env = {k: v for k, v in ctx.child_env.items() if not k.startswith(("TICKET_ENRICH_", "AWS_"))}
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        TICKET_ENRICH_AWS_ENDPOINT_URL=endpoint,
        TICKET_ENRICH_AWS_REGION="us-east-1",
        TICKET_ENRICH_TICKETS_TABLE=table,
        TICKET_ENRICH_MODEL_DIR=str(ctx.trained().artifact_dir),
        TICKET_ENRICH_DEAD_LETTER_QUEUE_URL=queue_url,
        **DEPLOYED_ENV,
    )
    log(f"aws bad records: {BAD_RECORDS} Kinesis batches of one, {BAD_RECORDS} HTTP requests")
    measured = child_json(
        run_child(BAD, str(KINESIS_EVENT), str(EVENT), str(BAD_RECORDS), env=env)[1]
    )
    sqs = boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return {
        "kinesis_p50_ms": measured["kinesis_p50_s"] * 1e3,
        "records": measured["records"],
        # No batch item failure reported: Lambda has nothing to retry.
        "kinesis_retries": 0 if measured["batch_item_failures"] == 0 else None,
        "batch_item_failures": measured["batch_item_failures"],
        "dead_letters_in_queue": int(attributes["ApproximateNumberOfMessages"]),
        "http_p50_ms": measured["http_p50_s"] * 1e3,
        "http_statuses": measured["http_statuses"],
        "ends_in": "the SQS dead-letter queue (RejectedRecords in the template), with the reason",
    }


def _package(ctx: Context) -> dict[str, Any]:
    from core.errors import TicketEnrichError
    from deploy.aws.package import bundle_model, find_sam, function_dirs, measure, sam_build

    try:
        sam = find_sam()
    except TicketEnrichError as exc:
        return {"error": str(exc)}
    build_dir = ctx.workdir / "aws-build"
    log("aws package: sam build (pip fetches the functions' arm64 wheels)")
    try:
        sam_build(sam, build_dir)
    except TicketEnrichError as exc:
        return {"error": str(exc)}
    function_dir = function_dirs(build_dir)[0]
    model_bytes = bundle_model(function_dir, ctx.trained().artifact_dir)
    report = measure(function_dir)
    return {**report.as_dict(), "bundled_model_bytes": model_bytes, "architecture": "arm64"}


def _item_sizes(ctx: Context, count: int = 500) -> dict[str, Any]:
    """DynamoDB item size of stored test tickets (default fields): what each write costs."""
    import math

    from adapters.aws.dynamodb_store import ticket_item_bytes
    from core import load_enricher
    from core.ports import StoredTicket

    enricher = load_enricher(ctx.trained().artifact_dir)
    tickets, _ = ctx.test_tickets()
    sizes = []
    for n, ticket in enumerate(tickets[:count]):
        out = enricher.enrich(ticket)
        stored = StoredTicket(f"{n:036d}", None, "2026-01-01T00:00:00.000+00:00", **out)
        sizes.append(ticket_item_bytes(stored))
    sizes.sort()
    units = [math.ceil(s / 1024) for s in sizes]
    return {
        "tickets": len(sizes),
        "median_bytes": statistics.median(sizes),
        "p90_bytes": sizes[int(0.9 * (len(sizes) - 1))],
        "mean_write_units": statistics.fmean(units),
    }


def bench_aws(ctx: Context) -> dict[str, Any]:
    """Cold start of the AWS HTTP handler beside the core alone, and the package's size."""
    try:
        import boto3
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise RuntimeError(
            "the AWS benchmark needs moto's server: run tests/setup.d/20-aws.sh"
        ) from exc
    from adapters.aws.dynamodb_store import TABLE_DEFINITION

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        dynamodb = boto3.client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        dynamodb.create_table(TableName="bench-tickets", **TABLE_DEFINITION)
        cold = _cold_start(ctx, endpoint, "bench-tickets")
        queue_url = boto3.client(
            "sqs",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        ).create_queue(QueueName="bench-rejected")["QueueUrl"]
        bad_record = _bad_record(ctx, endpoint, "bench-tickets", queue_url)
    finally:
        server.stop()
    return {
        "coldstart": cold,
        "bad_record": bad_record,
        "package": _package(ctx),
        "dynamodb_item": _item_sizes(ctx),
        "targets": {
            "handler_adds_ms_max": HANDLER_ADDS_LIMIT_MS,
            "zipped_bytes_max": ZIPPED_LIMIT_BYTES,
        },
        "note": (
            "wall = perf_counter around subprocess.run after one warm-up per variant, each child "
            "leaving with os._exit as soon as it has answered (a Lambda sandbox is frozen, not "
            "torn down, so interpreter exit is never paid); the handler's first call includes "
            "its DynamoDB round trip to moto on loopback (for a ticket without external_id: "
            "one conditional PutItem; a new ticket is not read back); the "
            "Lambda runtime's own start-up is not included"
        ),
    }


def render_aws(result: dict[str, Any]) -> list[str]:
    """Markdown for `bench_aws`."""
    cold = result["coldstart"]
    bad = result["bad_record"]
    adds_without_sdk = cold["handler_adds_without_sdk_import_ms"]
    rows = []
    for key, label in (
        ("core", "core alone: `import core`, `load_enricher`, `enrich`"),
        ("http_handler", "HTTP API handler: import, runtime (clients + model), one event"),
    ):
        r = cold[key]
        p = r["phases_median"]
        rows.append(
            [
                label,
                fmt(r["wall"]["median_ms"], 1),
                fmt(r["wall"]["min_ms"], 1),
                fmt(p["import_ms"], 1),
                fmt(p["load_ms"], 1),
                fmt(p["first_call_ms"], 1),
                fmt(r["peak_rss_mib"], 1),
            ]
        )
    snap = cold["snapstart"]
    sp = snap["phases_median"]
    rows.append(
        [
            "SnapStart: init phase (import, before-snapshot hooks), then restored: after-restore "
            "hooks, one event",
            fmt(snap["wall"]["median_ms"], 1),
            fmt(snap["wall"]["min_ms"], 1),
            fmt(sp["import_ms"], 1),
            fmt(sp["before_snapshot_ms"], 1),
            fmt(sp["first_call_ms"], 1),
            fmt(snap["peak_rss_mib"], 1),
        ]
    )
    adds = cold["handler_adds_ms"]
    lines = [
        f"## AWS (fresh process, {cold['repeats']} runs each, ms)",
        "",
        *table(
            ["process", "wall median", "wall min", "import", "load", "first call", "peak RSS MiB"],
            rows,
        ),
        "",
        f"- Without SnapStart the handler adds **{adds:.1f} ms** to the core's cold start "
        f"(target ≤ {result['targets']['handler_adds_ms_max']:.0f} ms: "
        f"{'met' if adds <= result['targets']['handler_adds_ms_max'] else 'not met'}); "
        f"statuses answered: {cold['http_handler']['statuses']}. An empty interpreter took "
        f"{cold['empty_interpreter']['median_ms']:.0f} ms. Warm, the same environment answers "
        f"a new ticket (stored in DynamoDB on moto) in **{cold['http_handler']['warm_p50_ms']:.2f}"
        f" ms** at the median of {cold['http_handler']['warm_calls']} events.",
        f"- Beyond the AWS SDK it cannot do without (boto3 and botocore, imported first in the "
        f"same children: {cold['http_handler']['sdk_import_median_ms']:.1f} ms at the median), "
        f"the handler adds **{adds_without_sdk:.1f} ms** to the core's "
        f"cold start (target ≤ {result['targets']['handler_adds_ms_max']:.0f} ms: "
        f"{'met' if adds_without_sdk <= result['targets']['handler_adds_ms_max'] else 'not met'}"
        f"); counting the DynamoDB client's creation as SDK cost too (session and client, "
        f"{cold['http_handler']['breakdown_median_ms']['sdk_client']:.1f} ms), "
        f"**{cold['handler_adds_without_sdk_import_and_client_ms']:.1f} ms**. Imports after the "
        f"SDK's, medians: the core's ticket model (pydantic; the intake use case needs it, the "
        f"core-alone child does not) "
        f"{cold['http_handler']['breakdown_median_ms']['ticket_model_import']:.1f} ms, the "
        f"settings (pydantic-settings) "
        f"{cold['http_handler']['breakdown_median_ms']['settings_import']:.1f} ms, Powertools' "
        f"event handler and logger "
        f"{cold['http_handler']['breakdown_median_ms']['powertools_import']:.1f} ms, the "
        f"adapter's own modules "
        f"{cold['http_handler']['breakdown_median_ms']['adapter_import']:.1f} ms.",
        f"- A record that can never succeed (a ticket with no text), warm: Kinesis "
        f"**{bad['kinesis_p50_ms']:.2f} ms** p50 for a batch of one ({bad['records']} batches), "
        f"{bad['batch_item_failures']} batch item failures reported, so "
        f"**{bad['kinesis_retries']} retries**; {bad['dead_letters_in_queue']} messages in the "
        f"dead-letter queue afterwards. Posted to the HTTP API: {bad['http_p50_ms']:.2f} ms p50, "
        f"answered {bad['http_statuses']}.",
        f"- First request of a new execution environment, inside the function: without "
        f"SnapStart **{cold['first_request_without_snapstart_ms']:.1f} ms** (import, runtime, "
        f"the call; interpreter start-up not counted); restored from a SnapStart snapshot "
        f"**{cold['first_request_restored_ms']:.1f} ms** (after-restore hooks "
        f"{sp['after_restore_ms']:.1f} ms: new seed, boto3 session, clients and credentials; "
        f"then the call {sp['first_call_ms']:.1f} ms, its DynamoDB connection new), plus "
        f"Lambda's own restore, not measurable here. The init phase Lambda runs once per "
        f"published version before the snapshot: **{cold['init_phase_ms']:.1f} ms** (import "
        f"{sp['import_ms']:.1f} ms, before-snapshot hooks {sp['before_snapshot_ms']:.1f} ms); "
        f"statuses answered: {snap['statuses']}.",
    ]
    package = result["package"]
    if "error" in package:
        lines.append(f"- Package: not measured ({package['error']}).")
    else:
        lines.append(
            f"- Lambda package ({package['architecture']}, model bundled): "
            f"**{size(package['zipped_bytes'])} zipped**, {size(package['unzipped_bytes'])} "
            f"unzipped, {package['files']} files; model {size(package['bundled_model_bytes'])}; "
            f"boto3 bundled: {fmt(package['bundles_boto3'])}; training stack inside: "
            f"{', '.join(package['forbidden']) or 'none'}. Largest: "
            + ", ".join(f"{k} {size(v)}" for k, v in package["largest_top_level_bytes"].items())
            + "."
        )
    item = result["dynamodb_item"]
    lines.append(
        f"- DynamoDB ticket item, {item['tickets']} test tickets with the default fields: median "
        f"{size(item['median_bytes'])}, p90 {size(item['p90_bytes'])}; "
        f"{item['mean_write_units']:.2f} write request units per plain write on average."
    )
    lines.append(f"- {result['note']}.")
    return lines


def _main() -> None:  # pragma: no cover - a convenience for running this benchmark alone
    import tempfile

    with tempfile.TemporaryDirectory() as workdir:
        result = bench_aws(Context(Path(workdir)))
    print(json.dumps(result, indent=2, default=str))
    print("\n".join(render_aws(result)))


if __name__ == "__main__":
    _main()

"""HTTP throughput of the local service, measured from outside by wrk in its own process.

`ticket-enrich serve` runs as an operator runs it (its own process, its worker processes, a
trained model, the SQLite store, delivery on), and wrk (bench/http.lua) sends it varied test
tickets with the API key: ``POST /tickets`` (validate, enrich, store, enqueue the delivery) and
then ``GET /tickets/{id}`` of the tickets it stored, each at concurrency 1, 8, 16, 32 and 64
(wrk's connections, one request in flight on each). wrk runs on one thread, on the same two
cores as the service, as a client on the same machine would.

The helpdesk address is one where nothing listens, and the delivery worker waits an hour
between passes, so that what is measured is the request path with the enqueue and not the
delivery itself (bench/delivery.py measures that). The service's peak RSS is taken under the
64-concurrency POST run: each process's high-water mark (reset just before the run), and the
proportional set size of all of them together right after it, which counts the pages the
forked workers share once (it is read after the run, not during it: reading
/proc/PID/smaps_rollup every 0.2 s stalled the workers enough to triple the run's p99).

wrk is a Debian package: ``sh bench/install-tools.sh`` installs it. Without it, this benchmark
says so and measures nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from bench.context import REPO_ROOT, Context, log
from bench.markdown import fmt, table

CONCURRENCY = (1, 8, 16, 32, 64)
API_KEY = "bench-http-key-not-for-production"
SCRIPT = Path(__file__).resolve().parent / "http.lua"
INSTALL = "sh bench/install-tools.sh"
# Requests that are not answered in this long count as timeouts (wrk's own error count).
REQUEST_TIMEOUT_S = 10
WARM_UP_S = 3.0
STARTUP_LIMIT_S = 180.0
# Tickets the GET runs ask for (ids of tickets the POST runs stored).
GET_IDS = 1000
# The targets: at concurrency 16, POST /tickets at ≥ 1,000/s with p99 ≤ 20 ms; and
# no collapse up to 64 (successful answers per second at 32 and 64 at least this share of 16's).
TARGET_CONCURRENCY = 16
TARGET_RPS = 1000.0
TARGET_P99_MS = 20.0
NO_COLLAPSE_SHARE = 0.9


def wrk_version() -> str | None:
    """wrk's version line, or None when wrk is not installed."""
    path = shutil.which("wrk")
    if path is None:
        return None
    done = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    first = (done.stdout + done.stderr).splitlines()[0]
    return first.split(" Copyright")[0].strip()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, timeout: float = 5.0) -> bytes:
    request = urllib.request.Request(url, headers={"X-API-Key": API_KEY})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        body: bytes = answer.read()
    return body


def _pids(root: int) -> list[int]:
    """The service's processes: the supervisor and its workers."""
    pids = [root]
    try:
        children = Path(f"/proc/{root}/task/{root}/children").read_text().split()
    except OSError:
        children = []
    return pids + [int(pid) for pid in children]


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_s(pids: list[int]) -> float:
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


@contextmanager
def _service(ctx: Context, workers: int, root: Path) -> Iterator[tuple[str, int]]:
    """`ticket-enrich serve` in its own process; yields its URL and process id."""
    port = _free_port()
    settings = {
        "host": "127.0.0.1",
        "port": str(port),
        "model_dir": str(ctx.trained().artifact_dir),
        "database": str(root / "tickets.sqlite3"),
        "api_key": API_KEY,
        "workers": str(workers),
        "deliver": "true",
        "helpdesk_webhook_url": "http://127.0.0.1:9/hook",
        "helpdesk_webhook_secret": "bench",
        "delivery_poll_interval_s": "3600",
    }
    # This environment, not `ctx.child_env`: its empty bytecode cache would have the service
    # compile every module at start, and the memory that takes stays in its peak RSS.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKET_ENRICH_")}
    env.update({f"TICKET_ENRICH_{k.upper()}": v for k, v in settings.items()})
    log_path = root / "service.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "adapters.local.cli", "serve"],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + STARTUP_LIMIT_S
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"the service stopped:\n{log_path.read_text()[-4000:]}")
                try:
                    _get(f"{url}/healthz")
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the service did not start") from None
                    time.sleep(0.2)
            yield url, process.pid
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)


def _wrk(url: str, mode: str, items: Path, connections: int, seconds: float) -> dict[str, Any]:
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds:g}s",
        f"--timeout={REQUEST_TIMEOUT_S}s",
        "-s",
        str(SCRIPT),
        url,
        "--",
        mode,
        str(items),
        API_KEY,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stderr}")
    data: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return data


def _level(raw: dict[str, Any], cpu_s: float) -> dict[str, Any]:
    seconds = raw["duration_us"] / 1e6
    statuses = {str(k): int(v) for k, v in raw["statuses"].items()}
    ok = sum(n for status, n in statuses.items() if status.startswith("2"))
    refused = statuses.get("503", 0)
    sockets = {k: int(v) for k, v in raw["socket_errors"].items()}
    return {
        "requests": raw["requests"],
        "seconds": seconds,
        "requests_per_s": raw["requests"] / seconds,
        "ok_per_s": ok / seconds,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "statuses": statuses,
        "refused_503": refused,
        "socket_errors": sockets,
        # Every answer that is not a success, and every request that got no answer.
        "errors": raw["requests"] - ok + sum(sockets.values()),
        "server_cpu_ms_per_request": 1000 * cpu_s / max(1, raw["requests"]),
    }


def _reset_peak_rss(pids: list[int]) -> None:
    for pid in pids:
        # 5: reset the process's peak RSS (VmHWM) to its current RSS.
        with suppress(OSError):
            Path(f"/proc/{pid}/clear_refs").write_text("5")


def bench_http(ctx: Context) -> dict[str, Any]:
    """POST and GET at each concurrency against a real `ticket-enrich serve`."""
    version = wrk_version()
    if version is None:
        log(f"wrk is not installed: skipping (install it with `{INSTALL}`)")
        return {"skipped": f"wrk is not installed; install it with `{INSTALL}`"}
    seconds = ctx.settings.http_seconds
    workers = ctx.settings.http_workers
    root = ctx.workdir / "http"
    root.mkdir(parents=True, exist_ok=True)
    tickets, skipped = ctx.test_tickets()
    bodies = root / "bodies.jsonl"
    bodies.write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in tickets))
    result: dict[str, Any] = {
        "tool": {"name": "wrk", "version": version, "threads": 1, "script": "bench/http.lua"},
        "seconds_per_run": seconds,
        "test_tickets": len(tickets),
        "test_tickets_left_out": skipped,
        "concurrency": list(CONCURRENCY),
        "post": {},
        "get": {},
    }
    with _service(ctx, workers, root) as (url, pid):
        pids = _pids(pid)
        result["service"] = {
            "processes": len(pids),
            "workers": len(pids) - 1 if len(pids) > 1 else 1,
            "delivery": "on (enqueued; delivered after the runs)",
        }
        log(f"HTTP: warming up ({len(pids)} processes)")
        _wrk(url, "post", bodies, 8, WARM_UP_S)
        for connections in CONCURRENCY:
            log(f"HTTP: POST /tickets at concurrency {connections}")
            cpu = _cpu_s(_pids(pid))
            if connections == CONCURRENCY[-1]:
                _reset_peak_rss(_pids(pid))
            raw = _wrk(url, "post", bodies, connections, seconds)
            if connections == CONCURRENCY[-1]:
                processes = _pids(pid)
                peaks = [_status_kib(p, "VmHWM") for p in processes]
                result["peak_rss"] = {
                    "run": f"POST /tickets at concurrency {connections}",
                    "per_process_mib": [kib / 1024 for kib in peaks],
                    "sum_of_process_peaks_mib": sum(peaks) / 1024,
                    "pss_after_mib": sum(_pss_kib(p) for p in processes) / 1024,
                }
            result["post"][str(connections)] = _level(raw, _cpu_s(_pids(pid)) - cpu)
        listing = json.loads(_get(f"{url}/tickets?limit=200"))
        ids = [item["id"] for item in listing["items"]]
        offset = len(ids)
        while len(ids) < GET_IDS and offset < listing["total"]:
            page = json.loads(_get(f"{url}/tickets?limit=200&offset={offset}"))
            ids += [item["id"] for item in page["items"]]
            offset += 200
        id_file = root / "ids.txt"
        id_file.write_text("".join(f"{i}\n" for i in ids))
        result["get_ids"] = len(ids)
        for connections in CONCURRENCY:
            log(f"HTTP: GET /tickets/{{id}} at concurrency {connections}")
            cpu = _cpu_s(_pids(pid))
            raw = _wrk(url, "get", id_file, connections, seconds)
            result["get"][str(connections)] = _level(raw, _cpu_s(_pids(pid)) - cpu)
    result["targets"] = http_targets(result)
    return result


def http_targets(result: dict[str, Any]) -> dict[str, Any]:
    """The issue's HTTP targets, measured."""
    post = result["post"]
    at = post[str(TARGET_CONCURRENCY)]
    reference = at["ok_per_s"]
    higher = [post[str(c)]["ok_per_s"] for c in CONCURRENCY if c > TARGET_CONCURRENCY]
    timeouts = sum(
        level["socket_errors"]["timeout"]
        for endpoint in ("post", "get")
        for level in result[endpoint].values()
    )
    return {
        "post_c16_ok_per_s": reference,
        "post_c16_p99_ms": at["p99_ms"],
        "post_c16_met": reference >= TARGET_RPS and at["p99_ms"] <= TARGET_P99_MS,
        "lowest_above_c16_ok_per_s": min(higher),
        "no_collapse_met": min(higher) >= NO_COLLAPSE_SHARE * reference,
        "timeouts": timeouts,
    }


def _rows(levels: dict[str, Any]) -> list[list[str]]:
    rows = []
    for connections, level in levels.items():
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(level["statuses"].items()))
        sockets = sum(level["socket_errors"].values())
        rows.append(
            [
                connections,
                f"{level['ok_per_s']:.0f}",
                fmt(level["p50_ms"], 2),
                fmt(level["p99_ms"], 2),
                f"{level['errors']}" + (f" ({sockets} socket)" if sockets else ""),
                fmt(level["server_cpu_ms_per_request"], 2),
                statuses,
            ]
        )
    return rows


def render_http(result: dict[str, Any]) -> list[str]:
    """The HTTP section of results.md."""
    lines = ["## HTTP (local service, wrk)", ""]
    if "skipped" in result:
        return [*lines, f"Not measured: {result['skipped']}."]
    service = result["service"]
    header = [
        "concurrency",
        "successful req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "server CPU ms/req",
        "answers",
    ]
    lines += [
        f"`ticket-enrich serve` with {service['workers']} worker process(es) and delivery on; "
        f"{result['tool']['version']} on {result['tool']['threads']} thread, "
        f"{result['seconds_per_run']:g} s per run, {result['test_tickets']} test tickets.",
        "",
        "`POST /tickets` (validate, enrich, store, enqueue the delivery):",
        "",
        *table(header, _rows(result["post"])),
        "",
        f"`GET /tickets/{{id}}` ({result['get_ids']} stored tickets):",
        "",
        *table(header, _rows(result["get"])),
    ]
    rss = result.get("peak_rss")
    if rss is not None:
        per = " + ".join(f"{m:.0f}" for m in rss["per_process_mib"])
        lines += [
            "",
            f"Peak RSS under {rss['run']}: {per} MiB per process (supervisor first; "
            f"{rss['sum_of_process_peaks_mib']:.0f} MiB added up, shared pages counted in each); "
            f"their PSS together right after the run {rss['pss_after_mib']:.0f} MiB.",
        ]
    t = result["targets"]
    lines += [
        "",
        *table(
            ["target", "measured", "met"],
            [
                [
                    f"POST at concurrency {TARGET_CONCURRENCY}: ≥ {TARGET_RPS:.0f}/s "
                    f"with p99 ≤ {TARGET_P99_MS:.0f} ms",
                    f"{t['post_c16_ok_per_s']:.0f}/s, p99 {t['post_c16_p99_ms']:.1f} ms",
                    fmt(t["post_c16_met"]),
                ],
                [
                    f"no collapse: successful POST/s at 32 and 64 ≥ "
                    f"{NO_COLLAPSE_SHARE:.0%} of 16's",
                    f"lowest {t['lowest_above_c16_ok_per_s']:.0f}/s; {t['timeouts']} timeouts",
                    fmt(t["no_collapse_met"] and t["timeouts"] == 0),
                ],
            ],
        ),
    ]
    return lines

"""Tickets pulled per second from a real Request Tracker 5 on 127.0.0.1, as `train --from rt`
pulls them: the REST 2 search of resolved tickets, 100 a page, and two JSON searches a page for
their first text attachments, redacted and written to the JSONL export with its state after
every page.

    python -m bench.pull_rt [--tickets N] [--runs R] [--out FILE.json]

Needs RT installed (`sh tests/integration/rt_server.sh install`); the server gets a fresh
SQLite database in a temp dir and a free port, and is stopped at the end. The median of the
runs (each a complete pull into a fresh export) is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from adapters.helpdesk.closed import closed_reader
from adapters.helpdesk.pull import pull_closed_tickets
from adapters.helpdesk.rt import RTClient

SCRIPT = Path(__file__).parents[1] / "tests" / "integration" / "rt_server.sh"
STARTUP_LIMIT_S = 180.0
PRIORITIES = (90, 70, 50, 20)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(process: subprocess.Popen[bytes], root: Path, base_url: str) -> str:
    deadline = time.monotonic() + STARTUP_LIMIT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"RT exited with {process.returncode}; see {root}/server.log")
        token_file = root / "token"
        if token_file.exists():
            token = token_file.read_text().strip()
            try:
                answer = httpx.get(
                    f"{base_url}/REST/2.0/queue/1",
                    headers={"Authorization": f"token {token}"},
                    timeout=5.0,
                )
            except httpx.TransportError:
                pass
            else:
                if answer.status_code == 200:
                    return token
        time.sleep(0.2)
    raise RuntimeError("RT did not start in time")


def _seed(api: httpx.Client, tickets: int) -> None:
    for i in range(tickets):
        created = api.post(
            "/ticket",
            json={
                "Queue": "General",
                "Subject": f"Disk full on node {i}",
                "Content": f"Node {i} reports no space left; call ann{i}@example.com.\n" * 3,
                "ContentType": "text/plain",
                "Priority": PRIORITIES[i % len(PRIORITIES)],
            },
        )
        created.raise_for_status()
        api.put(f"/ticket/{created.json()['id']}", json={"Status": "resolved"}).raise_for_status()


def bench_pull_rt(tickets: int, runs: int) -> dict[str, Any]:
    """Start RT, seed ``tickets`` resolved tickets, and time ``runs`` complete pulls."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        port = _free_port()
        base_url = f"http://127.0.0.1:{port}"
        with (root / "server.log").open("wb") as log:
            process = subprocess.Popen(
                ["sh", str(SCRIPT), "run", str(root), str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "TMPDIR": str(root)},
            )
            try:
                token = _wait(process, root, base_url)
                with httpx.Client(
                    base_url=f"{base_url}/REST/2.0",
                    headers={"Authorization": f"token {token}"},
                    timeout=30.0,
                ) as api:
                    _seed(api, tickets)
                seconds = []
                requests: list[str] = []
                for run in range(runs):
                    client = RTClient(base_url, token, timeout=30.0)
                    requests.clear()
                    # Counted from the connector's own client: what one pull asks of RT.
                    client._http.event_hooks["request"].append(
                        lambda request: requests.append(str(request.url))
                    )
                    started = time.perf_counter()
                    result = pull_closed_tickets(
                        closed_reader(client), root / f"pull-{run}.jsonl", source="bench"
                    )
                    seconds.append(time.perf_counter() - started)
                    client.close()
                    if result.pulled != tickets:
                        raise RuntimeError(f"pulled {result.pulled} of {tickets} tickets")
            finally:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(30)
    median = statistics.median(seconds)
    return {
        "tickets": tickets,
        "runs": runs,
        "pages": result.pages,
        "requests_per_pull": len(requests),
        "seconds": seconds,
        "median_seconds": median,
        "tickets_per_second": tickets / median,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }


def main() -> int:
    """Run the benchmark and print (or write) its result as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.pull_rt", description=__doc__)
    parser.add_argument("--tickets", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = bench_pull_rt(args.tickets, args.runs)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

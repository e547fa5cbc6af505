"""Generated closed tickets for tests that need a real model trained in a second, and
`ticket-enrich serve` run as an operator runs it."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from training.data import DataSpec
from training.model import ModelConfig

_WORDS = {
    "urgent": ["outage", "down", "data loss", "crash", "cannot start", "production"],
    "normal": ["slow", "error message", "configuration", "upgrade", "question"],
}


def write_tickets(path: Path, rows: int = 120, seed: int = 7) -> Path:
    """A JSONL export of generated closed tickets with two labels and one form field."""
    rng = random.Random(seed)
    with path.open("w") as handle:
        for i in range(rows):
            label = "urgent" if rng.random() < 0.4 else "normal"
            words = rng.sample(_WORDS[label], 2) + rng.sample(_WORDS["normal"], 1)
            record = {
                "subject": f"{words[0]} in cluster {i % 7}",
                "description": " ".join(words) + " please help",
                "priority": label,
                "product": rng.choice(["hdfs", "yarn"]) if label == "normal" else "hdfs",
                "team": rng.choice(["storage", "compute"]),
                "created_at": f"2024-01-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
            }
            handle.write(json.dumps(record) + "\n")
    return path


SMALL_SPEC = DataSpec(field_columns=("product",))
SMALL_CONFIG = ModelConfig(c_grid=(1.0, 10.0), min_band_support=5, min_df=1)


ROOT = Path(__file__).parents[1]
WAIT_LIMIT_SECONDS = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(**settings: str) -> dict[str, str]:
    """This process's environment without its TICKET_ENRICH_ variables, plus ``settings`` as
    TICKET_ENRICH_<NAME>."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKET_ENRICH_")}
    env.update({f"TICKET_ENRICH_{k.upper()}": v for k, v in settings.items()})
    return env


def run_cli(
    *args: str,
    cwd: Path = ROOT,
    timeout: float = 900,
    settings: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`ticket-enrich ARGS` in a fresh interpreter, as an operator runs it, with only
    ``settings`` as TICKET_ENRICH_ variables. The timeout guards against a hang: training
    takes minutes on a loaded machine."""
    return subprocess.run(
        [sys.executable, "-m", "adapters.local.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=service_env(**(settings or {})),
        timeout=timeout,
        check=False,
    )


def wait_until(check: Callable[[], Any], what: str) -> Any:
    """``check()``'s first truthy answer, polled for up to two minutes."""
    deadline = time.monotonic() + WAIT_LIMIT_SECONDS
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def serving(
    settings: dict[str, str], log_path: Path, cores: set[int] | None = None
) -> Iterator[str]:
    """`ticket-enrich serve` in its own process on a free loopback port, with ``settings``
    (and, given ``cores``, allowed to run on those cores only); yields its base URL once it is
    healthy, and stops it afterwards."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "adapters.local.cli", "serve"],
            cwd=ROOT,
            env=service_env(**settings, host="127.0.0.1", port=str(port)),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=None if cores is None else lambda: os.sched_setaffinity(0, cores),
        )
        base_url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            if process.poll() is not None:
                raise AssertionError(log_path.read_text(errors="replace"))
            try:
                return httpx.get(f"{base_url}/healthz", timeout=5.0).status_code == 200
            except httpx.TransportError:
                return False

        try:
            wait_until(healthy, "the service to start")
            yield base_url
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)


def bad_ticket_bodies() -> list[tuple[str, bytes]]:
    """The bad-input corpus's hostile bodies for a ticket-creating POST (name, bytes), for
    replaying against every entry point that takes a ticket."""
    corpus = ROOT / "tests" / "corpus" / "bad_inputs.jsonl"
    bodies = []
    for line in corpus.read_text().splitlines():
        case = json.loads(line)
        if case["method"] != "POST" or case["path"] != "/tickets":
            continue
        if "raw_hex" in case:
            body = bytes.fromhex(case["raw_hex"])
        elif "repeat" in case:
            spec = case["repeat"]
            body = (spec["head"] + spec["chunk"] * spec["times"] + spec["tail"]).encode()
        else:
            body = str(case.get("body", "")).encode("utf-8")
        bodies.append((str(case["name"]), body))
    return bodies


@contextmanager
def serving_every_route(
    model_dir: Path, root: Path, api_key: str, **settings: str
) -> Iterator[str]:
    """`serving` with an agent ("ann"), the API key and delivery on, so that every route exists
    (nothing listens at the webhook); afterwards, the service's log must hold no traceback."""
    from adapters.local.auth import hash_password

    every_route = {
        "model_dir": str(model_dir),
        "database": str(root / "tickets.sqlite3"),
        # Retrain jobs and the model registry are written here, never in the working tree.
        "models_dir": str(root / "models"),
        "api_key": api_key,
        "agents": json.dumps({"ann": hash_password("correct horse")}),
        "deliver": "true",
        "helpdesk_webhook_url": "http://127.0.0.1:9/hook",
        "helpdesk_webhook_secret": "s",
        **settings,
    }
    with serving(every_route, root / "service.log") as base_url:
        yield base_url
    log = (root / "service.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]

"""What the benchmarks share: trained models, the test tickets, statistics and machine facts."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import joblib

from core.schema import Limits
from training.data import PRESETS, load_dataset, vendored_data_path
from training.train import TrainingResult, train_model

REPO_ROOT = Path(__file__).resolve().parent.parent
# The label set every single-preset benchmark (cold start, latency, size) uses.
MAIN_PRESET = "hadoop"


# Prepended to child scripts. On Linux, ru_maxrss survives exec: a child started from this
# (large) process reports this process's peak. VmHWM is the child's own program's peak.
PEAK_RSS = """
import resource
def peak_rss_kib():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""


def log(message: str) -> None:
    """Progress goes to stderr, so that stdout carries only the Markdown summary."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def summarize(seconds: Sequence[float]) -> dict[str, float]:
    """Median, min and max of repeated wall times, in milliseconds."""
    ms = [s * 1000.0 for s in seconds]
    return {
        "median_ms": statistics.median(ms),
        "min_ms": min(ms),
        "max_ms": max(ms),
        "runs": len(ms),
    }


def percentiles(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99 and mean of per-call times, in milliseconds."""
    ms = sorted(s * 1000.0 for s in seconds)
    if len(ms) < 2:
        only = ms[0] if ms else float("nan")
        return {"p50_ms": only, "p90_ms": only, "p99_ms": only, "mean_ms": only, "calls": len(ms)}
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return {
        "p50_ms": cuts[49],
        "p90_ms": cuts[89],
        "p99_ms": cuts[98],
        "mean_ms": statistics.fmean(ms),
        "calls": len(ms),
    }


def child_environment(pycache: Path) -> dict[str, str]:
    """The environment children run in: this one, but with bytecode caching on and the caches kept
    in ``pycache``, so that after a first run no side compiles from source (an installed package
    has its .pyc files) and nothing is written into the repository."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def run_child(
    code: str, *args: str, env: dict[str, str] | None = None, python_flags: Sequence[str] = ()
) -> tuple[float, str, str]:
    """Run ``python -c code args`` in a fresh interpreter from the repository root; return the
    wall time seen by this process, the child's stdout and its stderr."""
    command = [sys.executable, *python_flags, "-c", code, *args]
    start = time.perf_counter()
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({done.returncode}):\n{done.stderr}")
    return wall, done.stdout, done.stderr


def child_json(stdout: str) -> dict[str, Any]:
    """The JSON object a child printed on its last line."""
    data: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return data


def _git_commit() -> dict[str, Any]:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": head, "dirty": bool(dirty)}


def machine_facts() -> dict[str, Any]:
    """Where the numbers were measured."""
    versions: dict[str, str | None] = {}
    for dist in ("pydantic", "pydantic-core", "scikit-learn", "numpy", "scipy", "joblib"):
        try:
            versions[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "libraries": versions,
        "git": _git_commit(),
    }


@dataclass(frozen=True)
class RunSettings:
    """How many times each benchmark repeats its measurement."""

    coldstart_repeats: int = 7
    latency_passes: int = 5
    training_repeats: int = 1
    # Tickets the Spark batch benchmark enriches with each engine (about 30 min each at 10^6).
    spark_rows: int = 1_000_000
    # Each wrk run of the HTTP benchmark, and the service's worker processes (0: one per core).
    http_seconds: float = 10.0
    http_workers: int = 0


@dataclass
class Context:
    """Lazily trained models and derived files, shared by every benchmark of one run."""

    workdir: Path
    settings: RunSettings = field(default_factory=RunSettings)
    _trained: dict[str, TrainingResult] = field(default_factory=dict)
    _train_seconds: dict[str, float] = field(default_factory=dict)
    _joblib_path: Path | None = None

    @property
    def child_env(self) -> dict[str, str]:
        """The environment of every child process of this run (see `child_environment`)."""
        return child_environment(self.workdir / "pycache")

    def trained(self, preset: str = MAIN_PRESET) -> TrainingResult:
        """`train_model` on the vendored data with the preset's labels and the default (reference)
        split, into a temporary directory; trained once per run."""
        if preset not in self._trained:
            log(f"training the {preset!r} model (default split) in process")
            dataset = load_dataset(vendored_data_path(), PRESETS[preset])
            start = time.perf_counter()
            self._trained[preset] = train_model(
                dataset,
                models_dir=self.workdir / "models",
                out_dir=self.workdir / "models" / preset,
            )
            self._train_seconds[preset] = time.perf_counter() - start
        return self._trained[preset]

    def train_seconds(self, preset: str) -> float:
        """How long the in-process training of `trained(preset)` took."""
        self.trained(preset)
        return self._train_seconds[preset]

    def joblib_path(self) -> Path:
        """The main model's scikit-learn pipeline saved with `joblib.dump`."""
        if self._joblib_path is None:
            path = self.workdir / "pipeline.joblib"
            joblib.dump(self.trained().model.pipeline, path)
            self._joblib_path = path
        return self._joblib_path

    def test_tickets(self) -> tuple[list[dict[str, str]], dict[str, int]]:
        """The main split's test tickets as the service receives them, leaving out those the
        default size limits refuse (and any without text); also how many were left out, why."""
        limits = Limits()
        tickets: list[dict[str, str]] = []
        skipped = {"over_size_limits": 0, "no_text": 0}
        for example in self.trained().split.test:
            ticket = {
                "subject": example.doc["subject"],
                "description": example.doc["description"],
            }
            too_large = (
                len(ticket["subject"].encode()) > limits.subject_bytes
                or len(ticket["description"].encode()) > limits.description_bytes
                or len(json.dumps(ticket).encode()) > limits.ticket_bytes
            )
            if too_large:
                skipped["over_size_limits"] += 1
            elif not (ticket["subject"].strip() or ticket["description"].strip()):
                skipped["no_text"] += 1
            else:
                tickets.append(ticket)
        return tickets, skipped

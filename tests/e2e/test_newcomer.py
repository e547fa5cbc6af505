"""The README's first command on a clean copy of the tree, as a newcomer runs it.

`make run` builds its own virtual environment with exactly the extras it installs
(``local,train``), so nothing the test suite's all-extras environment holds can hide a cloud SDK,
Spark or a test tool imported where it should not be. In that environment every ``--help``
works, a command whose extra is missing says in one line which extra to install, the service
answers a ticket, refuses a port in use, and a second `make run` starts without reinstalling.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT, free_port, service_env

# A first `make run` creates a virtual environment and installs scikit-learn and FastAPI into it.
INSTALL_LIMIT_SECONDS = 900.0
_IGNORED = shutil.ignore_patterns(
    ".git", ".venv", ".tools", "node_modules", "__pycache__", "*.egg-info", "models", "var"
)


def _clean_copy(destination: Path) -> Path:
    """The project's files as a fresh clone has them (tracked and new, not ignored ones)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    if listed.returncode != 0:  # not a git checkout: copy the tree without what it generated
        shutil.copytree(ROOT, destination, ignore=_IGNORED)
        return destination
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


@dataclass
class Run:
    """One `make run` in the copy: its process (group), port and output."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(30)


def _environment(**settings: str) -> dict[str, str]:
    env = service_env(**settings)
    # As a newcomer's shell: no make of ours around it, no virtual environment active.
    for name in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "VIRTUAL_ENV", "PYTHONPATH"):
        env.pop(name, None)
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    return env


def _make_run(checkout: Path, log: Path, model_dir: Path) -> Run:
    port = free_port()
    env = _environment(host="127.0.0.1", port=str(port), model_dir=str(model_dir))
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["make", "run"],
            cwd=checkout,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    run = Run(process, port, log)
    deadline = time.monotonic() + INSTALL_LIMIT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"make run exited with {process.returncode}:\n{run.output}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                return run
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    run.stop()
    raise AssertionError(f"make run did not answer /healthz in time:\n{run.output}")


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("make") is None:
        pytest.fail("make is not installed: the README's first command needs it")
    return _clean_copy(tmp_path_factory.mktemp("newcomer"))


@pytest.fixture(scope="module")
def first_run(checkout: Path, model_dir: Path) -> Iterator[Run]:
    """The first `make run`: installs, then serves the suite's model (training a first model
    from the vendored export is what `make run` does without one; the CLI tests train it)."""
    run = _make_run(checkout, checkout.parent / "first-run.log", model_dir)
    try:
        yield run
    finally:
        run.stop()


def _cli(checkout: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(checkout / ".venv" / "bin" / "ticket-enrich"), *args],
        cwd=checkout,
        env=_environment(**settings),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_environment_holds_exactly_what_make_run_installs(
    checkout: Path, first_run: Run
) -> None:
    python = checkout / ".venv" / "bin" / "python"
    probe = (
        "import importlib.util as u, json; "
        "print(json.dumps({m: u.find_spec(m) is not None for m in "
        "['fastapi', 'sklearn', 'boto3', 'functions_framework', 'google', 'azure', 'pyspark', "
        "'pytest', 'moto']}))"
    )
    found = json.loads(
        subprocess.run(
            [str(python), "-c", probe], capture_output=True, text=True, check=True
        ).stdout
    )
    assert found == {
        "fastapi": True,
        "sklearn": True,
        "boto3": False,
        "functions_framework": False,
        "google": False,
        "azure": False,
        "pyspark": False,
        "pytest": False,
        "moto": False,
    }


def _command_paths(checkout: Path) -> list[list[str]]:
    """Every command and subcommand of the CLI, as the newcomer's install builds its parser."""
    walk = """
import argparse, json
from adapters.local.cli import build_parser

def walk(parser, path):
    yield path
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, path + [name])

print(json.dumps(list(walk(build_parser(), []))))
"""
    python = checkout / ".venv" / "bin" / "python"
    done = subprocess.run(
        [str(python), "-c", walk],
        cwd=checkout,
        env=_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    paths: list[list[str]] = json.loads(done.stdout)
    return paths


def test_every_help_works_without_the_cloud_extras(checkout: Path, first_run: Run) -> None:
    paths = _command_paths(checkout)
    # The parser is whole: every command of the product, and each cloud under deploy and rollout.
    assert {"train", "serve", "enrich", "batch", "deploy", "rollout"} <= {p[0] for p in paths if p}
    for cloud in ("aws", "gcp", "azure"):
        assert ["deploy", cloud] in paths and ["rollout", cloud] in paths
    for path in paths:
        done = _cli(checkout, *path, "--help")
        assert done.returncode == 0, (path, done.stderr)
        assert done.stdout.startswith("usage: ticket-enrich"), (path, done.stdout)
        assert "Traceback" not in done.stderr, (path, done.stderr)


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (["deploy", "gcp", "--dry-run", "--project", "p", "--region", "europe-west1"], "gcp"),
        (["rollout", "gcp", "status", "--project", "p", "--region", "europe-west1"], "gcp"),
        (["batch", "--engine", "spark", "in.csv", "out"], "spark"),
        (["train", "--engine", "spark"], "spark"),
        (["rollout", "aws", "status"], "aws"),
        (["deploy", "azure", "--dry-run"], "azure-deploy"),
        (["rollout", "azure", "status"], "azure-deploy"),
    ],
)
def test_a_command_whose_extra_is_missing_names_it_in_one_line(
    checkout: Path, first_run: Run, model_dir: Path, args: list[str], extra: str
) -> None:
    done = _cli(checkout, *args, model_dir=str(model_dir))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"pip install 'ticket-enrich[{extra}]'" in lines[0]
    assert "Traceback" not in done.stderr


def test_the_service_answers_a_ticket_with_the_printed_api_key(first_run: Run) -> None:
    printed = re.search(r"X-API-Key: (\S+)", first_run.output)
    assert printed, first_run.output
    response = httpx.post(
        f"http://127.0.0.1:{first_run.port}/tickets",
        headers={"X-API-Key": printed.group(1)},
        json={
            "subject": "NameNode crashes on startup after upgrade",
            "description": "The cluster is down since the upgrade; every client gets errors.",
        },
        timeout=30,
    )
    assert response.status_code == 201, response.text
    assert response.json()["enrichment"]["priority"]["label"] in {"urgent", "normal", "low"}


def test_a_port_in_use_is_refused_in_one_line(checkout: Path, first_run: Run) -> None:
    done = _cli(checkout, "serve", "--host", "127.0.0.1", "--port", str(first_run.port))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"cannot listen on 127.0.0.1:{first_run.port}" in lines[0]
    assert "--port" in lines[0]


def test_training_works_in_the_newcomer_install_on_an_export_without_times(
    checkout: Path, first_run: Run, tmp_path: Path
) -> None:
    export = tmp_path / "closed.csv"
    words = {
        "urgent": "outage down data loss",
        "normal": "question config upgrade",
        "low": "typo docs cosmetic",
    }
    rows = ["subject,description,priority"]
    for i in range(90):
        label = ("urgent", "normal", "low")[i % 3]
        rows.append(f"{words[label].split()[i % 2]} {i},{words[label]} please help,{label}")
    export.write_text("\n".join(rows) + "\n")
    done = _cli(checkout, "train", "--data", str(export), "--out", str(tmp_path / "model"))
    assert done.returncode == 0, done.stderr
    assert "no time column" in done.stderr
    report = (tmp_path / "model" / "report" / "report.md").read_text()
    assert "row order" in report


def test_a_second_make_run_installs_nothing_and_serves(
    checkout: Path, first_run: Run, model_dir: Path
) -> None:
    first_run.stop()
    again = _make_run(checkout, checkout.parent / "second-run.log", model_dir)
    try:
        output = again.output
        assert "pip install" not in output and "python3 -m venv" not in output, output
        assert "ticket-enrich serve" in output
        assert "training a first one" not in output
    finally:
        again.stop()

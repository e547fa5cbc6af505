"""Real local servers for the Azure adapter: Azurite (Blob and Table Storage) and Microsoft's
Azure ML inference server running the scoring script, both on 127.0.0.1, started and stopped
here. `tests/setup.d/40-azure.sh` installs them; a missing one fails with what to run."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]
AZURITE = ROOT / ".tools" / "azurite" / "node_modules" / ".bin" / "azurite"
INFSRV_PYTHON = ROOT / ".tools" / "azmlinfsrv" / "bin" / "python"
SCORE_PY = ROOT / "adapters" / "azure" / "score.py"
SETUP = "sh tests/setup.d/40-azure.sh"
DEADLINE_S = 60.0

# Azurite's well-known development account (public, documented by Microsoft, not a secret).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(condition: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def listening_addresses(port: int) -> set[str]:
    """The IPv4/IPv6 addresses a local TCP socket listens on at ``port`` (from /proc/net)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if int(port_hex, 16) == port and fields[3] == "0A":  # LISTEN
                if len(address) == 8:
                    found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1]))
                else:
                    raw = bytes.fromhex(address)
                    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                    found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class Azurite:
    blob_port: int
    table_port: int
    process: subprocess.Popen[bytes]

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.blob_port}/{ACCOUNT};"
            f"TableEndpoint=http://127.0.0.1:{self.table_port}/{ACCOUNT};"
        )


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """Azurite's Blob and Table services on free loopback ports, telemetry off, in a temporary
    workspace that is removed afterwards."""
    if not AZURITE.exists():
        pytest.fail(f"Azurite is not installed at {AZURITE}: run `{SETUP}`")
    workspace = tempfile.mkdtemp(prefix="azurite-")
    blob_port, queue_port, table_port = free_port(), free_port(), free_port()
    log = open(Path(workspace) / "azurite.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            str(AZURITE),
            "--blobHost", "127.0.0.1", "--blobPort", str(blob_port),
            "--queueHost", "127.0.0.1", "--queuePort", str(queue_port),
            "--tableHost", "127.0.0.1", "--tablePort", str(table_port),
            "--location", workspace,
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_until(
            lambda: (
                process.poll() is not None or (_port_open(blob_port) and _port_open(table_port))
            ),
            "Azurite to listen",
        )
        if process.poll() is not None:
            pytest.fail(f"Azurite exited: {(Path(workspace) / 'azurite.log').read_text()}")
        yield Azurite(blob_port, table_port, process)
    finally:
        _stop(process)
        log.close()
        shutil.rmtree(workspace, ignore_errors=True)


@pytest.fixture(scope="session")
def registered_model(small_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small model as Azure ML mounts a registered folder model: AZUREML_MODEL_DIR is
    `.../<model name>/<version>` and the uploaded folder is one level below it."""
    root = tmp_path_factory.mktemp("azureml-models") / "ticket-priority" / "1"
    shutil.copytree(small_model_dir, root / small_model_dir.name)
    return root


@dataclass(frozen=True)
class InferenceServer:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def inference_server(model_dir: Path, env: dict[str, str]) -> Iterator[InferenceServer]:
    """`azmlinfsrv` running `adapters/azure/score.py` on a free loopback port, through the
    launcher that binds it to 127.0.0.1, until the block ends."""
    if not INFSRV_PYTHON.exists():
        pytest.fail(f"azmlinfsrv's virtualenv is missing at {INFSRV_PYTHON}: run `{SETUP}`")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="azmlinfsrv-"))
    log_path = workdir / "server.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    child_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("TICKET_ENRICH_", "AZUREML_"))
    }
    child_env.update(env)
    child_env["AML_APP_ROOT"] = str(ROOT)
    # gunicorn 23+ opens a control socket under $HOME; parallel servers would share it.
    child_env["GUNICORN_CMD_ARGS"] = "--no-control-socket"
    process = subprocess.Popen(
        [
            str(INFSRV_PYTHON), "-m", "adapters.azure.infsrv",
            "--entry_script", str(SCORE_PY),
            "--model_dir", str(model_dir),
            "--port", str(port),
        ],
        cwd=ROOT,
        env=child_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    server = InferenceServer(port, process, log_path)

    def ready() -> bool:
        if process.poll() is not None:
            return True
        try:
            return httpx.get(server.url + "/", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, "the inference server to answer its liveness probe")
        if process.poll() is not None:
            pytest.fail(f"azmlinfsrv exited ({process.returncode}):\n{server.logs()}")
        yield server
    finally:
        _stop(process)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def scoring_container() -> str:
    """The Blob container the shared scoring server writes its scoring logs to."""
    return f"scoring-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def scoring_server(
    registered_model: Path, azurite: Azurite, scoring_container: str
) -> Iterator[InferenceServer]:
    """The scoring script under azmlinfsrv, logging to Azurite, with a 64 KiB body limit."""
    env = {
        "TICKET_ENRICH_AZURE_SCORING_LOG_CONNECTION_STRING": azurite.connection_string,
        "TICKET_ENRICH_AZURE_SCORING_LOG_CONTAINER": scoring_container,
        "TICKET_ENRICH_AZURE_REQUEST_MAX_BYTES": str(64 * 1024),
    }
    with inference_server(registered_model, env) as running:
        yield running

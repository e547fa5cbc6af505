"""The Cloud Functions source bundle: a zip with ``main.py``, ``requirements.txt``, the core, the
Google Cloud and helpdesk adapters, and the model artifact (loaded from ``model/`` at cold
start, checksums verified). Cloud Build installs the requirements; none is scikit-learn, SciPy,
NumPy or pandas.

The retraining functions have a source of their own (`build_retrain_bundle`): the core, the
Google Cloud adapter and ``training/``, with the train extra's scikit-learn, and no model (they
read and write the Cloud Storage registry)."""

from __future__ import annotations

import re
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from core.artifact import read_artifact

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "adapters/gcp", "adapters/helpdesk")
MODEL_DIR = "model"
# The deploy clients are not needed by the functions themselves.
DEPLOY_ONLY = frozenset({"google-cloud-functions", "google-cloud-run", "google-cloud-scheduler"})
FORBIDDEN = frozenset({"scikit-learn", "sklearn", "scipy", "numpy", "pandas", "joblib"})

MAIN = '''"""Cloud Functions entry points: the Python runtime loads main.py from the source root."""

from adapters.gcp.main import drain_outbox, on_ticket_created, on_ticket_written

__all__ = ["drain_outbox", "on_ticket_created", "on_ticket_written"]
'''

RETRAIN_PACKAGES = ("core", "adapters/gcp", "training")
# Spark's trainer runs on a cluster, not in a function.
RETRAIN_EXCLUDED = frozenset({"training/spark.py"})
# What the retraining functions need of the gcp extra.
RETRAIN_GCP = frozenset(
    {"functions-framework", "cloudevents", "google-events", "google-cloud-storage"}
)
RETRAIN_MAIN = '''"""Cloud Functions entry points of the retraining functions (their own
source, with scikit-learn)."""

from adapters.gcp.retrain import retrain_on_schedule, retrain_on_upload

__all__ = ["retrain_on_schedule", "retrain_on_upload"]
'''

# A zip with fixed timestamps, so that the same sources make the same bundle.
_EPOCH = (1980, 1, 1, 0, 0, 0)


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower()


def requirements(pyproject: Path = REPO / "pyproject.toml") -> list[str]:
    """The runtime's dependencies plus the gcp extra's, without the deploy-only client."""
    project = tomllib.loads(pyproject.read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["gcp"]]
    chosen: dict[str, str] = {}
    for requirement in wanted:
        name = _name(requirement)
        if name not in DEPLOY_ONLY:
            chosen.setdefault(name, requirement)
    forbidden = FORBIDDEN & set(chosen)
    if forbidden:
        raise ValueError(f"the function bundle must not need {sorted(forbidden)}")
    return list(chosen.values())


def retrain_requirements(pyproject: Path = REPO / "pyproject.toml") -> list[str]:
    """The runtime's dependencies, the train extra's and the part of the gcp extra that the
    retraining functions use."""
    project = tomllib.loads(pyproject.read_text())["project"]
    extras = project["optional-dependencies"]
    gcp = [r for r in extras["gcp"] if _name(r) in RETRAIN_GCP]
    chosen: dict[str, str] = {}
    for requirement in [*project["dependencies"], *extras["train"], *gcp]:
        chosen.setdefault(_name(requirement), requirement)
    return list(chosen.values())


@dataclass(frozen=True)
class Bundle:
    """A built bundle: where it is, its size, what it holds and which model it carries."""

    path: Path
    size_bytes: int
    files: int
    requirements: list[str]
    model_version: str | None


def _sources(
    packages: tuple[str, ...] = PACKAGES, excluded: frozenset[str] = frozenset()
) -> list[tuple[Path, str]]:
    files = [(REPO / "adapters" / "__init__.py", "adapters/__init__.py")]
    for package in packages:
        for path in sorted((REPO / package).rglob("*.py")):
            name = path.relative_to(REPO).as_posix()
            if name not in excluded:
                files.append((path, name))
    return files


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


def build_bundle(model_dir: Path, out: Path) -> Bundle:
    """Write the bundle to ``out`` (a .zip), with the verified artifact at ``model_dir``."""
    artifact = read_artifact(model_dir)  # refuses a modified or truncated artifact
    model_files = ["checksums.json", *sorted(artifact.checksums)]
    reqs = requirements()
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w") as archive:
        _add(archive, "main.py", MAIN.encode())
        _add(archive, "requirements.txt", ("\n".join(reqs) + "\n").encode())
        for path, name in _sources():
            _add(archive, name, path.read_bytes())
        for name in model_files:
            _add(archive, f"{MODEL_DIR}/{name}", (Path(model_dir) / name).read_bytes())
        count = len(archive.infolist())
    return Bundle(
        path=out,
        size_bytes=out.stat().st_size,
        files=count,
        requirements=reqs,
        model_version=str(artifact.metadata.get("version", "unknown")),
    )


def build_retrain_bundle(out: Path) -> Bundle:
    """Write the retraining functions' source to ``out`` (a .zip)."""
    reqs = retrain_requirements()
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w") as archive:
        _add(archive, "main.py", RETRAIN_MAIN.encode())
        _add(archive, "requirements.txt", ("\n".join(reqs) + "\n").encode())
        for path, name in _sources(RETRAIN_PACKAGES, RETRAIN_EXCLUDED):
            _add(archive, name, path.read_bytes())
        count = len(archive.infolist())
    return Bundle(
        path=out, size_bytes=out.stat().st_size, files=count, requirements=reqs, model_version=None
    )

"""The Lambda deployment package: `sam build` of deploy/aws/template.yaml, the model bundled
into each function's directory, and what it weighs."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.artifact import CHECKSUMS_FILE
from core.errors import TicketEnrichError

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "template.yaml"
REPO_ROOT = HERE.parent.parent
SAM_IN_TOOLS = REPO_ROOT / ".tools" / "sam" / "bin" / "sam"
# Top-level packages that must never reach the functions: the training stack.
FORBIDDEN = ("sklearn", "scipy", "pandas", "numpy", "joblib", "matplotlib", "training")
BUNDLED_MODEL_DIR = "model"  # /var/task/model, as the template's TICKET_ENRICH_MODEL_DIR says
# Functions that train: they carry the training stack, serve nothing and get no bundled model.
TRAINING_FUNCTIONS = ("RetrainFunction",)
# Third-party test suites that no function runs: 40 MB of the retrain function's package.
_PRUNED_TESTS = ("sklearn", "scipy", "numpy")
# The retrain function's runtime (python3.12) for `sam build`, linked by tests/setup.d/20-aws.sh.
RUNTIMES_IN_TOOLS = REPO_ROOT / ".tools" / "runtimes"


@dataclass
class PackageReport:
    """The size and contents of one function's package."""

    function: str
    directory: Path
    unzipped_bytes: int = 0
    zipped_bytes: int = 0
    files: int = 0
    forbidden: list[str] = field(default_factory=list)
    largest: dict[str, int] = field(default_factory=dict)
    bundles_boto3: bool = False
    model_bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "function": self.function,
            "unzipped_bytes": self.unzipped_bytes,
            "zipped_bytes": self.zipped_bytes,
            "files": self.files,
            "forbidden": self.forbidden,
            "largest_top_level_bytes": self.largest,
            "bundles_boto3": self.bundles_boto3,
            "model_bytes": self.model_bytes,
        }


def find_sam(explicit: str | None = None) -> str:
    """The SAM CLI: ``explicit``, else .tools/sam (the test setup installs it), else PATH."""
    if explicit:
        return explicit
    if SAM_IN_TOOLS.exists():
        return str(SAM_IN_TOOLS)
    found = shutil.which("sam")
    if found is None:
        raise TicketEnrichError(
            "the AWS SAM CLI is not installed: run tests/setup.d/20-aws.sh (installs it into "
            ".tools/sam) or pip install aws-sam-cli"
        )
    return found


def sam_environment() -> dict[str, str]:
    """The environment for SAM: no telemetry, and no TICKET_ENRICH_ settings leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKET_ENRICH_")}
    env["SAM_CLI_TELEMETRY"] = "0"
    if RUNTIMES_IN_TOOLS.is_dir():
        env["PATH"] = os.pathsep.join([str(RUNTIMES_IN_TOOLS), env.get("PATH", "")])
    return env


def sam_build(sam: str, build_dir: Path, template: Path = TEMPLATE) -> Path:
    """Run ``sam build`` (no container: pip fetches the arm64 wheels); return the built
    template. Raises with SAM's output when the build fails."""
    done = subprocess.run(
        [sam, "build", "--template-file", str(template), "--build-dir", str(build_dir)],
        cwd=template.parent,
        env=sam_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise TicketEnrichError(f"sam build failed:\n{done.stdout}\n{done.stderr}")
    return build_dir / "template.yaml"


def function_dirs(build_dir: Path) -> list[Path]:
    """The built functions' directories."""
    return sorted(p for p in build_dir.iterdir() if p.is_dir())


def is_training_function(function_dir: Path) -> bool:
    """Whether the built function trains (and may carry scikit-learn) rather than serves."""
    return function_dir.name in TRAINING_FUNCTIONS


def prune_tests(function_dir: Path) -> int:
    """Remove the test suites of the scientific libraries from a built function; return the
    bytes freed."""
    freed = 0
    for top in _PRUNED_TESTS:
        root = function_dir / top
        if not root.is_dir():
            continue
        for tests in sorted(root.rglob("tests"), key=lambda p: len(p.parts)):
            if tests.is_dir():
                freed += sum(f.stat().st_size for f in tests.rglob("*") if f.is_file())
                shutil.rmtree(tests)
    return freed


def bundle_model(function_dir: Path, model_dir: Path) -> int:
    """Copy the artifact's verified files (those checksums.json lists, and it) into the
    function's ``model/``; return their bytes. Reports and evaluations stay behind."""
    target = function_dir / BUNDLED_MODEL_DIR
    if target.exists():
        shutil.rmtree(target)
    target.mkdir()
    names = [*json.loads((model_dir / CHECKSUMS_FILE).read_bytes()), CHECKSUMS_FILE]
    total = 0
    for name in names:
        shutil.copy2(model_dir / name, target / name)
        total += (target / name).stat().st_size
    return total


def measure(function_dir: Path) -> PackageReport:
    """Zip the directory in memory as Lambda would receive it and look at what is inside."""
    report = PackageReport(function=function_dir.name, directory=function_dir)
    top: dict[str, int] = {}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(function_dir.rglob("*")):
            if not path.is_file():
                continue
            relative = path.relative_to(function_dir)
            size = path.stat().st_size
            report.unzipped_bytes += size
            report.files += 1
            head = relative.parts[0]
            top[head] = top.get(head, 0) + size
            archive.write(path, relative.as_posix())
    report.zipped_bytes = len(buffer.getvalue())
    names = {name.split("-")[0].split(".")[0].lower() for name in top}
    report.forbidden = sorted(f for f in FORBIDDEN if f in names)
    report.bundles_boto3 = "boto3" in names or "botocore" in names
    report.model_bytes = top.get(BUNDLED_MODEL_DIR, 0)
    report.largest = dict(sorted(top.items(), key=lambda item: -item[1])[:8])
    return report


def built_resources(built_template: Path) -> list[tuple[str, str]]:
    """(logical id, type) of every resource of the built template, in its order."""
    text = built_template.read_text()
    resources: list[tuple[str, str]] = []
    in_resources = False
    current: str | None = None
    for line in text.splitlines():
        if not line.startswith(" "):
            in_resources = line.startswith("Resources:")
            continue
        if not in_resources:
            continue
        if line.startswith("  ") and not line.startswith("   ") and line.rstrip().endswith(":"):
            current = line.strip()[:-1]
        elif current and line.strip().startswith("Type:") and line.startswith("    Type:"):
            resources.append((current, line.split(":", 1)[1].strip()))
            current = None
    return resources

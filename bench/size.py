"""Sizes on disk: the artifact, the joblib pickle, and the installed serving dependencies beside
the scikit-learn stack."""

from __future__ import annotations

import gzip
import json
import re
import tomllib
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from packaging.markers import default_environment
from packaging.requirements import Requirement

from bench.context import REPO_ROOT, Context, log
from bench.markdown import size, table
from core.artifact import CHECKSUMS_FILE, MODEL_FILE, WEIGHTS_FILE

SKLEARN_NAMED = ("scikit-learn", "numpy", "scipy")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _dist_bytes(name: str) -> int | None:
    """Sum of the sizes of a distribution's recorded files, or None when it is not installed."""
    try:
        dist = importlib_metadata.distribution(name)
    except importlib_metadata.PackageNotFoundError:
        return None
    total = 0
    for file in dist.files or []:
        path = Path(str(dist.locate_file(file)))
        if path.is_file():
            total += path.stat().st_size
    return total


def _closure(roots: tuple[str, ...]) -> list[str]:
    """The roots and everything they require at run time here (markers evaluated, no extras)."""
    environment = {k: str(v) for k, v in default_environment().items()} | {"extra": ""}
    seen: list[str] = []
    stack = [_normalize(r) for r in roots]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.append(name)
        try:
            requires = importlib_metadata.requires(name) or []
        except importlib_metadata.PackageNotFoundError:
            continue
        for spec in requires:
            requirement = Requirement(spec)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                stack.append(_normalize(requirement.name))
    return sorted(seen)


def _serving_roots() -> tuple[str, ...]:
    """The service's own dependencies, as pyproject.toml declares them today (the installed
    metadata of an editable install can be older)."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    return tuple(Requirement(spec).name for spec in project["dependencies"])


def _group(names: list[str]) -> dict[str, Any]:
    sizes = {name: _dist_bytes(name) for name in names}
    return {
        "distributions": sizes,
        "total_bytes": sum(v for v in sizes.values() if v is not None),
        "missing": [name for name, v in sizes.items() if v is None],
    }


def _tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def bench_size(ctx: Context) -> dict[str, Any]:
    """Bytes on disk of what serving loads, and of what each runtime needs installed."""
    log("size: artifact, pickle and installed distributions")
    result = ctx.trained()
    root = result.artifact_dir
    model_bytes = (root / MODEL_FILE).read_bytes() + (root / WEIGHTS_FILE).read_bytes()
    spec = json.loads((root / MODEL_FILE).read_bytes())
    # Every file the checksums cover, and the checksums: what a deployment ships and verifies.
    verified = json.loads((root / CHECKSUMS_FILE).read_bytes())
    files = {name: (root / name).stat().st_size for name in [*verified, CHECKSUMS_FILE]}
    return {
        "artifact": {
            "files_bytes": files,
            "model_bytes": len(model_bytes),
            "model_gzip_bytes": len(gzip.compress(model_bytes, compresslevel=9)),
            "loaded_files_bytes": sum(files.values()),
            "whole_dir_bytes": _tree_bytes(root),
            "vocabulary_terms": sum(len(block["terms"]) for block in spec["blocks"]),
            "targets": {name: len(t["labels"]) for name, t in spec["targets"].items()},
            "regressors": sorted(spec.get("regressors", {})),
        },
        "joblib_pickle_bytes": ctx.joblib_path().stat().st_size,
        "core_source_bytes": sum(p.stat().st_size for p in (REPO_ROOT / "core").glob("*.py")),
        "installed": {
            "serving_dependencies": _group(_closure(_serving_roots())),
            "sklearn_numpy_scipy": _group(list(SKLEARN_NAMED)),
            "sklearn_stack_with_dependencies": _group(_closure((*SKLEARN_NAMED, "joblib"))),
        },
    }


def render_size(result: dict[str, Any]) -> list[str]:
    """Markdown for `bench_size`."""
    a = result["artifact"]
    installed = result["installed"]

    def listing(group: dict[str, Any]) -> str:
        return ", ".join(
            f"{name} {size(b) if b is not None else 'not installed'}"
            for name, b in group["distributions"].items()
        )

    targets = ", ".join(f"{name} ({n} labels)" for name, n in a["targets"].items())
    model_what = (
        f"model, `{MODEL_FILE}` + `{WEIGHTS_FILE}`: {a['vocabulary_terms']} terms; "
        f"targets {targets}"
    )
    if a["regressors"]:
        model_what += f"; regressors {', '.join(a['regressors'])}"
    files = ", ".join(f"`{name}` {size(b)}" for name, b in a["files_bytes"].items())
    return [
        "## Size on disk",
        "",
        *table(
            ["what", "size"],
            [
                [model_what, size(a["model_bytes"])],
                ["the same, gzip -9 (for context)", size(a["model_gzip_bytes"])],
                [f"artifact files serving verifies ({files})", size(a["loaded_files_bytes"])],
                ["whole artifact directory (with `report/`)", size(a["whole_dir_bytes"])],
                [
                    "scikit-learn priority pipeline, `joblib.dump`",
                    size(result["joblib_pickle_bytes"]),
                ],
                ["`core/` source", size(result["core_source_bytes"])],
                [
                    "installed serving dependencies",
                    size(installed["serving_dependencies"]["total_bytes"]),
                ],
                [
                    "installed scikit-learn + NumPy + SciPy",
                    size(installed["sklearn_numpy_scipy"]["total_bytes"]),
                ],
                [
                    "installed scikit-learn stack with all its dependencies and joblib",
                    size(installed["sklearn_stack_with_dependencies"]["total_bytes"]),
                ],
            ],
        ),
        "",
        f"- Serving dependencies: {listing(installed['serving_dependencies'])}.",
        f"- scikit-learn stack: {listing(installed['sklearn_stack_with_dependencies'])}.",
        "- Installed sizes sum the files each distribution records (`importlib.metadata` "
        "`files()`, i.e. its RECORD), as installed here.",
    ]

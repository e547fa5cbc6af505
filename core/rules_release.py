"""A model released with other priority rules: a new, immutable artifact version.

A model version never changes under its name: registries copy a version's files once and
refuse another artifact under the same name, and every enrichment names the version that
produced it. So rules edited on the local service reach a cloud or Spark as a new artifact,
the same model with these rules as its `rules.json`, under a version derived from the
model's (``<trained version>-rules-<first 8 hex digits of the rules' SHA-256>``: the same
rules on the same model always make the same name). Its `metadata.json` says where it came
from: ``parent`` (the model version it was made from, and the SHA-256 of that version's
`checksums.json`) and ``rules`` (the rules file's own version, their SHA-256, the rule names,
who released them and when, and the rules the parent shipped). The new artifact then goes to
a registry or a deploy exactly as a trained one does.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.artifact import (
    CHECKSUMS_FILE,
    VERIFIED_FILES,
    Artifact,
    read_artifact,
    write_artifact,
)
from core.enricher import load_enricher
from core.errors import ArtifactError, InvalidRules
from core.rules import RULES_FILE, RuleSet, validate_rules

# The training report is not covered by the checksums; it describes the same model, so the
# released artifact keeps it.
REPORT_DIR = "report"


@dataclass(frozen=True)
class ReleasedModel:
    """An artifact written by `release_rules`: where, its version and its rules."""

    path: Path
    version: str
    parent: str
    rules: RuleSet
    metadata: dict[str, Any]


def read_rules_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A rules file's JSON object; `InvalidRules` when it is missing or not one JSON object."""
    source = Path(path)
    try:
        spec = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidRules(f"no rules file at {source}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRules(f"{source} is not valid JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise InvalidRules(f"{source} is not one JSON object")
    return spec


def priority_labels(model_dir: str | os.PathLike[str]) -> list[str]:
    """The priority labels of a verified artifact, which a rules file must use."""
    artifact = read_artifact(model_dir)
    return [str(label) for label in artifact.model["targets"]["priority"]["labels"]]


def rules_document_bytes(rules: RuleSet) -> bytes:
    """A rule set as an artifact's `rules.json` holds it (as `core.rules.save_rules` writes)."""
    return json.dumps(rules.as_dict(), indent=2).encode() + b"\n"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def released_version(trained_version: str, rules: RuleSet) -> str:
    """The version of ``trained_version``'s model released with ``rules``: derived from the
    trained model's version and the rules' content, so that it is new for other rules and the
    same for the same ones."""
    digest = _sha256(json.dumps(rules.as_dict(), sort_keys=True).encode())
    return f"{trained_version}-rules-{digest[:8]}"


def _shipped(artifact: Artifact, labels: list[str]) -> dict[str, Any] | None:
    """The rules an artifact ships, as `RuleSet.as_dict` writes them (None: none, or rules
    that no longer validate, which any valid set replaces)."""
    if RULES_FILE not in artifact.checksums:
        return None
    try:
        return validate_rules(artifact.read_json(RULES_FILE), labels).as_dict()
    except InvalidRules:
        return None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def release_rules(
    model_dir: str | os.PathLike[str],
    spec: Mapping[str, Any],
    out_dir: str | os.PathLike[str],
    *,
    by: str,
    source: str | None = None,
    at: str | None = None,
) -> ReleasedModel:
    """Write a new artifact at ``out_dir``: the model in ``model_dir`` with ``spec`` as its
    priority rules, under a new version (`released_version`), with fresh checksums and its
    provenance in `metadata.json` (``by`` released it, ``at`` a time, default now; ``source``
    says where the rules came from). The rules are validated for the model's labels first
    (`InvalidRules` naming the rule); the artifact is written to a temporary directory beside
    ``out_dir``, loaded there with its self-check, and only then renamed to ``out_dir``, which
    must not exist. The model in ``model_dir`` is only read."""
    out = Path(out_dir)
    if out.exists():
        raise ArtifactError(f"{out} already exists: release into a new directory")
    artifact = read_artifact(model_dir)
    labels = [str(label) for label in artifact.model["targets"]["priority"]["labels"]]
    rules = validate_rules(spec, labels)
    parent_metadata = artifact.metadata
    parent = str(parent_metadata.get("version", ""))
    if not parent:
        raise ArtifactError(f"{artifact.path} has no version in its metadata")
    # A release of a release is named after the trained model, not after a chain of releases.
    trained = str((parent_metadata.get("parent") or {}).get("trained") or parent)
    version = released_version(trained, rules)
    if version == parent or _shipped(artifact, labels) == rules.as_dict():
        raise ArtifactError(f"model {parent} already ships these rules: nothing to release")
    document = rules_document_bytes(rules)
    released_at = at or _now()
    shipped = parent_metadata.get("rules")
    metadata = {
        **parent_metadata,
        "version": version,
        "created_at": released_at,
        "parent": {
            "version": parent,
            "trained": trained,
            "checksums_sha256": _sha256((artifact.path / CHECKSUMS_FILE).read_bytes()),
        },
        "rules": {
            "file": RULES_FILE,
            "version": rules.version,
            "names": [rule.name for rule in rules.rules],
            "sha256": _sha256(document),
            "released_by": by,
            "released_at": released_at,
            "source": source,
            "parent_rules": shipped.get("version") if isinstance(shipped, Mapping) else None,
        },
    }
    # Every further file of the parent (similar-ticket index, drift reference...) is copied as
    # verified bytes; only the rules change.
    extra: dict[str, Any] = {
        name: artifact.read_bytes(name)
        for name in artifact.checksums
        if name not in VERIFIED_FILES and name not in (CHECKSUMS_FILE, RULES_FILE)
    }
    extra[RULES_FILE] = document
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        write_artifact(staging, artifact.model, artifact.weights, metadata, artifact.samples, extra)
        report = artifact.path / REPORT_DIR
        if report.is_dir():
            shutil.copytree(report, staging / REPORT_DIR)
        # mkdtemp makes an owner-only directory; an artifact is meant to be read by others.
        os.chmod(staging, 0o755)
        loaded = load_enricher(staging)
        if loaded.rules is None or loaded.rules.as_dict() != rules.as_dict():
            raise ArtifactError(f"{out}: the written artifact does not apply the released rules")
        if loaded.model_version != version:
            raise ArtifactError(f"{out}: the written artifact is not version {version}")
        os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ReleasedModel(out, version, parent, rules, metadata)

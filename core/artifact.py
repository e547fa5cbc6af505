"""The model artifact: a directory of JSON files whose checksums loading verifies.

Layout: `model.json` (vocabularies and structure, see `core.model`), `weights.bin` (every
float, as little-endian float64), `metadata.json` (name, version, data,
metrics, library versions), `samples.jsonl` (tickets with the outputs they must give) and
`checksums.json` (SHA-256 of those and of any further file, such as `index.json` and
`index.bin`, the similar-ticket index, which is read only when that field is on). Nothing in it
is executable; nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import ArtifactError

MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.bin"
METADATA_FILE = "metadata.json"
SAMPLES_FILE = "samples.jsonl"
CHECKSUMS_FILE = "checksums.json"
VERIFIED_FILES = (MODEL_FILE, WEIGHTS_FILE, METADATA_FILE, SAMPLES_FILE)


@dataclass(frozen=True)
class Artifact:
    """The verified, decoded contents of an artifact directory."""

    path: Path
    model: dict[str, Any]
    weights: bytes
    metadata: dict[str, Any]
    samples: list[dict[str, Any]]
    checksums: dict[str, str]

    def read_bytes(self, name: str) -> bytes:
        """Read and verify one more file of the artifact (e.g. the similar-ticket index), on
        demand, so that a field switched off never pays for loading it."""
        if name not in self.checksums:
            raise ArtifactError(f"{self.path} has no {name}; retrain to include it")
        try:
            raw = (self.path / name).read_bytes()
        except FileNotFoundError:
            raise ArtifactError(f"{self.path} is missing {name}") from None
        if self.checksums[name] != _sha256(raw):
            raise ArtifactError(
                f"{self.path / name} does not match its checksum: the artifact was modified or "
                "truncated; retrain or copy it again"
            )
        return raw

    def read_json(self, name: str) -> Any:
        """Like `read_bytes`, for a JSON file."""
        raw = self.read_bytes(name)
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ArtifactError(f"{self.path / name} is not valid JSON: {exc}") from None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_artifact(path: str | os.PathLike[str]) -> Artifact:
    """Read an artifact directory, refusing it if any file is missing, modified or truncated."""
    root = Path(path)
    if not root.is_dir():
        raise ArtifactError(f"no model artifact at {root}: train one with `ticket-enrich train`")
    try:
        checksums = json.loads((root / CHECKSUMS_FILE).read_bytes())
    except FileNotFoundError:
        raise ArtifactError(f"{root} has no {CHECKSUMS_FILE}: not a model artifact") from None
    except ValueError:
        raise ArtifactError(f"{root / CHECKSUMS_FILE} is not valid JSON") from None
    raw: dict[str, bytes] = {}
    for name in VERIFIED_FILES:
        try:
            raw[name] = (root / name).read_bytes()
        except FileNotFoundError:
            raise ArtifactError(f"{root} is missing {name}") from None
        if not isinstance(checksums, dict) or checksums.get(name) != _sha256(raw[name]):
            raise ArtifactError(
                f"{root / name} does not match its checksum: the artifact was modified or "
                "truncated; retrain or copy it again"
            )
    try:
        model = json.loads(raw[MODEL_FILE])
        metadata = json.loads(raw[METADATA_FILE])
        samples = [json.loads(line) for line in raw[SAMPLES_FILE].splitlines() if line.strip()]
    except ValueError as exc:
        raise ArtifactError(f"{root} holds a file that is not valid JSON: {exc}") from None
    return Artifact(root, model, raw[WEIGHTS_FILE], metadata, samples, checksums)


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        # mkstemp creates owner-only files; an artifact is meant to be read by other users.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_artifact(
    path: str | os.PathLike[str],
    model: Mapping[str, Any],
    weights: bytes,
    metadata: Mapping[str, Any],
    samples: Sequence[Mapping[str, Any]],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write an artifact directory; the checksums file is written last, so a crash mid-way
    leaves a directory that loading refuses rather than a half-written model that loads.
    ``extra`` names further files: bytes are written as they are, anything else as JSON."""
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    (root / CHECKSUMS_FILE).unlink(missing_ok=True)
    payloads = {
        MODEL_FILE: json.dumps(model, separators=(",", ":")).encode(),
        WEIGHTS_FILE: weights,
        METADATA_FILE: json.dumps(metadata, indent=2, sort_keys=True).encode() + b"\n",
        SAMPLES_FILE: b"".join(json.dumps(s, sort_keys=True).encode() + b"\n" for s in samples),
    }
    for name, value in (extra or {}).items():
        payloads[name] = (
            value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode()
        )
    for name, data in payloads.items():
        _write_atomic(root / name, data)
    checksums = {name: _sha256(data) for name, data in payloads.items()}
    _write_atomic(root / CHECKSUMS_FILE, json.dumps(checksums, indent=2).encode() + b"\n")
    return root


def replace_file(path: str | os.PathLike[str], name: str, data: bytes) -> None:
    """Write one further file of an existing artifact (such as its priority rules) and its
    checksum; the model's own files cannot be replaced. The file is written first and
    `checksums.json` last, each atomically."""
    root = Path(path)
    if name in VERIFIED_FILES or name == CHECKSUMS_FILE or Path(name).name != name:
        raise ArtifactError(f"{name} cannot be replaced in an artifact; retrain instead")
    checksums = read_artifact(root).checksums
    _write_atomic(root / name, data)
    checksums[name] = _sha256(data)
    _write_atomic(root / CHECKSUMS_FILE, json.dumps(checksums, indent=2).encode() + b"\n")

"""Priority rules that change while the service runs: an admin's edits, kept as versioned files
with an audit, and the source an enricher asks for the rules in force.

Edits are kept in one directory as `rules-000001.json`, `rules-000002.json`, ... (each a whole
rules file as `core.rules` reads it, never overwritten), beside an append-only `audit.jsonl`
saying for each version who wrote it, when, what changed (rules added, removed, changed) and
the version in force before. `RulesDirectory` reads and writes them.

`ReloadingRules` is the `RulesSource` an enricher holds: at most once a second (a clock read per
ticket otherwise) it looks whether the directory, its newest file or the served model changed,
and if so swaps in the rules now in force, so that a version written by another process (a
second worker, an operator) is in force within a second, without a restart. A file that does
not validate is refused with a log line naming the rule, and the rules in force stay.

Which rules are in force: the newest version in the directory, unless the served model ships
rules newer than those that version was edited from (its `rules.json` has a later `version`
than the one the audit recorded) or the version does not fit the served model's labels; then
the newest older version that fits, else the model's own (version 0).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from core.artifact import Artifact
from core.errors import InvalidRules
from core.rules import (
    RULES_FILE,
    RuleSet,
    load_rules,
    rules_changes,
    rules_version_key,
    validate_rules,
)

_log = logging.getLogger(__name__)

RULES_DIR = "rules"
AUDIT_FILE = "audit.jsonl"
# The version number of the served model's own rules (its artifact's rules.json).
MODEL_RULES = 0
CHECK_INTERVAL_S = 1.0
_FILE_RE = re.compile(r"^rules-(\d{6,})\.json$")


class RulesSource(Protocol):
    """Where an enricher gets the priority rules in force when they can change while it
    serves; asked once per ticket, so it must answer in a few hundred nanoseconds."""

    def current(self) -> RuleSet | None:
        """The rules in force now (None: no rules)."""
        ...


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RulesDirectory:
    """The versioned rules files and their audit in one directory (created on the first
    write). Safe for several processes: a version number is taken by creating its file, which
    fails if another process took it first, and each audit line is one append."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path(self, version: int) -> Path:
        """The file of a version."""
        return self.root / f"rules-{version:06d}.json"

    def versions(self) -> list[int]:
        """The versions on disk, oldest first."""
        try:
            names = os.listdir(self.root)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(int(m.group(1)) for m in map(_FILE_RE.match, names) if m is not None)

    def read(self, version: int) -> dict[str, Any]:
        """A version's rules document as written (not validated); `InvalidRules` when it is
        missing or not a JSON object."""
        path = self.path(version)
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InvalidRules(f"no rules version {version} ({path.name})") from None
        except ValueError as exc:
            raise InvalidRules(f"{path.name} is not valid JSON: {exc}") from None
        if not isinstance(spec, dict):
            raise InvalidRules(f"{path.name} is not one JSON object")
        return spec

    def audit(self) -> list[dict[str, Any]]:
        """The audit entries, oldest first; a line that cannot be read (a write cut short) is
        skipped."""
        try:
            lines = (self.root / AUDIT_FILE).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        entries = []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("version"), int):
                entries.append(entry)
        return entries

    def entry(self, version: int) -> dict[str, Any] | None:
        """The audit entry of a version (None for a file written by hand)."""
        return next((e for e in reversed(self.audit()) if e["version"] == version), None)

    def add(self, spec: Mapping[str, Any], entry: Mapping[str, Any]) -> int:
        """Write ``spec`` as the next version (its `version` field set to ``edited.N``) and
        append ``entry`` with that number to the audit; the version written."""
        self.root.mkdir(parents=True, exist_ok=True)
        while True:
            version = max(self.versions(), default=MODEL_RULES) + 1
            document = {**spec, "version": f"edited.{version}"}
            fd, scratch = tempfile.mkstemp(dir=self.root, prefix=".incoming.", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(json.dumps(document, indent=2) + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())
                # A hard link fails when the name exists: a version is never overwritten, and
                # of two processes writing at once, one takes the next number.
                os.link(scratch, self.path(version))
            except FileExistsError:
                continue
            finally:
                os.unlink(scratch)
            break
        line = json.dumps({"version": version, **entry}, sort_keys=True) + "\n"
        # One write of a line opened for append: lines of several processes never interleave.
        with open(self.root / AUDIT_FILE, "a", encoding="utf-8") as audit:
            audit.write(line)
        return version

    def signature(self, newest: int | None) -> tuple[Any, ...]:
        """What changes when a version is added or removed (the directory's mtime) or the
        newest file is edited in place (its mtime, size, inode): two `stat` calls."""
        try:
            folder = os.stat(self.root).st_mtime_ns
        except FileNotFoundError:
            return (None,)
        if newest is None:
            return (folder,)
        try:
            found = os.stat(self.path(newest))
        except FileNotFoundError:
            return (folder, None)
        return (folder, found.st_mtime_ns, found.st_size, found.st_ino)


@dataclass(frozen=True)
class RulesInForce:
    """The rules a service applies, which version they are and why these."""

    rules: RuleSet | None
    version: int
    reason: str
    model_version: str

    @property
    def source(self) -> str:
        """``model`` (the served artifact's own rules.json) or ``edited``."""
        return "model" if self.version == MODEL_RULES else "edited"

    def document(self) -> dict[str, Any] | None:
        """The rules as their file holds them (None: no rules)."""
        return self.rules.as_dict() if self.rules is not None else None


@dataclass(frozen=True)
class Refusal:
    """A rules version that did not validate when it was read, and why."""

    version: int
    rule: str | None
    message: str
    at: str

    def as_dict(self) -> dict[str, Any]:
        """The refusal as the API shows it."""
        return {"version": self.version, "rule": self.rule, "message": self.message, "at": self.at}


def _validated(spec: Any, labels: list[str]) -> RuleSet:
    return validate_rules(spec, labels)


def _labels(artifact: Artifact) -> list[str]:
    return [str(label) for label in artifact.model["targets"]["priority"]["labels"]]


def _shipped(artifact: Artifact) -> dict[str, Any] | None:
    if RULES_FILE not in artifact.checksums:
        return None
    spec = artifact.read_json(RULES_FILE)
    return spec if isinstance(spec, dict) else None


class ReloadingRules:
    """The `RulesSource` of a service whose rules an admin edits: the rules in force from a
    `RulesDirectory` and the served model (``artifact`` returns the artifact served now, which
    a promotion changes), looked at again at most every ``interval_s``. Thread-safe: the rules
    in force are one attribute, replaced whole; one thread at a time looks for changes."""

    def __init__(
        self,
        directory: RulesDirectory,
        artifact: Callable[[], Artifact],
        *,
        interval_s: float = CHECK_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        self._artifact = artifact
        self._interval_s = interval_s
        self._clock = clock
        self._looking = threading.Lock()
        self._writing = threading.Lock()
        self._seen: tuple[Any, ...] | None = None
        self._seen_artifact: Artifact | None = None
        self._newest: int | None = None
        self.refused: Refusal | None = None
        self.state = self._resolve(artifact(), None)
        self._due = clock() + interval_s

    def current(self) -> RuleSet | None:
        """The rules in force; looks for changes when the interval has passed."""
        if self._clock() >= self._due:
            self.refresh()
        return self.state.rules

    def refresh(self, *, force: bool = False) -> RulesInForce:
        """Look for a new version, an edited file or another served model now, and swap in the
        rules then in force. Without ``force`` a thread that finds another looking returns at
        once with the rules in force, and nothing is read unless two `stat` calls (and the
        served artifact) say something changed."""
        if not self._looking.acquire(blocking=force):
            return self.state
        try:
            self._due = self._clock() + self._interval_s
            artifact = self._artifact()
            seen = self.directory.signature(self._newest)
            if not force and artifact is self._seen_artifact and seen == self._seen:
                return self.state
            newest = self._newest
            try:
                self.state = self._resolve(artifact, self.state)
            except OSError as exc:
                # The directory cannot be read (permissions, a disk gone): tickets keep the
                # rules in force, and the next look tries again.
                _log.warning("rules directory %s cannot be read: %s", self.directory.root, exc)
                return self.state
            self._seen_artifact = artifact
            # What was seen before reading, so that a file written while the files were read
            # is read at the next look; when the newest version changed, its file was not in
            # that signature, and the next look reads once more.
            self._seen = seen if self._newest == newest else None
            return self.state
        finally:
            self._looking.release()

    def _resolve(self, artifact: Artifact, previous: RulesInForce | None) -> RulesInForce:
        labels = _labels(artifact)
        model_version = str(artifact.metadata.get("version", "unknown"))
        shipped = _shipped(artifact)
        shipped_version = str(shipped.get("version", "")) if shipped is not None else None

        def own(reason: str) -> RulesInForce:
            rules = load_rules(shipped, labels) if shipped is not None else None
            return RulesInForce(rules, MODEL_RULES, reason, model_version)

        versions = self.directory.versions()
        self._newest = versions[-1] if versions else None
        if not versions:
            self.refused = None
            return own("no edited rules: the model's own")
        audit = {e["version"]: e for e in self.directory.audit()}
        for version in reversed(versions):
            base = (audit.get(version) or {}).get("model_rules")
            if (
                shipped_version
                and isinstance(base, str)
                and rules_version_key(shipped_version) > rules_version_key(base)
            ):
                return own(
                    f"the model ships rules {shipped_version}, newer than {base} that edited "
                    f"version {version} started from"
                )
            try:
                rules = _validated(self.directory.read(version), labels)
            except InvalidRules as exc:
                self._refuse(version, exc)
                if (
                    previous is not None
                    and previous.version == version
                    and previous.model_version == model_version
                ):
                    # The file in force was changed on disk into one that does not validate:
                    # the rules read from it before stay in force.
                    return previous
                continue
            if version == versions[-1]:
                self.refused = None
            reason = (
                "the newest edited version"
                if version == versions[-1]
                else f"the newest edited version that validates for model {model_version}"
            )
            return RulesInForce(rules, version, reason, model_version)
        return own("no edited version validates for this model: the model's own")

    def _refuse(self, version: int, exc: InvalidRules) -> None:
        known = self.refused
        if known is None or known.version != version or known.message != str(exc):
            # The message says it all: a service may show only the message of a core log line.
            _log.warning(
                "rules file %s refused, the rules in force stay: %s",
                self.directory.path(version).name,
                exc,
                extra={
                    "file": self.directory.path(version).name,
                    "rule": exc.rule,
                    "error": str(exc),
                },
            )
            self.refused = Refusal(version, exc.rule, str(exc), _now())

    def save(
        self,
        spec: Mapping[str, Any],
        *,
        by: str,
        by_kind: str,
        action: str = "edit",
        restored_from: int | None = None,
    ) -> RulesInForce:
        """Validate ``spec`` for the served model, write it as the next version with its audit
        entry and put it in force at once; `InvalidRules` naming the rule, and nothing written,
        when it does not validate."""
        with self._writing:
            artifact = self._artifact()
            rules = _validated(spec, _labels(artifact))
            before = self.refresh(force=True)
            document = rules.as_dict()
            shipped = _shipped(artifact)
            self.directory.add(
                document,
                {
                    "action": action,
                    "at": _now(),
                    "by": by,
                    "by_kind": by_kind,
                    "changes": rules_changes(before.document(), document),
                    "model": str(artifact.metadata.get("version", "unknown")),
                    "model_rules": str(shipped.get("version", "")) if shipped else None,
                    "previous": before.version,
                    "restored_from": restored_from,
                },
            )
            return self.refresh(force=True)

    def restore(self, version: int, *, by: str, by_kind: str) -> RulesInForce:
        """Put an earlier version back in force as a new version (the history keeps every
        one); version 0 is the served model's own rules. `InvalidRules` when there is no such
        version or it does not fit the served model."""
        if version == MODEL_RULES:
            spec = _shipped(self._artifact())
            if spec is None:
                raise InvalidRules("the served model ships no rules of its own")
        else:
            spec = self.directory.read(version)
        return self.save(spec, by=by, by_kind=by_kind, action="restore", restored_from=version)

    def history(self) -> list[dict[str, Any]]:
        """Every version, newest first, with its audit entry (a file written by hand has
        none), then the model's own rules as version 0."""
        audit = {e["version"]: e for e in self.directory.audit()}
        in_force = self.state.version
        items = []
        for version in reversed(self.directory.versions()):
            entry = audit.get(version) or {"action": "file", "by": None, "at": None}
            items.append(
                {
                    **entry,
                    "version": version,
                    "file": self.directory.path(version).name,
                    "in_force": version == in_force,
                }
            )
        shipped = _shipped(self._artifact())
        items.append(
            {
                "version": MODEL_RULES,
                "action": "model",
                "file": RULES_FILE if shipped is not None else None,
                "model": self.state.model_version,
                "model_rules": str(shipped.get("version", "")) if shipped else None,
                "in_force": in_force == MODEL_RULES,
            }
        )
        return items

"""Retraining with a safety net: train a challenger on closed tickets plus agents' corrections,
judge it against the model in production on the same held-out recent window, and promote it only
if it is not worse beyond a tolerance. The registry records both sets of figures and why."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.enricher import load_enricher
from core.errors import RegistryError
from core.ports import Correction, StoredTicket
from core.registry import ModelRegistry, ModelVersion
from training.data import Dataset, Example
from training.evaluate import score_rows
from training.model import ModelConfig, Progress
from training.train import train_model

_JUDGED = ("macro_f1", "urgent_recall")


@dataclass(frozen=True)
class RetrainDecision:
    """What a retraining run did and why."""

    challenger: ModelVersion
    champion: ModelVersion | None
    promoted: bool
    reason: str
    window: dict[str, Any]
    metrics: dict[str, dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        """The decision as JSON (what the registry records)."""
        return {
            "promoted": self.promoted,
            "reason": self.reason,
            "challenger": self.challenger.version,
            "champion": self.champion.version if self.champion else None,
            "window": self.window,
            "metrics": self.metrics,
        }


def _when(value: Any, fallback: str) -> datetime:
    text = str(value or fallback)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def corrections_as_examples(
    corrected: Sequence[tuple[StoredTicket, Correction]], target: str = "priority"
) -> list[Example]:
    """Agents' corrections of one target as labelled examples, dated when the ticket arrived."""
    examples = []
    for ticket, correction in corrected:
        if correction.target != target:
            continue
        body = ticket.ticket
        examples.append(
            Example(
                row=-1,
                doc={
                    "subject": str(body.get("subject") or ""),
                    "description": str(body.get("description") or ""),
                    "custom_fields": dict(body.get("custom_fields") or {}),
                },
                label=correction.label,
                created=_when(body.get("created_at"), ticket.received_at),
                resolved=None,
                source_id=ticket.external_id or ticket.id,
            )
        )
    return examples


def with_corrections(dataset: Dataset, corrections: Sequence[Example]) -> Dataset:
    """The closed tickets plus corrections, in time order; a correction of a ticket the export
    also holds replaces its label."""
    by_source = {c.source_id: c for c in corrections if c.source_id is not None}
    examples = [
        replace(e, label=by_source.pop(e.source_id).label)
        if e.source_id is not None and e.source_id in by_source
        else e
        for e in dataset.examples
    ]
    examples += [c for c in corrections if c.source_id is None or c.source_id in by_source]
    if dataset.time_ordered:
        examples.sort(key=_created)
    # An export without times is in row order; the corrections, the newest labels, follow it.
    digest = hashlib.sha256(dataset.sha256.encode())
    for c in corrections:
        digest.update(json.dumps([c.source_id, c.label, c.doc["subject"]]).encode())
    sha = dataset.sha256 if not corrections else digest.hexdigest()
    return replace(dataset, examples=examples, sha256=sha)


def _judge(
    champion: dict[str, Any], challenger: dict[str, Any], tolerance: float
) -> tuple[bool, str]:
    worse = []
    for key in _JUDGED:
        old, new = champion.get(key), challenger.get(key)
        if old is None or new is None:
            continue
        if new < old - tolerance:
            worse.append(f"{key} {new:.3f} < champion's {old:.3f} − {tolerance}")
    if worse:
        return False, "refused: " + "; ".join(worse)
    return True, f"promoted: not worse than the champion beyond {tolerance} on " + ", ".join(
        _JUDGED
    )


def retrain_model(
    dataset: Dataset,
    registry: ModelRegistry,
    *,
    work_dir: Path,
    corrections: Sequence[Example] = (),
    tolerance: float = 0.01,
    config: ModelConfig | None = None,
    progress: Progress | None = None,
) -> RetrainDecision:
    """Train a challenger, register it, judge it against production on the challenger's test
    window (the newest tickets, which it never trained on) and promote it or not."""
    say = progress or (lambda _msg: None)
    data = with_corrections(dataset, corrections)
    say(f"{len(corrections)} corrections added to {len(dataset.examples)} closed tickets")
    result = train_model(data, models_dir=work_dir, config=config, progress=say)
    champion = registry.production()
    challenger = registry.register(
        result.artifact_dir, parent=champion.version if champion else None
    )
    if champion is not None and challenger.version == champion.version:
        # Registering an existing version returns its entry: judging it would be judging the
        # champion against itself, and refusing it would take production out of production.
        raise RegistryError(f"the challenger has the production model's version {champion.version}")
    window = result.split.test
    last_seen = None
    metrics: dict[str, dict[str, Any]] = {}
    say(f"judging on the newest {len(window)} tickets")
    metrics["challenger"] = _summary(score_rows(load_enricher(result.artifact_dir), window))
    if champion is None:
        promoted, reason = True, "promoted: no model was in production"
    else:
        champ = load_enricher(registry.fetch(champion.version))
        if list(champ.metadata["labels"]) != list(result.metadata["labels"]):
            promoted, reason = (
                False,
                f"refused: labels {result.metadata['labels']} differ from the champion's "
                f"{champ.metadata['labels']}",
            )
        else:
            metrics["champion"] = _summary(score_rows(champ, window))
            promoted, reason = _judge(metrics["champion"], metrics["challenger"], tolerance)
        last_seen = champ.metadata.get("training_data", {}).get("last_created")
    window_facts: dict[str, Any] = {
        "rows": len(window),
        "first_created": _iso(window[0].created) if window else None,
        "last_created": _iso(window[-1].created) if window else None,
    }
    if last_seen is not None:
        when = _when(last_seen, last_seen)
        seen = sum(1 for e in window if e.created is not None and e.created <= when)
        window_facts["rows_the_champion_trained_on"] = seen
    decision = RetrainDecision(challenger, champion, promoted, reason, window_facts, metrics)
    say(reason)
    moved = registry.set_stage(
        challenger.version, "production" if promoted else "candidate", decision.as_dict()
    )
    return replace(decision, challenger=moved)


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: metrics.get(k) for k in ("rows", "macro_f1", "accuracy", "urgent_recall")}


def _created(example: Example) -> datetime:
    assert example.created is not None, "a time-ordered dataset has every creation time"
    return example.created


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None

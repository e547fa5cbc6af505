"""How an enriched ticket maps onto a helpdesk's fields: priority, custom fields, tags, text.

One `FieldMapping` per helpdesk; `FieldMapping.for_system` gives the defaults of each supported
system and `FieldMapping.from_dict` reads overrides from JSON settings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.ports import HelpdeskOutcome, HelpdeskRef, StoredTicket

PriorityValue = str | int

# The product's labels are low/normal/urgent; "high" is there for models trained with a
# four-level label map (README: --label-map 'P1=urgent,P2=high,...').
DEFAULT_PRIORITIES: dict[str, dict[str, PriorityValue]] = {
    "zendesk": {"urgent": "urgent", "high": "high", "normal": "normal", "low": "low"},
    "freshdesk": {"urgent": 4, "high": 3, "normal": 2, "low": 1},
    "jira": {"urgent": "Highest", "high": "High", "normal": "Medium", "low": "Low"},
    "rt": {"urgent": 90, "high": 70, "normal": 50, "low": 20},
}

_TAG_UNSAFE = re.compile(r"[^a-z0-9_\-]+")


@dataclass(frozen=True)
class FieldMapping:
    """Where each part of an enrichment goes in one helpdesk.

    ``priorities`` maps the predicted priority label to the helpdesk's priority value; a label it
    does not know gets ``default_priority`` (``None``: the helpdesk's own default). The
    ``*_field`` names are the helpdesk's custom-field ids or names (Zendesk: the numeric id;
    Freshdesk: ``cf_…``; Jira: ``customfield_…``; RT: the custom field's name); ``None`` leaves
    that value out, because a field the helpdesk does not have makes it refuse the ticket.
    """

    priorities: Mapping[str, PriorityValue] = field(default_factory=dict)
    default_priority: PriorityValue | None = None
    confidence_field: str | None = None
    band_field: str | None = None
    needs_review_field: str | None = None
    priority_tag_prefix: str = "priority__"
    band_tag_prefix: str = "band__"
    needs_review_tag: str = "needs_review"
    include_enrichment_tags: bool = True
    extra_tags: tuple[str, ...] = ()
    max_tags: int = 20
    idempotency_tag_prefix: str = "te-"
    summary_heading: str = "Enrichment (ticket-enrich)"

    @classmethod
    def for_system(cls, system: str, **overrides: Any) -> FieldMapping:
        """The defaults for one of ``zendesk``, ``freshdesk``, ``jira``, ``rt``, with overrides."""
        try:
            priorities = DEFAULT_PRIORITIES[system]
        except KeyError:
            known = ", ".join(sorted(DEFAULT_PRIORITIES))
            raise ValueError(f"unknown helpdesk {system!r}; known: {known}") from None
        mapping = cls(priorities=dict(priorities), default_priority=priorities["normal"])
        return dataclasses.replace(mapping, **overrides) if overrides else mapping

    @classmethod
    def from_dict(cls, system: str, data: Mapping[str, Any]) -> FieldMapping:
        """The system's defaults overridden by a JSON settings object.

        ``priorities`` is merged into the defaults label by label; every other key replaces the
        default. Unknown keys and values of the wrong type raise `ValueError` naming the key.
        """
        base = cls.for_system(system)
        known = {f.name: f for f in dataclasses.fields(cls)}
        overrides: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise ValueError(f"unknown field-mapping setting {key!r}")
            overrides[key] = _checked(key, value)
        if "priorities" in overrides:
            overrides["priorities"] = {**base.priorities, **overrides["priorities"]}
        return dataclasses.replace(base, **overrides)

    def priority_for(self, enrichment: Mapping[str, Any]) -> PriorityValue | None:
        """The helpdesk priority for the enrichment's predicted label."""
        label = _priority(enrichment).get("label")
        if isinstance(label, str) and label in self.priorities:
            return self.priorities[label]
        return self.default_priority

    def labels_for(self, value: Any) -> tuple[str, ...]:
        """Every label whose helpdesk priority is ``value``: the inverse of `priorities`.

        Values compare as text without regard to case, since helpdesks answer with their own
        types (RT's priority 90 comes back as ``"90"``). Empty when no label maps to ``value``;
        more than one when several do, which only the caller can settle.
        """
        if value is None or isinstance(value, bool):
            return ()
        key = _priority_key(value)
        return tuple(label for label, v in self.priorities.items() if _priority_key(v) == key)

    def outcome(
        self, ref: HelpdeskRef, status: str, *, closed: bool, priority: Any
    ) -> HelpdeskOutcome:
        """A ticket read back from the helpdesk, its priority mapped back onto labels."""
        return HelpdeskOutcome(
            ref=ref,
            status=status,
            closed=closed,
            helpdesk_priority=None if priority is None else str(priority),
            labels=self.labels_for(priority),
        )

    def custom_fields(self, enrichment: Mapping[str, Any]) -> dict[str, Any]:
        """Custom-field id → value for the configured fields that the enrichment has."""
        priority = _priority(enrichment)
        values = {
            self.confidence_field: priority.get("confidence"),
            self.band_field: priority.get("band"),
            self.needs_review_field: _needs_review(enrichment),
        }
        return {k: v for k, v in values.items() if k is not None and v is not None}

    def tags(self, enrichment: Mapping[str, Any], idempotency_key: str | None = None) -> list[str]:
        """Tags in order: the idempotency tag, priority, band, review flag, extra, the model's.

        Tags are lower-case with spaces turned into ``_`` (no helpdesk accepts spaces in
        tags or labels), without duplicates, at most ``max_tags`` of them.
        """
        priority = _priority(enrichment)
        tags: list[str] = []
        if idempotency_key is not None:
            tags.append(self.idempotency_tag(idempotency_key))
        if isinstance(priority.get("label"), str):
            tags.append(self.priority_tag_prefix + priority["label"])
        if isinstance(priority.get("band"), str):
            tags.append(self.band_tag_prefix + priority["band"])
        if _needs_review(enrichment):
            tags.append(self.needs_review_tag)
        tags.extend(self.extra_tags)
        own = enrichment.get("tags")
        if self.include_enrichment_tags and isinstance(own, list):
            tags.extend(t for t in own if isinstance(t, str))
        cleaned = (_tag(t) for t in tags)
        return list(dict.fromkeys(t for t in cleaned if t))[: self.max_tags]

    def idempotency_tag(self, idempotency_key: str) -> str:
        """A tag-safe token for the key, for helpdesks that can only find a ticket by searching."""
        digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:24]
        return f"{self.idempotency_tag_prefix}{digest}"

    def summary(self, enrichment: Mapping[str, Any]) -> str:
        """A few plain-text lines an agent reads under the ticket text."""
        priority = _priority(enrichment)
        lines = [self.summary_heading]
        if "label" in priority:
            detail = ", ".join(
                f"{name} {_fmt(priority[name])}"
                for name in ("confidence", "band")
                if priority.get(name) is not None
            )
            lines.append(f"Priority: {priority['label']}" + (f" ({detail})" if detail else ""))
        needs_review = _needs_review(enrichment)
        if needs_review is not None:
            lines.append(f"Needs review: {'yes' if needs_review else 'no'}")
        categories = enrichment.get("categories")
        if isinstance(categories, Mapping):
            for name, value in categories.items():
                if isinstance(value, Mapping) and "label" in value:
                    lines.append(f"{name.capitalize()}: {value['label']}")
        hours = _get(enrichment, "resolution_time", "hours")
        if isinstance(hours, int | float):
            lines.append(f"Expected resolution: {hours:.0f} h")
        sentiment = _get(enrichment, "sentiment", "band")
        if sentiment is not None:
            lines.append(f"Sentiment: {sentiment}")
        language = _get(enrichment, "language", "code")
        if language is not None:
            lines.append(f"Language: {language}")
        if enrichment.get("possible_duplicate") is True:
            similar = enrichment.get("similar") or []
            first = similar[0].get("id") if similar and isinstance(similar[0], Mapping) else None
            lines.append("Possible duplicate" + (f" of {first}" if first else ""))
        version = _get(enrichment, "model", "version")
        if version is not None:
            lines.append(f"Model: {version}")
        return "\n".join(lines)

    def description(self, ticket: StoredTicket) -> str:
        """The ticket's description followed by the enrichment summary."""
        text = str(ticket.ticket.get("description") or "").strip()
        summary = self.summary(ticket.enrichment)
        return f"{text}\n\n-- \n{summary}" if text else summary


def subject_of(ticket: StoredTicket, max_chars: int = 255) -> str:
    """The ticket's subject, else the first line of its description, cut to ``max_chars``."""
    subject = str(ticket.ticket.get("subject") or "").strip()
    if not subject:
        description = str(ticket.ticket.get("description") or "").strip()
        subject = description.splitlines()[0] if description else f"Ticket {ticket.id}"
    subject = " ".join(subject.split())
    return subject if len(subject) <= max_chars else subject[: max_chars - 1] + "…"


def requester_of(ticket: StoredTicket) -> tuple[str | None, str | None]:
    """The requester's (name, email), either possibly missing."""
    requester = ticket.ticket.get("requester")
    if not isinstance(requester, Mapping):
        return None, None
    name, email = requester.get("name"), requester.get("email")
    return (name if isinstance(name, str) else None, email if isinstance(email, str) else None)


def _priority(enrichment: Mapping[str, Any]) -> Mapping[str, Any]:
    priority = enrichment.get("priority")
    return priority if isinstance(priority, Mapping) else {}


def _needs_review(enrichment: Mapping[str, Any]) -> bool | None:
    value = enrichment.get("needs_review", _priority(enrichment).get("needs_review"))
    return value if isinstance(value, bool) else None


def _get(data: Mapping[str, Any], outer: str, inner: str) -> Any:
    value = data.get(outer)
    return value.get(inner) if isinstance(value, Mapping) else None


def _fmt(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def _priority_key(value: Any) -> str:
    return str(value).strip().casefold()


def _tag(value: str) -> str:
    return _TAG_UNSAFE.sub("_", value.strip().lower()).strip("_")


_TYPES: dict[str, tuple[type, ...]] = {
    "priorities": (dict,),
    "default_priority": (str, int, type(None)),
    "confidence_field": (str, type(None)),
    "band_field": (str, type(None)),
    "needs_review_field": (str, type(None)),
    "include_enrichment_tags": (bool,),
    "extra_tags": (list, tuple),
    "max_tags": (int,),
}


def _checked(key: str, value: Any) -> Any:
    expected = _TYPES.get(key, (str,))
    # bool is an int; only include_enrichment_tags may be one.
    if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
        raise ValueError(f"field-mapping setting {key!r} has the wrong type")
    checked: Any = value
    if key == "priorities" and not all(
        isinstance(k, str) and isinstance(v, str | int) and not isinstance(v, bool)
        for k, v in checked.items()
    ):
        raise ValueError("field-mapping setting 'priorities' maps labels to strings or integers")
    if key == "extra_tags":
        if not all(isinstance(t, str) for t in checked):
            raise ValueError("field-mapping setting 'extra_tags' is a list of strings")
        return tuple(checked)
    if key == "max_tags" and checked < 1:
        raise ValueError("field-mapping setting 'max_tags' is at least 1")
    return checked

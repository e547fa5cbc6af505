"""Priority rules: named cues, written by people, that set a minimum (or a fixed) priority.

A model learned from one helpdesk's history cannot know that "outage" or "leaked credentials"
is urgent in every helpdesk; a rule can. Rules run inside the enrichment, so every entry point
applies the same ones, and the model's own prediction stays visible beside the rule's.

A rules file is JSON (`rules.json`, written beside the model in its artifact)::

    {"format": "ticket-enrich/rules@1", "version": "2026-12-04.1",
     "order": ["low", "normal", "urgent"],
     "calm": ["not urgent", "no rush"],
     "rules": [{"name": "outage", "minimum": "urgent",
                "phrases": ["outage"], "patterns": ["\\\\b(site|app) is down\\\\b"],
                "fields": {"severity": ["critical"]}, "unless": ["planned maintenance"]}]}

`order` lists the priorities lowest first, so that a `minimum` can raise a prediction and never
lower it; a rule with `label` instead sets that label whatever the model said. `phrases` match
whole words in any case, with any spacing; `patterns` are regular expressions (case-insensitive);
`fields` match a form field's value exactly (any case). `keywords` (optional, lower case) make a
rule cheap: its phrases and patterns are only tried within `KEYWORD_REACH` characters either side
of one of them, so every match of the rule must contain one (and be shorter than that). A text
match does not count when it sits
in a question, or when a negation or condition ("no", "not", "without", "if", "in case of") comes
shortly before it in the same clause; a rule does not fire when one of its `unless` patterns is
anywhere in the ticket, and no text rule fires on a ticket holding one of the `calm` phrases.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.artifact import read_artifact, replace_file
from core.errors import InvalidRules

RULES_FORMAT = "ticket-enrich/rules@1"
RULES_FILE = "rules.json"
# The text rules read: the subject and the start of the description, where requesters say
# what is wrong (logs and stack traces come after).
TEXT_CHARS = 3000
# How far from one of its keywords a keyworded rule's match may reach, either side: the text
# rules try is a couple of hundred characters around each keyword, not all of it (logs say "down"
# and "stopped" often, and an alternation of services tried at every word costs ~0.3 ms over
# 3,000 characters).
KEYWORD_REACH = 120
# Characters read past a window's end, so that a lookahead or a word boundary at a match's end
# sees the text that follows it; a match that comes that close to the end is checked again
# against the whole text.
_EDGE = 40
_RULE_KEYS = frozenset(
    {
        "name",
        "description",
        "minimum",
        "label",
        "phrases",
        "patterns",
        "keywords",
        "fields",
        "unless",
    }
)
_FILE_KEYS = frozenset({"format", "version", "description", "order", "calm", "rules"})
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
# Words that, shortly before a cue in the same clause, deny it or make it hypothetical.
_DENIAL_RE = re.compile(
    r"\b(?:no|not|never|without|nothing|none|nor|neither|unless|if|when|whenever|whether|"
    r"thought|avoid|avoiding|"
    r"prevent|preventing|in case|in the event|rather than|instead of|"
    r"(?:is|was|are|were|do|does|did|has|have|had|wo)n['’]?t)\b"
)
_CLAUSE_RE = re.compile(r"[,;:()\[\]]|\b(?:and|but|however|although|though|yet|now)\b")
_DENIAL_WORDS = 5
_TERMINATORS = ".!?\n"


def _trie_pattern(words: Sequence[str]) -> str:
    """One regular expression matching any of ``words`` as a substring, written as a trie
    (shared prefixes once), so that a search tries a few characters per position instead of
    every word."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        branches = [re.escape(ch) + build(node[ch]) for ch in sorted(node) if ch]
        if not branches:
            return ""
        group = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
        if "" in node:
            return f"(?:{group})?"
        return group

    return build(trie)


def _phrase_pattern(phrase: str) -> str:
    words = phrase.split()
    return r"\b" + r"\s+".join(re.escape(w) for w in words) + r"\b"


@dataclass(frozen=True)
class RuleMatch:
    """A rule that fired on a ticket, and the text (or form field) that made it fire."""

    rule: str
    label: str
    fixed: bool
    match: str

    def as_dict(self) -> dict[str, Any]:
        """The match as the enrichment's explanation carries it."""
        return {"rule": self.rule, "label": self.label, "match": self.match}


@dataclass(frozen=True)
class Rule:
    """One named rule: what it looks for and the priority it sets."""

    name: str
    label: str
    fixed: bool
    phrases: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    unless: tuple[str, ...] = ()
    description: str = ""
    keywords: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The rule as the rules file holds it."""
        out: dict[str, Any] = {"name": self.name, "label" if self.fixed else "minimum": self.label}
        if self.description:
            out["description"] = self.description
        for key in ("phrases", "patterns", "keywords", "unless"):
            if getattr(self, key):
                out[key] = list(getattr(self, key))
        if self.fields:
            out["fields"] = {k: list(v) for k, v in self.fields.items()}
        return out


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"{what} must be a list of non-empty strings")
    return tuple(value)


def _compile(pattern: str, what: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"{what} {pattern!r} is not a valid regular expression: {exc}") from None


def _parse_rule(data: Any, labels: Sequence[str], order: Sequence[str]) -> Rule:
    if not isinstance(data, Mapping):
        raise InvalidRules("every rule must be a JSON object")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidRules(
            f"rule {name!r}: a name is 1-64 lower-case letters, digits, '_', '-' or '.'",
            rule=str(name),
        )
    try:
        unknown = sorted(set(data) - _RULE_KEYS)
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(unknown)}")
        if ("minimum" in data) == ("label" in data):
            raise ValueError("give exactly one of 'minimum' (a floor) or 'label' (a fixed label)")
        fixed = "label" in data
        label = data["label" if fixed else "minimum"]
        if label not in labels:
            raise ValueError(
                f"unknown label {label!r}; the model's labels are {', '.join(map(str, labels))}"
            )
        if not fixed and label not in order:
            raise ValueError(f"minimum {label!r} is not in the file's order {list(order)}")
        phrases = _strings(data.get("phrases"), "phrases")
        patterns = _strings(data.get("patterns"), "patterns")
        unless = _strings(data.get("unless"), "unless")
        keywords = _strings(data.get("keywords"), "keywords")
        if any(k != k.lower() for k in keywords):
            raise ValueError("keywords must be lower case")
        for p in (*patterns, *unless):
            _compile(p, "pattern")
        raw_fields = data.get("fields") or {}
        if not isinstance(raw_fields, Mapping):
            raise ValueError("fields must map a form field's name to a list of values")
        fields = {str(k): _strings(v, f"fields[{k!r}]") for k, v in raw_fields.items()}
        if not (phrases or patterns or fields):
            raise ValueError("a rule needs phrases, patterns or fields to match")
        description = data.get("description", "")
        if not isinstance(description, str):
            raise ValueError("description must be a string")
    except ValueError as exc:
        raise InvalidRules(f"rule {name!r}: {exc}", rule=name) from None
    return Rule(name, str(label), fixed, phrases, patterns, fields, unless, description, keywords)


class RuleSet:
    """A validated rules file, compiled once: `match` finds the rules a ticket fires, `apply`
    turns the model's label into the final one."""

    def __init__(self, spec: Mapping[str, Any], labels: Sequence[str]) -> None:
        if not isinstance(spec, Mapping):
            raise InvalidRules("a rules file is one JSON object")
        if spec.get("format") != RULES_FORMAT:
            raise InvalidRules(f"rules format {spec.get('format')!r} is not {RULES_FORMAT!r}")
        unknown = sorted(set(spec) - _FILE_KEYS)
        if unknown:
            raise InvalidRules(f"rules file: unknown key(s) {', '.join(unknown)}")
        self.version = str(spec.get("version", ""))
        self.description = str(spec.get("description", ""))
        order = spec.get("order") or []
        if not isinstance(order, list) or len(set(order)) != len(order):
            raise InvalidRules("rules file: order must list distinct labels, lowest first")
        strange = [label for label in order if label not in labels]
        if strange:
            raise InvalidRules(
                f"rules file: order names unknown label(s) {', '.join(map(repr, strange))}; "
                f"the model's labels are {', '.join(map(str, labels))}"
            )
        self.order: tuple[str, ...] = tuple(order)
        self._rank = {label: i for i, label in enumerate(self.order)}
        try:
            self.calm = _strings(spec.get("calm"), "calm")
        except ValueError as exc:
            raise InvalidRules(f"rules file: {exc}") from None
        raw_rules = spec.get("rules")
        if not isinstance(raw_rules, list):
            raise InvalidRules("rules file: rules must be a list")
        self.rules: tuple[Rule, ...] = ()
        seen: set[str] = set()
        for data in raw_rules:
            rule = _parse_rule(data, labels, self.order)
            if rule.name in seen:
                raise InvalidRules(f"rule {rule.name!r}: the name is used twice", rule=rule.name)
            seen.add(rule.name)
            self.rules += (rule,)
        # Each text rule's cues in one pattern, tried only when the ticket holds one of its
        # keywords (rules without keywords are always tried): most tickets hold none, and a
        # substring test costs far less than a regular expression over the whole text.
        # The cues (and the `unless` and `calm` patterns below) are compiled when a ticket first
        # needs them (`_pattern`): compiling them all takes about 12 ms, which a cold start
        # should not pay for rules no ticket has reached.
        self._cues = [
            (
                rule,
                rule.keywords,
                "|".join(
                    [_phrase_pattern(p) for p in rule.phrases] + [f"(?:{p})" for p in rule.patterns]
                ),
            )
            for rule in self.rules
            if rule.phrases or rule.patterns
        ]
        self._compiled: dict[str, re.Pattern[str]] = {}
        # Where the keywords are: one scan for all of them (most tickets hold none, which skips
        # every keyworded rule at once). At each place the scan finds the longest keyword
        # starting there; every other keyword starting there is a prefix of it, so each keyword
        # maps to the rules (indexes into `_cues`) that a keyword of theirs, or a prefix of it,
        # belongs to.
        keywords = sorted({k for rule in self.rules for k in rule.keywords})
        self._any_keyword = re.compile(_trie_pattern(keywords)) if keywords else None
        self._keyword_rules = {
            word: tuple(
                i
                for i, (_, own, _) in enumerate(self._cues)
                if any(word.startswith(k) for k in own)
            )
            for word in keywords
        }
        self._unless = {
            rule.name: "|".join(f"(?:{p})" for p in rule.unless)
            for rule in self.rules
            if rule.unless
        }
        self._calm = "|".join(_phrase_pattern(p) for p in self.calm) if self.calm else None
        self._field_rules = [rule for rule in self.rules if rule.fields]

    def as_dict(self) -> dict[str, Any]:
        """The rule set as its file holds it."""
        out: dict[str, Any] = {"format": RULES_FORMAT, "version": self.version}
        if self.description:
            out["description"] = self.description
        out |= {
            "order": list(self.order),
            "calm": list(self.calm),
            "rules": [r.as_dict() for r in self.rules],
        }
        return out

    def __len__(self) -> int:
        return len(self.rules)

    def _pattern(self, source: str) -> re.Pattern[str]:
        pattern = self._compiled.get(source)
        if pattern is None:
            pattern = self._compiled[source] = re.compile(source, re.IGNORECASE)
        return pattern

    def _keyword_windows(self, lower: str) -> dict[int, list[tuple[int, int]]]:
        """For each keyworded rule (by index into `_cues`) with a keyword in ``lower``: where its
        matches may lie, `KEYWORD_REACH` characters either side of each of its keywords, in
        text order, overlapping windows merged."""
        windows: dict[int, list[tuple[int, int]]] = {}
        if self._any_keyword is None:
            return windows
        search = self._any_keyword.search
        m = search(lower)
        while m is not None:
            at, word = m.start(), m.group()
            start, end = max(0, at - KEYWORD_REACH), at + len(word) + KEYWORD_REACH
            for i in self._keyword_rules[word]:
                spans = windows.setdefault(i, [])
                if spans and start <= spans[-1][1]:
                    spans[-1] = (spans[-1][0], end)
                else:
                    spans.append((start, end))
            # Keywords may overlap ("shutdown" holds "down"): look again from the next character.
            m = search(lower, at + 1)
        return windows

    def match(
        self, subject: str, description: str, custom_fields: Mapping[str, Any] | None = None
    ) -> list[RuleMatch]:
        """The rules this ticket fires, in file order, each with what it matched."""
        found: dict[str, RuleMatch] = {}
        if self._cues:
            text = f"{subject}\n{description[:TEXT_CHARS]}"
            lower = text.lower()
            # Lower-casing can change a string's length (one character becomes two): keyword
            # positions then do not index the text, and keyworded rules read all of it.
            aligned = len(lower) == len(text)
            windows = self._keyword_windows(lower)
            calm: bool | None = None
            for i, (rule, keywords, cues) in enumerate(self._cues):
                if not keywords:
                    found_here = self._pattern(cues).finditer(text)
                elif i not in windows:
                    continue
                elif aligned:
                    found_here = _near(self._pattern(cues), text, windows[i])
                else:
                    found_here = self._pattern(cues).finditer(text)
                for m in found_here:
                    if not _asserted(text, m.start(), m.end()):
                        continue
                    if calm is None:
                        calm = (
                            self._calm is not None
                            and self._pattern(self._calm).search(text) is not None
                        )
                    unless = self._unless.get(rule.name)
                    if not calm and (unless is None or self._pattern(unless).search(text) is None):
                        found[rule.name] = RuleMatch(
                            rule.name, rule.label, rule.fixed, m.group()[:80]
                        )
                    break
        if custom_fields:
            values = {str(k).lower(): str(v).strip().lower() for k, v in custom_fields.items()}
            for rule in self._field_rules:
                if rule.name in found:
                    continue
                for name, wanted in rule.fields.items():
                    value = values.get(name.lower())
                    if value is not None and value in (w.lower() for w in wanted):
                        found[rule.name] = RuleMatch(
                            rule.name, rule.label, rule.fixed, f"{name}={value}"
                        )
                        break
        return [found[r.name] for r in self.rules if r.name in found]

    def apply(self, label: str, matches: Sequence[RuleMatch]) -> tuple[str, list[RuleMatch]]:
        """The final label from the model's ``label`` and the fired rules, and the rules that
        decided it: the first fixed-label rule wins outright; otherwise each minimum raises the
        label to at least its own (a label outside ``order`` counts as the lowest)."""
        for m in matches:
            if m.fixed:
                return m.label, [m]
        deciding: list[RuleMatch] = []
        rank = self._rank.get(label, -1)
        for m in matches:
            if self._rank[m.label] > rank:
                label, rank = m.label, self._rank[m.label]
                deciding = [m]
            elif self._rank[m.label] == rank and deciding:
                deciding.append(m)
        return label, deciding


def _near(
    pattern: re.Pattern[str], text: str, windows: Sequence[tuple[int, int]]
) -> Iterator[re.Match[str]]:
    """The matches of ``pattern`` inside ``windows`` of ``text``, each as a search of the whole
    text would find it starting there. A window is read `_EDGE` characters past its end, and a
    match that comes within `_EDGE` of where reading stopped is matched again against the whole
    text (the engine treats the end of what it reads as the end of the text)."""
    n = len(text)
    for start, end in windows:
        stop = min(n, end + _EDGE)
        for m in pattern.finditer(text, start, stop):
            if stop < n and m.end() > stop - _EDGE:
                again = pattern.match(text, m.start())
                if again is None:
                    continue
                m = again
            yield m


def _asserted(text: str, start: int, end: int) -> bool:
    """Whether the cue at ``text[start:end]`` is stated, rather than asked about, denied or
    supposed: not in a sentence ending with '?', no denial or condition shortly before it in
    its clause."""
    stop = len(text)
    for ch in _TERMINATORS:
        i = text.find(ch, end)
        if i != -1 and i < stop:
            stop = i
    if stop < len(text) and text[stop] == "?":
        return False
    begin = max(text.rfind(ch, 0, start) for ch in _TERMINATORS) + 1
    clause = _CLAUSE_RE.split(text[begin:start].lower())[-1]
    window = " ".join(clause.split()[-_DENIAL_WORDS:])
    return _DENIAL_RE.search(window) is None


def load_rules(
    source: str | os.PathLike[str] | Mapping[str, Any], labels: Sequence[str]
) -> RuleSet:
    """Read and validate a rules file (or its parsed JSON) for a model with these labels;
    raises `core.errors.InvalidRules` naming the rule at fault."""
    if isinstance(source, Mapping):
        return RuleSet(source, labels)
    path = Path(source)
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidRules(f"no rules file at {path}") from None
    except ValueError as exc:
        raise InvalidRules(f"{path} is not valid JSON: {exc}") from None
    return RuleSet(spec, labels)


def save_rules(model_dir: str | os.PathLike[str], spec: Mapping[str, Any]) -> RuleSet:
    """Validate a rule set for the model in ``model_dir`` and make it that artifact's
    `rules.json` (with its checksum, so registries copy it with the model). An invalid set
    raises `core.errors.InvalidRules` naming the rule, and the artifact keeps its rules."""
    artifact = read_artifact(model_dir)
    labels = [str(label) for label in artifact.model["targets"]["priority"]["labels"]]
    rules = RuleSet(spec, labels)
    replace_file(model_dir, RULES_FILE, json.dumps(rules.as_dict(), indent=2).encode() + b"\n")
    return rules


def rules_changes(
    before: Mapping[str, Any] | None, after: Mapping[str, Any]
) -> dict[str, list[str]]:
    """What changed from one rules document to another, for an audit: the names of the rules
    added, removed and changed (same name, anything else different), and which of the file's
    own settings (`order`, `calm`, `description`) changed. ``before`` None: everything is new."""

    def by_name(spec: Mapping[str, Any] | None) -> dict[str, Any]:
        rules = (spec or {}).get("rules") or []
        return {str(r.get("name")): r for r in rules if isinstance(r, Mapping)}

    old, new = by_name(before), by_name(after)
    settings = [
        key
        for key in ("order", "calm", "description")
        if before is None or (before.get(key) or None) != (after.get(key) or None)
    ]
    return {
        "added": [name for name in new if name not in old],
        "removed": [name for name in old if name not in new],
        "changed": [name for name in new if name in old and old[name] != new[name]],
        "settings": settings,
    }


def rules_version_key(version: str) -> tuple[int, ...]:
    """A rules file's `version` as numbers to compare (``"2026-12-04.1"`` → (2026, 12, 4, 1)):
    a later version has a larger key."""
    return tuple(int(part) for part in re.findall(r"\d+", version))


def check_combined_patterns(rules: RuleSet) -> None:
    """Compile each rule's phrases and patterns together, as the matching does: patterns that
    compile alone may not together (a global flag such as "(?i)" inside a group, a group name
    used twice). For rules written by people at run time (`core.rules_source`), so that no
    ticket meets the error; raises `InvalidRules` naming the rule."""
    for rule in rules.rules:
        cues = [_phrase_pattern(p) for p in rule.phrases] + [f"(?:{p})" for p in rule.patterns]
        for what, combined in (("patterns", cues), ("unless", [f"(?:{p})" for p in rule.unless])):
            if not combined:
                continue
            try:
                re.compile("|".join(combined), re.IGNORECASE)
            except re.error as exc:
                raise InvalidRules(
                    f"rule {rule.name!r}: its {what} cannot be used together: {exc}",
                    rule=rule.name,
                ) from None


def validate_rules(spec: Any, labels: Sequence[str]) -> RuleSet:
    """Validate a rules document (parsed JSON) for a model with these labels as strictly as a
    running service does: `load_rules`, then `check_combined_patterns`, with anything else a
    hand-written file can make them raise (an `order` holding lists) turned into the
    `InvalidRules` a caller handles, naming the rule when one is at fault."""
    try:
        rules = load_rules(spec, labels)
    except InvalidRules:
        raise
    except re.error as exc:
        # Compiling a rule's patterns together failed inside the rule set: find which rule.
        for data in spec.get("rules", []):
            try:
                load_rules({**spec, "rules": [data]}, labels)
            except InvalidRules:
                continue
            except re.error:
                name = str(data.get("name"))
                raise InvalidRules(
                    f"rule {name!r}: its patterns cannot be used together: {exc}", rule=name
                ) from None
        raise InvalidRules(f"the rules file cannot be read: {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise InvalidRules(f"the rules file cannot be read: {exc}") from None
    check_combined_patterns(rules)
    return rules

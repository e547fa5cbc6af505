"""Text features shared by training and serving, so both see exactly the same tokens."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

# Runs of two or more word characters (as `\b\w\w+\b`: a greedy run is a whole word, and the
# boundaries cost a scan a third more).
_TOKEN_RE = re.compile(r"\w\w+")
# Jira/Confluence wiki markup that carries no meaning of its own: {code:java}, {noformat}, {{, h2.
# Braces and headings apart, each pattern opening with a literal character so that the engine
# skips to where it can match (one alternation of both tried every position: a third of the
# features' cost on a long ticket); a heading's "h" must start a word.
_BRACES_RE = re.compile(r"\{(?:code|noformat|quote|panel|color)(?::[^}]*)?\}|\{\{|\}\}")
_HEADING_RE = re.compile(r"h(?<!\wh)[1-6]\.\s")
_FIELD_SPLIT_RE = re.compile(r"\s*[,;]\s*")


def normalize_text(text: str) -> str:
    """Lower-case the text and drop wiki markup so that `{{foo}}` and `foo` are one token."""
    # Headings first: a brace turned into a space must not make "h1.{{" a heading. Both leave a
    # space, and a brace is no word character either, so neither pass changes what the other
    # finds.
    text = _HEADING_RE.sub(" ", text)
    if "{" in text or "}" in text:
        text = _BRACES_RE.sub(" ", text)
    return text.lower()


def word_ngrams(text: str, ngram_max: int = 2) -> list[str]:
    """Words of two or more characters, then their n-grams up to ``ngram_max``, in order."""
    words = _TOKEN_RE.findall(normalize_text(text))
    grams = list(words)
    for n in range(2, ngram_max + 1):
        # zip of the shifted word lists: the joins run in C, not in a generator.
        grams.extend(map(" ".join, zip(*(words[k:] for k in range(n)), strict=False)))
    return grams


def field_tokens(custom_fields: Mapping[str, Any], names: tuple[str, ...]) -> list[str]:
    """One `name=value` token per value of each named form field; lists split on commas."""
    tokens = []
    for name in names:
        value = custom_fields.get(name)
        if value is None or value == "":
            tokens.append(f"{name}=<none>")
            continue
        for part in _FIELD_SPLIT_RE.split(str(value).strip().lower()):
            if part:
                tokens.append(f"{name}={part}")
    return tokens


@dataclass(frozen=True)
class BlockAnalyzer:
    """Turns a ticket document into the tokens of one feature block.

    A ticket document is a mapping with `subject`, `description` and `custom_fields`. The source
    is `text` (the subject, then the start of the description) or `fields`. Instances are
    picklable so that the scikit-learn pipeline of training calls exactly what serving calls.
    """

    name: str
    source: str
    ngram_max: int = 2
    max_chars: int | None = None
    fields: tuple[str, ...] = ()

    def __call__(self, doc: Mapping[str, Any]) -> list[str]:
        if self.source == "fields":
            return field_tokens(doc.get("custom_fields") or {}, self.fields)
        description = (doc.get("description") or "")[: self.max_chars]
        return word_ngrams(f"{doc.get('subject') or ''}\n{description}", self.ngram_max)

    def to_dict(self) -> dict[str, Any]:
        """The analyzer's settings, for the artifact."""
        data = asdict(self)
        data["fields"] = list(self.fields)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BlockAnalyzer:
        """Rebuild an analyzer from the settings an artifact recorded."""
        if data.get("source") not in ("text", "fields"):
            raise ValueError(f"unknown feature source {data.get('source')!r}")
        return cls(
            name=str(data["name"]),
            source=str(data["source"]),
            ngram_max=int(data.get("ngram_max", 2)),
            max_chars=None if data.get("max_chars") is None else int(data["max_chars"]),
            fields=tuple(str(f) for f in data.get("fields", ())),
        )


def ticket_document(
    subject: str, description: str, custom_fields: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The mapping analyzers read, built the same way from a training row and a live ticket."""
    return {"subject": subject, "description": description, "custom_fields": custom_fields or {}}


# Function words that make poor tags on their own or inside a phrase ("with npe", "after upgrade").
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "cannot",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "him",
        "his",
        "how",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "get",
        "gets",
        "got",
        "using",
        "use",
        "used",
        "see",
        "also",
        "via",
        "per",
    ]
)

# Words that explain nothing on their own: the function words, and a few frequent words that go
# with any ticket ("the last", "first time"). "down" is kept: "is down" is a reason, not noise.
NOISE_WORDS = (STOPWORDS - {"down"}) | frozenset(
    [
        "last",
        "first",
        "next",
        "since",
        "within",
        "without",
        "upon",
        "across",
        "among",
        "however",
        "yet",
        "else",
        "ever",
        "even",
        "still",
        "may",
        "might",
        "must",
        "shall",
        "i",
        "us",
        "let",
        "etc",
        "like",
        "one",
        "time",
        "way",
        "thing",
        "things",
    ]
)

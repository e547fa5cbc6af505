"""The language a ticket is written in: an ISO 639-1 code and a confidence, from its prose.

Detection uses eld (Efficient Language Detector, pure Python, 60 languages), whose n-gram tables
ship inside the package: nothing is downloaded. Loading them takes about 80 ms and 40 MB, so it
happens on the first call, not at import; a deployment that never asks for the language never pays
for it. eld keeps its tables as compiled Python: install it with pip's default byte-compilation
(without the `.pyc` files the first call takes over a second).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from core.prose import prose

if TYPE_CHECKING:
    from eld import LanguageDetector  # type: ignore[import-untyped]

# eld reads at most the first ~350 bytes of what it is given, so more prose would only cost time.
LANGUAGE_MAX_CHARS = 300

UNDETERMINED = "und"  # ISO 639-2 "undetermined"


@functools.cache
def _detector() -> LanguageDetector:
    from eld import LanguageDetector

    return LanguageDetector()


def detect_language(text: str) -> dict[str, object]:
    """The language of a ticket's text: ``{"code": "en", "confidence": 0.8}``.

    Pass the subject and the description joined by a newline (or any text). Only the prose is
    read, see `core.prose.prose`: code blocks, stack traces, logs and markup are dropped and the
    first ``LANGUAGE_MAX_CHARS`` characters of what is left are detected. ``code`` is an ISO 639-1
    code, or ``"und"`` with confidence 0.0 when the prose has no letters (only numbers, a stack
    trace, emoji) or no language matches. ``confidence`` is ``best / (best + runner-up)`` of eld's
    scores: 1.0 when no other language scored at all, 0.5 when two languages tie. It ranks
    answers rather than being a calibrated probability: on short test texts 21 of eld's 23
    mistakes scored below 0.6, and 19 % of its right answers did too. Mixed-language text gets
    the language of most of its prose. Deterministic; never raises on a string.
    """
    sample = prose("", text, LANGUAGE_MAX_CHARS)
    if not any(char.isalpha() for char in sample):
        return {"code": UNDETERMINED, "confidence": 0.0}
    # eld encodes to UTF-8, which a lone surrogate (from a bad decode upstream) cannot survive.
    sample = sample.encode("utf-8", "replace").decode("utf-8")
    result = _detector().detect(sample)
    scores = sorted(result.scores().values(), reverse=True)
    if not result.language or not scores or scores[0] <= 0:
        return {"code": UNDETERMINED, "confidence": 0.0}
    runner_up = scores[1] if len(scores) > 1 else 0.0
    confidence = round(scores[0] / (scores[0] + runner_up), 4)
    return {"code": str(result.language), "confidence": confidence}

"""The language of a ticket: an ISO 639-1 code and a confidence, from its prose.

Two detectors that ship their models inside their packages (nothing is downloaded), chosen on the
project's multilingual test set (`bench/data/multilingual_tickets.jsonl`, `python -m bench --only
nlp`), where together they are as accurate as eld alone at a tenth of its cost per ticket:

- CLD2 (`pycld2`, Chromium's compact language detector, C++) reads prose of at least
  ``CLD2_MIN_CHARS`` characters in about 10 µs. Its answer is used when CLD2 calls it reliable,
  gives it at least half of the text and names a language with an ISO 639-1 code. That is 95 %
  of the vendored Hadoop tickets. pycld2 has no wheel for Linux on ARM (AWS Lambda's arm64
  functions): there it is not installed and eld decides everything, with the same answers on
  the test set at eld's cost.
- eld (Efficient Language Detector, pure Python, 60 languages) decides everything else: short
  prose, where it is the most accurate detector evaluated, and what CLD2 is unsure of. Its tables
  take about 80 ms and 40 MB to load, so that happens on its first call, not at import; a
  deployment whose tickets are all long may never load it. eld keeps its tables as compiled
  Python: install it with pip's default byte-compilation (without the `.pyc` files its first
  call takes over a second).
"""

from __future__ import annotations

import functools
import gc
from typing import TYPE_CHECKING, Any

from core.prose import prose

if TYPE_CHECKING:
    from eld import LanguageDetector  # type: ignore[import-untyped]

# eld reads at most the first ~350 bytes of what it is given, so more prose would only cost time.
LANGUAGE_MAX_CHARS = 300
# Below this many characters of prose CLD2 is not asked: on short texts it says "unknown" or
# confuses neighbours (French for English, Danish for Norwegian) more often than eld does.
CLD2_MIN_CHARS = 50

UNDETERMINED = "und"  # ISO 639-2 "undetermined"

# CLD2 still uses the withdrawn ISO 639-1 codes of a few languages.
_CLD2_CODES = {"iw": "he", "jw": "jv", "in": "id", "ji": "yi", "mo": "ro"}


@functools.cache
def _detector() -> LanguageDetector:
    from eld import LanguageDetector

    # Loading eld's tables makes some 40 MB of small objects, none of them garbage: a collection
    # in the middle of it would walk them all for nothing (about 6 ms of the first call).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return LanguageDetector()
    finally:
        if collecting:
            gc.enable()


@functools.cache
def _cld2_module() -> Any:
    try:
        import pycld2  # type: ignore[import-untyped]
    except ImportError:  # no wheel for this platform (Linux on ARM): eld decides everything
        return None
    return pycld2


def _cld2(sample: str) -> dict[str, object] | None:
    """CLD2's answer when it is sure of an ISO 639-1 language, else None."""
    pycld2 = _cld2_module()
    if pycld2 is None:
        return None
    try:
        reliable, _bytes, details = pycld2.detect(sample)
    except pycld2.error:
        return None
    _name, code, percent, _score = details[0]
    code = _CLD2_CODES.get(code, code.split("-")[0])
    if not reliable or percent < 50 or len(code) != 2 or not code.isalpha():
        return None
    return {"code": code, "confidence": round(percent / 100.0, 4)}


def detect_language(text: str) -> dict[str, object]:
    """The language of a ticket's text: ``{"code": "en", "confidence": 0.8}``.

    Pass the subject and the description joined by a newline (or any text). Only the prose is
    read, see `core.prose.prose`: code blocks, stack traces, logs and markup are dropped and the
    first ``LANGUAGE_MAX_CHARS`` characters of what is left are detected. ``code`` is an ISO 639-1
    code, or ``"und"`` with confidence 0.0 when the prose has no letters (only numbers, a stack
    trace, emoji) or no language matches. When CLD2 decides (prose of ``CLD2_MIN_CHARS`` or more
    that it is sure of), ``confidence`` is the share of the prose it gives that language (at
    least 0.5); when eld decides, it is ``best / (best + runner-up)`` of eld's scores: 1.0 when no
    other language scored at all, 0.5 when two languages tie. Either ranks answers rather than
    being a calibrated probability: on short test texts 21 of eld's 23 mistakes scored below 0.6,
    and 19 % of its right answers did too. Mixed-language text gets the language of most of its
    prose. Deterministic; never raises on a string.
    """
    return language_of_prose(prose("", text, LANGUAGE_MAX_CHARS))


def language_of_prose(sample: str) -> dict[str, object]:
    """`detect_language` of prose already extracted: ``prose("", text, LANGUAGE_MAX_CHARS)``."""
    if not any(char.isalpha() for char in sample):
        return {"code": UNDETERMINED, "confidence": 0.0}
    # Both detectors read UTF-8, which a lone surrogate (from a bad decode upstream) cannot survive.
    sample = sample.encode("utf-8", "replace").decode("utf-8")
    if len(sample) >= CLD2_MIN_CHARS:
        found = _cld2(sample)
        if found is not None:
            return found
    return _eld(sample)


def _eld(sample: str) -> dict[str, object]:
    result = _detector().detect(sample)
    scores = sorted(result.scores().values(), reverse=True)
    if not result.language or not scores or scores[0] <= 0:
        return {"code": UNDETERMINED, "confidence": 0.0}
    runner_up = scores[1] if len(scores) > 1 else 0.0
    confidence = round(scores[0] / (scores[0] + runner_up), 4)
    return {"code": str(result.language), "confidence": confidence}

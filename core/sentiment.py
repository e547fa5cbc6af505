"""The writer's mood: VADER sentiment of a ticket's prose, as a score and a band.

VADER (the `vaderSentiment` package) is a lexicon and a few rules; its lexicon ships inside the
package, so nothing is downloaded. The analyzer reads that lexicon (about 10 ms) on the first call,
not at import, so a deployment that never asks for sentiment never pays for it.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from core.prose import prose

if TYPE_CHECKING:
    from vaderSentiment.vaderSentiment import (  # type: ignore[import-untyped]
        SentimentIntensityAnalyzer,
    )

# VADER's cost grows with the square of the words it reads (it re-lowercases the whole text for
# each sentiment word), and its score saturates on long texts. On the vendored Hadoop tickets, 500
# characters keep p99 near 0.3 ms and agree with 1,000 characters on 89 % of the bands; 1,000
# costs up to 1 ms. The opening lines are where a writer's tone usually shows.
SENTIMENT_MAX_CHARS = 500

# The bands, most negative first. VADER's own neutral zone (±0.05) is narrower than ours (±0.2):
# support tickets are full of mildly coloured words ("please", "help", "error", "fail") that
# should not make a ticket positive or negative on their own.
BANDS = ("very negative", "negative", "neutral", "positive", "very positive")


@functools.cache
def _analyzer() -> SentimentIntensityAnalyzer:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment_band(score: float) -> str:
    """The band of a compound score: "very negative" (≤ -0.6), "negative" (≤ -0.2), "neutral"
    (< 0.2), "positive" (< 0.6), else "very positive"."""
    if score <= -0.6:
        return "very negative"
    if score <= -0.2:
        return "negative"
    if score < 0.2:
        return "neutral"
    if score < 0.6:
        return "positive"
    return "very positive"


def sentiment(text: str) -> dict[str, object]:
    """The sentiment of a ticket's text: ``{"score": -1.0..1.0, "band": "neutral"}``.

    Pass the subject and the description joined by a newline (or any text). Only the prose is
    read, see `core.prose.prose`: code blocks, stack traces, logs and markup are dropped and the
    first ``SENTIMENT_MAX_CHARS`` characters of what is left are scored with VADER's compound
    score, which is English-only (other languages mostly come out neutral). Text without words is
    neutral with score 0.0. Deterministic; never raises on a string.
    """
    sample = prose("", text, SENTIMENT_MAX_CHARS)
    score = float(_analyzer().polarity_scores(sample)["compound"]) if sample else 0.0
    score = min(1.0, max(-1.0, score))
    return {"score": score, "band": sentiment_band(score)}

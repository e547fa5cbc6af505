"""The writer's mood: VADER sentiment of a ticket's prose, as a score and a band.

VADER (the `vaderSentiment` package) is a lexicon and a few rules; its lexicon ships inside the
package, so nothing is downloaded. The analyzer reads that lexicon (about 10 ms) on the first call,
not at import, so a deployment that never asks for sentiment never pays for it.

VADER's own code lower-cases the whole text again for each sentiment word it scores (to look at
the three words before it) and copies the text character by character to find emoji, so its cost
grows with the square of the text. `_Analyzer` gives the same scores without that: it looks up
only the words the rules read, and skips the emoji pass for text without emoji. The unit tests
compare it with VADER's own analyzer on every vendored ticket.
"""

from __future__ import annotations

import functools
import string
from typing import TYPE_CHECKING, Any

from core.prose import prose

if TYPE_CHECKING:
    from vaderSentiment.vaderSentiment import (  # type: ignore[import-untyped]
        SentimentIntensityAnalyzer,
    )

# VADER's score saturates on long texts, and the opening lines are where a writer's tone usually
# shows. On the vendored Hadoop tickets, 500 characters agree with 1,000 on 89 % of the bands.
SENTIMENT_MAX_CHARS = 500

# The bands, most negative first. VADER's own neutral zone (±0.05) is narrower than ours (±0.2):
# support tickets are full of mildly coloured words ("please", "help", "error", "fail") that
# should not make a ticket positive or negative on their own.
BANDS = ("very negative", "negative", "neutral", "positive", "very positive")


@functools.cache
def _analyzer() -> SentimentIntensityAnalyzer:
    from vaderSentiment import vaderSentiment as vader  # type: ignore[import-untyped]

    negations = frozenset(vader.NEGATE)

    def negated(word: str) -> bool:
        # `vader.negated([word])`: a set lookup instead of a scan of its list of negations.
        word = word.lower()
        return word in negations or "n't" in word

    class _Analyzer(vader.SentimentIntensityAnalyzer):  # type: ignore[misc]
        """VADER's analyzer with its quadratic helpers replaced by ones that read only the
        words they need; the scores are VADER's own (vaderSentiment 3.3.2, pinned < 4)."""

        def __init__(self) -> None:
            super().__init__()
            # The emoji pass replaces single characters only.
            self._emoji_chars = frozenset(e for e in self.emojis if len(e) == 1)

        def polarity_scores(self, text: str) -> dict[str, float]:
            if not self._emoji_chars.isdisjoint(text):
                return dict(super().polarity_scores(text))
            text = text.strip()
            sentitext = _Words(text)
            words = sentitext.words_and_emoticons
            lowered = [word.lower() for word in words]
            # Every word outside the lexicon, a booster and the "kind" of "kind of" score 0, as
            # in VADER's loop; `sentiment_valence` scores the others.
            sentiments: list[float] = [0] * len(words)
            lexicon, booster, last = self.lexicon, vader.BOOSTER_DICT, len(words) - 1
            for i in [i for i, word in enumerate(lowered) if word in lexicon]:
                word = lowered[i]
                if word in booster or (word == "kind" and i < last and lowered[i + 1] == "of"):
                    continue
                sentiments[i] = self.sentiment_valence(0, sentitext, words[i], i, [])[0]
            sentiments = self._but_check(words, sentiments)
            return dict(self.score_valence(sentiments, text))

        @staticmethod
        def _negation_check(valence: float, words: list[str], start_i: int, i: int) -> float:
            # VADER's, on the (at most three) words before the sentiment word only.
            def low(k: int) -> str:
                return str(words[k]).lower()

            if start_i == 0 and negated(low(i - 1)):
                valence = valence * vader.N_SCALAR
            if start_i == 1:
                if low(i - 2) == "never" and (low(i - 1) == "so" or low(i - 1) == "this"):
                    valence = valence * 1.25
                elif low(i - 2) == "without" and low(i - 1) == "doubt":
                    pass
                elif negated(low(i - 2)):
                    valence = valence * vader.N_SCALAR
            if start_i == 2:
                if (low(i - 3) == "never" and (low(i - 2) == "so" or low(i - 2) == "this")) or (
                    low(i - 1) == "so" or low(i - 1) == "this"
                ):
                    valence = valence * 1.25
                elif low(i - 3) == "without" and (low(i - 2) == "doubt" or low(i - 1) == "doubt"):
                    pass
                elif negated(low(i - 3)):
                    valence = valence * vader.N_SCALAR
            return valence

        @staticmethod
        def _special_idioms_check(valence: float, words: list[str], i: int) -> float:
            # VADER's, on the words from three before to two after the sentiment word only.
            def low(k: int) -> str:
                return str(words[k]).lower()

            special, booster = vader.SPECIAL_CASES, vader.BOOSTER_DICT
            onezero = f"{low(i - 1)} {low(i)}"
            twoonezero = f"{low(i - 2)} {low(i - 1)} {low(i)}"
            twoone = f"{low(i - 2)} {low(i - 1)}"
            threetwoone = f"{low(i - 3)} {low(i - 2)} {low(i - 1)}"
            threetwo = f"{low(i - 3)} {low(i - 2)}"
            for seq in (onezero, twoonezero, twoone, threetwoone, threetwo):
                if seq in special:
                    valence = special[seq]
                    break
            if len(words) - 1 > i:
                zeroone = f"{low(i)} {low(i + 1)}"
                if zeroone in special:
                    valence = special[zeroone]
            if len(words) - 1 > i + 1:
                zeroonetwo = f"{low(i)} {low(i + 1)} {low(i + 2)}"
                if zeroonetwo in special:
                    valence = special[zeroonetwo]
            for n_gram in (threetwoone, threetwo, twoone):
                if n_gram in booster:
                    valence = valence + booster[n_gram]
            return valence

    class _Words:
        """What VADER's `SentiText` holds, made with list comprehensions instead of a method
        call per word: the words with their outer punctuation stripped (unless that leaves two
        characters or fewer: an emoticon), and whether some but not all are in capitals."""

        __slots__ = ("is_cap_diff", "text", "words_and_emoticons")

        def __init__(self, text: str) -> None:
            punctuation = string.punctuation
            self.text = text
            self.words_and_emoticons = [
                stripped if len(stripped := word.strip(punctuation)) > 2 else word
                for word in text.split()
            ]
            self.is_cap_diff = vader.allcap_differential(self.words_and_emoticons)

    return _Analyzer()


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


def polarity(text: str) -> dict[str, Any]:
    """VADER's ``polarity_scores`` of ``text`` as it is (no prose extraction, no window), from
    the fast analyzer: ``{"neg", "neu", "pos", "compound"}``."""
    return dict(_analyzer().polarity_scores(text))


def sentiment(text: str) -> dict[str, object]:
    """The sentiment of a ticket's text: ``{"score": -1.0..1.0, "band": "neutral"}``.

    Pass the subject and the description joined by a newline (or any text). Only the prose is
    read, see `core.prose.prose`: code blocks, stack traces, logs and markup are dropped and the
    first ``SENTIMENT_MAX_CHARS`` characters of what is left are scored with VADER's compound
    score, which is English-only (other languages mostly come out neutral). Text without words is
    neutral with score 0.0. Deterministic; never raises on a string.
    """
    return sentiment_of_prose(prose("", text, SENTIMENT_MAX_CHARS))


def sentiment_of_prose(sample: str) -> dict[str, object]:
    """`sentiment` of prose already extracted: ``prose("", text, SENTIMENT_MAX_CHARS)``."""
    score = float(_analyzer().polarity_scores(sample)["compound"]) if sample else 0.0
    score = min(1.0, max(-1.0, score))
    return {"score": score, "band": sentiment_band(score)}

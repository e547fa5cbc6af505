"""`core.sentiment`: VADER sentiment of a ticket's prose, as a score and a band."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from core.sentiment import BANDS, SENTIMENT_MAX_CHARS, sentiment, sentiment_band

REPO_ROOT = Path(__file__).resolve().parents[2]

NEGATIVE = (
    "Service down for three days\n"
    "This is completely unacceptable. Your service has been down for three days and we are "
    "losing money. Terrible support, I am furious and will cancel our contract."
)
POSITIVE = (
    "Great release\n"
    "Great job on the new release, the dashboard is fantastic and much faster. "
    "Thank you so much, we love it!"
)
NEUTRAL = (
    "CSV export times out\n"
    "The export to CSV times out when the report has more than 10k rows. "
    "Steps to reproduce: open the report, click Export."
)
JAVA_TRACE = (
    "java.lang.IllegalStateException: terrible failure, fatal error, everything is broken\n"
    "\tat org.apache.hadoop.Foo.kill(Foo.java:12)\n"
    "Caused by: java.io.IOException: awful crash\n"
)


def test_a_clearly_negative_ticket_is_very_negative() -> None:
    result = sentiment(NEGATIVE)
    assert result["band"] == "very negative"
    assert isinstance(result["score"], float) and result["score"] <= -0.6


def test_a_clearly_positive_ticket_is_very_positive() -> None:
    result = sentiment(POSITIVE)
    assert result["band"] == "very positive"
    assert isinstance(result["score"], float) and result["score"] >= 0.6


def test_a_matter_of_fact_ticket_is_neutral() -> None:
    assert sentiment(NEUTRAL) == {"score": 0.0, "band": "neutral"}


@pytest.mark.parametrize(
    ("text", "band"),
    [
        ("Export broken again\nThe export is broken again. Please fix it.", "negative"),
        ("Thanks for the quick fix yesterday, it works now.", "positive"),
    ],
)
def test_mild_tickets_get_the_mild_bands(text: str, band: str) -> None:
    assert sentiment(text)["band"] == band


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (-1.0, "very negative"),
        (-0.6, "very negative"),
        (-0.5999, "negative"),
        (-0.2, "negative"),
        (-0.1999, "neutral"),
        (0.0, "neutral"),
        (0.1999, "neutral"),
        (0.2, "positive"),
        (0.5999, "positive"),
        (0.6, "very positive"),
        (1.0, "very positive"),
    ],
)
def test_band_thresholds(score: float, band: str) -> None:
    assert sentiment_band(score) == band


def test_bands_are_listed_most_negative_first() -> None:
    assert [sentiment_band(s) for s in (-0.9, -0.4, 0.0, 0.4, 0.9)] == list(BANDS)


def test_code_and_stack_traces_do_not_count() -> None:
    prose_only = "Upload question\nThanks for the great help with this."
    with_machine_text = (
        f"{prose_only}\n"
        "{code}\nthrow new Error('terrible, awful, hate');\n{code}\n"
        f"{JAVA_TRACE}"
        "```\nfatal: horrible failure\n```"
    )
    assert sentiment(with_machine_text) == sentiment(prose_only)
    assert sentiment(with_machine_text)["band"] == "very positive"


@pytest.mark.parametrize("text", ["", "   \n\t", "Subject only\n", JAVA_TRACE, "1234 5678 0x1f"])
def test_text_without_prose_words_is_neutral(text: str) -> None:
    assert sentiment(text) == {"score": 0.0, "band": "neutral"}


def test_only_the_opening_prose_is_read() -> None:
    opening = "Login page is slow.\n" + "The page loads. " * (SENTIMENT_MAX_CHARS // 16)
    assert sentiment(opening + "I hate this, it is awful and terrible!" * 100) == sentiment(opening)


def test_64_kb_of_text_is_scored() -> None:
    result = sentiment("This is a disaster, nothing works! " * 2000)
    assert result["band"] == "very negative"


def test_html_and_jira_markup_are_read_as_their_text() -> None:
    assert sentiment("<p>Thanks, <b>great</b> work!</p>")["band"] == "very positive"
    jira = "h2. Feedback\n{quote}This is terrible.{quote}\n{{terrible.config}} is set"
    assert sentiment(jira)["band"] == "negative"


def test_emoji_carry_sentiment() -> None:
    assert sentiment("😀🎉")["band"] == "very positive"


@pytest.mark.parametrize(
    "text",
    [
        "النظام لا يعمل منذ الصباح، هذا سيء جدا",
        "המערכת לא עובדת מהבוקר, זה נורא",
        "Das System ist seit heute Morgen kaputt. Thanks for nothing, this is terrible.",
        "システムが朝から動きません",
    ],
)
def test_any_language_or_script_gives_a_valid_result(text: str) -> None:
    result = sentiment(text)
    assert set(result) == {"score", "band"}
    assert isinstance(result["score"], float) and -1.0 <= result["score"] <= 1.0
    assert result["band"] in BANDS


def test_right_to_left_text_without_english_words_is_neutral() -> None:
    # VADER's lexicon is English: other languages come out neutral rather than wrong.
    assert sentiment("המערכת לא עובדת מהבוקר")["band"] == "neutral"
    assert sentiment("النظام لا يعمل منذ الصباح")["band"] == "neutral"


def test_the_same_text_always_gets_the_same_result() -> None:
    first = sentiment(NEGATIVE)
    assert all(sentiment(NEGATIVE) == first for _ in range(3))


_FUZZ_ALPHABET = (
    "ab Z9.:()[]{}<>/`*_-|!?\"'\\\n\r\t\x00\x1f\x7f\u200f\u202e\u0301\ud800\udfff"
    "\ufeff\U0001f621\U0001f600\u05d0\u0627\u3042\u4e00"
)
_FUZZ_WORDS = (
    " good ",
    " BAD ",
    " not ",
    " but ",
    " kind of ",
    " no ",
    "!!!",
    "???",
    ":)",
    "{code}",
)


def test_never_raises_on_any_string() -> None:
    rng = random.Random(7)
    for size in (0, 1, 3, 30, 300, 3000):
        for _ in range(30):
            text = "".join(
                rng.choice(_FUZZ_WORDS) if rng.random() < 0.2 else rng.choice(_FUZZ_ALPHABET)
                for _ in range(size)
            )
            result = sentiment(text)
            assert isinstance(result["score"], float) and -1.0 <= result["score"] <= 1.0
            assert result["band"] == sentiment_band(result["score"])


def test_importing_does_not_load_vader_and_results_match_a_fresh_process() -> None:
    # The lazy-loading contract: `import core.sentiment` costs nothing until the first call.
    code = f"""
import json, sys
import core.sentiment, core.language
before = sorted(m for m in sys.modules if m.split(".")[0] in ("vaderSentiment", "eld", "requests"))
result = core.sentiment.sentiment({NEGATIVE!r})
print(json.dumps({{
    "before": before,
    "after": "vaderSentiment.vaderSentiment" in sys.modules,
    "heavy": sorted(m for m in ("numpy", "scipy", "sklearn", "pandas", "requests")
                    if m in sys.modules),
    "result": result,
}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    child = json.loads(done.stdout)
    assert child["before"] == []
    assert child["after"] is True
    assert child["heavy"] == []
    assert child["result"] == sentiment(NEGATIVE)


def test_the_fast_analyzer_scores_as_vaders_own_on_every_vendored_ticket() -> None:
    # `core.sentiment` replaces VADER's quadratic helpers; the scores must stay VADER's.
    import csv

    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from core.prose import prose
    from core.sentiment import polarity

    vader = SentimentIntensityAnalyzer()
    with (REPO_ROOT / "training" / "data" / "hadoop_bugs.csv").open(encoding="utf-8") as f:
        texts = [f"{r['Summary']}\n{r['Description']}" for r in csv.DictReader(f)]
    samples = [prose("", t, SENTIMENT_MAX_CHARS) for t in texts] + [t[:2000] for t in texts[:300]]
    samples += [
        NEGATIVE, POSITIVE, NEUTRAL, JAVA_TRACE, "I'm not very happy :( but it kind of works!!",
        "Never so good. Without doubt the best. 😀 great", "no no no bad", "The bomb is the shit",
        "at least it is not the worst", "This is KIND OF bad but not TERRIBLE??", "",
        "isn't good, wasn't bad, never this awful, without doubt great", "kind of",
    ]  # fmt: skip
    assert len(samples) > 1000
    for text in samples:
        assert polarity(text) == vader.polarity_scores(text), text[:80]

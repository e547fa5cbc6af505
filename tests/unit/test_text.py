import re

from hypothesis import given, settings
from hypothesis import strategies as st

from core.text import BlockAnalyzer, field_tokens, normalize_text, ticket_document, word_ngrams


def test_markup_is_dropped_and_text_lowercased() -> None:
    assert normalize_text("{code:java}Foo{code} {{Bar}} h2. Baz").split() == ["foo", "bar", "baz"]


def test_words_then_bigrams_single_letters_dropped() -> None:
    assert word_ngrams("NameNode a crash now") == [
        "namenode",
        "crash",
        "now",
        "namenode crash",
        "crash now",
    ]
    assert word_ngrams("one two", ngram_max=1) == ["one", "two"]


def test_field_tokens_split_lists_and_mark_missing_values() -> None:
    assert field_tokens({"v": "2.9.2, 3.0"}, ("v", "w")) == ["v=2.9.2", "v=3.0", "w=<none>"]


def test_text_analyzer_truncates_the_description_only() -> None:
    analyzer = BlockAnalyzer("text", "text", 1, max_chars=5)
    doc = ticket_document("Subject words", "abcde fghij")
    assert analyzer(doc) == ["subject", "words", "abcde"]


def test_analyzer_settings_round_trip() -> None:
    analyzer = BlockAnalyzer("fields", "fields", 1, None, ("a", "b"))
    assert BlockAnalyzer.from_dict(analyzer.to_dict()) == analyzer


# The markup and word patterns in one plain form: the faster ones in core.text must agree.
_REFERENCE_MARKUP = re.compile(
    r"\{(?:code|noformat|quote|panel|color)(?::[^}]*)?\}|\{\{|\}\}|\bh[1-6]\.\s"
)
_REFERENCE_WORD = re.compile(r"\b\w\w+\b")


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "h1.",
                "h7.",
                "xh2.",
                "_h3.",
                "éh4.",
                "İ",
                "h",
                "2",
                ".",
                " ",
                "\t",
                "\n",
                "{",
                "}",
                "{{",
                "}}",
                "{code:java}",
                "{code}",
                "{noformat}",
                "{color:red}",
                ":",
                "word",
                "a",
                "Ab",
                "über",
                "x_y",
                "-",
                "日本",
            ]
        ),
        max_size=40,
    )
)
def test_normalising_and_tokenising_agree_with_the_plain_patterns(pieces: list[str]) -> None:
    text = "".join(pieces)
    expected = _REFERENCE_MARKUP.sub(" ", text).lower()
    assert normalize_text(text) == expected
    assert word_ngrams(text, 1) == _REFERENCE_WORD.findall(expected)

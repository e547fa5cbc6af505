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

"""`core.prose`: the human prose of a ticket, without code, traces, logs or markup."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from core.prose import prose

JAVA_TRACE = """java.io.IOException: Failed to replace a bad datanode on the existing pipeline
\tat org.apache.hadoop.hdfs.DataStreamer.findNewDatanode(DataStreamer.java:1304)
\tat org.apache.hadoop.hdfs.DataStreamer$1.run(DataStreamer.java:712)
[info]   at org.apache.hadoop.io.compress.lz4.Lz4Compressor.<init>(Lz4Compressor.java:66)
        at java.base/java.lang.Thread.run(Thread.java:829)
Caused by: java.lang.NullPointerException
\t... 12 more"""

PYTHON_TRACE = """Traceback (most recent call last):
  File "/opt/app/main.py", line 12, in <module>
    main()
  File "/opt/app/main.py", line 8, in main
    raise ValueError("bad input")
ValueError: bad input"""


def test_subject_and_description_are_joined_by_a_newline() -> None:
    assert prose("Login fails", "Since Monday I cannot log in.") == (
        "Login fails\nSince Monday I cannot log in."
    )


def test_whitespace_runs_become_one_space() -> None:
    assert (
        prose("  Two\tspaces ", "line one\r\n\r\n\n   line two  ")
        == "Two spaces\nline one line two"
    )


@pytest.mark.parametrize(
    "block",
    [
        "{code:java}\nString s = null;\ns.length();\n{code}",
        "{code}int x = 1;{code}",
        "{noformat}\n2021-01-01 ERROR boom\n{noformat}",
        "```python\nprint('hi')\n```",
        "~~~\nmake all\n~~~",
        "<pre>SELECT * FROM t;</pre>",
        "<code>x = y</code>",
    ],
)
def test_code_blocks_are_dropped(block: str) -> None:
    assert prose("", f"Before the block.\n{block}\nAfter the block.") == (
        "Before the block. After the block."
    )


def test_an_unclosed_code_block_runs_to_the_end() -> None:
    assert prose("", "Here is the config:\n{code:xml}\n<property>x</property>") == (
        "Here is the config:"
    )


def test_java_stack_trace_lines_are_dropped() -> None:
    text = f"The write fails under load.\n{JAVA_TRACE}\nIt started after the upgrade."
    assert prose("", text) == "The write fails under load. It started after the upgrade."


def test_python_traceback_is_dropped_with_its_source_lines() -> None:
    text = f"The import job crashes.\n{PYTHON_TRACE}\nPlease advise."
    assert prose("", text) == "The import job crashes. Please advise."


def test_timestamped_log_lines_are_dropped() -> None:
    text = (
        "The namenode stops.\n"
        "2021-12-02 15:34:00,886 INFO util.ApplicationClassLoader: classpath: []\n"
        "[2021-09-08T00:21:11.596Z] #13 RUN apt-get update\n"
        "No idea why."
    )
    assert prose("", text) == "The namenode stops. No idea why."


def test_urls_inline_code_html_tags_and_jira_markup_are_dropped() -> None:
    text = (
        "h2. Problem\n"
        "See https://issues.apache.org/jira/browse/HADOOP-1 and [the docs|https://x.org/a].\n"
        "The {{dfs.replication}} key and `fs.defaultFS` are <b>wrong</b>.\n"
        "{quote}It worked before.{quote}"
    )
    assert prose("", text) == (
        "Problem See and the docs . The key and are wrong . It worked before."
    )


def test_prose_words_that_look_technical_are_kept() -> None:
    subject = "NullPointerException when no HTTP response is set"
    assert prose(subject, "at startup the client fails (sometimes)") == (
        f"{subject}\nat startup the client fails (sometimes)"
    )


def test_the_result_is_cut_to_max_chars() -> None:
    text = prose("Subject", "word " * 1000, max_chars=50)
    assert len(text) <= 50
    assert text.startswith("Subject\nword word")


def test_only_a_bounded_prefix_of_the_description_is_read() -> None:
    # The prose after a 64 KB stack trace lies beyond the window: it is not read.
    frames = "\tat org.apache.Foo.bar(Foo.java:12)\n" * 2000
    assert prose("Subject", frames + "Late prose.", max_chars=1000) == "Subject"


@pytest.mark.parametrize(
    ("subject", "description", "expected"),
    [
        ("", "", ""),
        ("Subject only", "", "Subject only"),
        ("", "Description only", "Description only"),
        ("", JAVA_TRACE, ""),
        ("Crash on start", JAVA_TRACE, "Crash on start"),
        ("   ", "\n\n\t", ""),
    ],
)
def test_empty_parts_leave_no_separator(subject: str, description: str, expected: str) -> None:
    assert prose(subject, description) == expected


@pytest.mark.parametrize("max_chars", [0, -5])
def test_no_room_gives_nothing(max_chars: int) -> None:
    assert prose("Subject", "Description", max_chars=max_chars) == ""


@pytest.mark.parametrize(
    "text",
    [
        "النظام لا يعمل منذ الصباح",
        "המערכת לא עובדת מהבוקר",
        "システムが朝から動きません",
        "系统从早上开始就无法使用",
        "😡😡 🙂",
    ],
)
def test_non_latin_text_and_emoji_are_kept(text: str) -> None:
    assert prose("", text) == text


def test_64_kb_of_text_gives_at_most_max_chars() -> None:
    assert len(prose("s" * 70_000, "word " * 13_000, max_chars=1000)) <= 1000


_FUZZ_ALPHABET = (
    "ab Z9.:()[]{}<>/`~*_-|!?\"'\\\n\r\t\x00\x1f\x7f\u200f\u202e\u0301\ud800\udfff"
    "\ufeff\U0001f621\u05d0\u0627\u3042\u4e00"
)
_FUZZ_TOKENS = ("{code}", "{code:java}", "{noformat}", "```", "~~~", "<pre>", "{{", "}}", "at ")


def _fuzz_text(rng: random.Random, size: int) -> str:
    parts = []
    for _ in range(size):
        if rng.random() < 0.1:
            parts.append(rng.choice(_FUZZ_TOKENS))
        else:
            parts.append(rng.choice(_FUZZ_ALPHABET))
    return "".join(parts)


def test_never_raises_on_any_string() -> None:
    rng = random.Random(20240611)
    for size in (0, 1, 5, 50, 500, 5000):
        for _ in range(40):
            subject, description = _fuzz_text(rng, size // 10), _fuzz_text(rng, size)
            assert len(prose(subject, description, 300)) <= 300


def test_prose_pair_equals_two_calls() -> None:
    import csv

    from core.prose import prose_pair

    root = Path(__file__).resolve().parents[2]
    with (root / "training" / "data" / "hadoop_bugs.csv").open(encoding="utf-8") as f:
        texts = [f"{r['Summary']}\n{r['Description']}" for r in csv.DictReader(f)][:1500]
    rng = random.Random(5)
    texts += [
        "".join(rng.choice("ab {}code\n`|[]:/x") for _ in range(n)) for n in range(0, 2000, 7)
    ]
    texts += ["x" * 1199 + "\n{code}\nint x;\n", "{code}" + "a " * 700 + "{code} after"]
    for text in texts:
        assert prose_pair(text, 300, 500) == (prose("", text, 300), prose("", text, 500))

"""The human prose of a ticket: what the text-only enrichments (sentiment, language) read.

Support tickets are long and full of machine text that says nothing about the writer's mood or
language and would outweigh the prose in both: code blocks, stack traces, log lines, URLs and
markup. `prose` drops them and keeps a bounded prefix of what is left, which also bounds the cost
of every enrichment that reads it.
"""

from __future__ import annotations

import functools
import re

# Only this many characters of the description are read per prose character asked for, so that a
# 64 KB paste costs no more than a few kilobytes; a code block that runs past the window is dropped
# as if it ran to the end. On the vendored Hadoop tickets, 4 changes the prose of 1.4 % of them
# (a long trace before the prose) against reading everything; 8 would halve that at twice the cost.
_SCAN_FACTOR = 4

# Every pattern starts with a literal where it can (a newline stands for "start of line": the text
# gets one in front), which lets the regex engine skip ahead instead of trying each position; `^`
# in MULTILINE mode costs tens of microseconds per 4 KB even on text with nothing to remove.
# Repetitions are bounded so that no input makes a pattern quadratic.

# Whole blocks: Jira {code}/{noformat}, Markdown fences (``` or ~~~), HTML <pre>/<code>. An
# unclosed block runs to the end of the text, as Jira and Markdown render it.
_BLOCK = (
    r"\{code(?::[^{}\n]{0,100}+)?\}.*?(?:\{code\}|\Z)"
    r"|\{noformat(?::[^{}\n]{0,100}+)?\}.*?(?:\{noformat\}|\Z)"
    r"|\n[ \t]*(```|~~~).*?(?:\n[ \t]*\1[^\n]*|\Z)"
    r"|<(pre|code)\b[^<>]{0,200}+>.*?(?:</\2\s*>|\Z)",
    re.DOTALL | re.IGNORECASE,
)
_BLOCK_MARKERS = ("{code", "{noformat", "```", "~~~", "<pre", "<code")

# Runs of blank lines, made one newline before the line patterns try each line start.
_BLANK_LINES = (r"\n[ \t\r\f\v]*+(?:\n[ \t\r\f\v]*+)+", 0)

# Whole lines of machine text: Java frames (`at org.x.Y.z(Y.java:12)`, also behind an `[info]`
# prefix), `Caused by:`, `... 12 more`, exception headers (`java.io.IOException: ...`, and
# `ValueError: ...` with the colon), Python tracebacks with the source line under each frame, and
# timestamped log lines; and the `h2.` of a Jira heading (the heading itself is prose).
_LINE = (
    r"\n[ \t]*+(?:"
    r"at [\w$.<>/-]{1,300}+\([^)\n]{0,300}+\)[^\n]*"
    r"|\[\w{1,20}+\][ \t]*at [\w$.<>/-]{1,300}+\([^)\n]{0,300}+\)[^\n]*"
    r"|\.\.\. \d+ more[^\n]*"
    r"|Caused by: [^\n]*"
    r"|Exception in thread \"[^\n]*"
    r"|Traceback \(most recent call last\):[^\n]*"
    r"|File \"[^\"\n]{0,300}+\", line \d+[^\n]*(?:\n[ \t]{4,}[^\n]*)?"
    r"|\[\d{4}-\d\d-\d\d[ T]\d\d:\d\d[^\n]*"
    r"|\d{4}-\d\d-\d\d[ T]\d\d:\d\d[^\n]*"
    r"|h[1-6]\.(?=[ \t])"
    r"|(?:[A-Za-z_$][\w$]{0,80}\.){1,16}[A-Za-z_$][\w$]{0,80}?(?:Exception|Error|Throwable)\b[^\n]*"
    r"|[A-Z][\w$]{0,80}?(?:Exception|Error|Warning):[^\n]*"
    r")",
    0,
)

# A Jira link `[text|https://...]` keeps its text; its URL goes with the other URLs (below).
_JIRA_LINK = (r"\[([^\[\]|\n]{0,200}+)\|[^\[\]\n]{0,1000}+\]", 0)

# Machine text inside a line: Jira {{monospace}}, Markdown `code`, HTML tags and the Jira markup
# left once the blocks are gone ({quote}, {panel:...}, {color}).
_INLINE = (
    r"\{\{[^{}\n]{0,200}+\}\}"
    r"|`[^`\n]{0,200}+`"
    r"|</?[A-Za-z][^<>\n]{0,200}+>"
    r"|\{(?:quote|panel|color|code|noformat)(?::[^{}\n]{0,100}+)?\}",
    0,
)


@functools.cache
def _patterns() -> tuple[re.Pattern[str], ...]:
    # Compiled on first use, not at import: about a millisecond that a deployment with no
    # text-only enrichment switched on should not pay.
    return tuple(
        re.compile(pattern, flags)
        for pattern, flags in (_BLOCK, _BLANK_LINES, _LINE, _JIRA_LINK, _INLINE)
    )


def _clean(text: str) -> str:
    block, blank_lines, line, jira_link, inline = _patterns()
    text = "\n" + text
    lowered = text.lower()  # once, not once per marker
    if any(marker in lowered for marker in _BLOCK_MARKERS):
        text = block.sub("\n", text)
    text = blank_lines.sub("\n", text)
    text = line.sub("\n", text)
    if "|" in text:
        text = jira_link.sub(r" \1 ", text)
    text = inline.sub(" ", text)
    words = text.split()
    if "://" in text:
        # A URL and whatever is glued to it ("(https://...)") is one word of machine text.
        words = [word for word in words if "://" not in word]
    return " ".join(words)


def prose(subject: str, description: str, max_chars: int = 1000) -> str:
    """The subject and the start of the description without code, stack traces, logs or markup.

    Code blocks (Jira ``{code}``/``{noformat}``, Markdown fences, HTML ``<pre>``), stack-trace and
    log lines, URLs, inline code and markup are removed and whitespace runs become one space; the
    result is the subject, a newline and the description's prose, cut to ``max_chars`` characters.
    Only the first ``4 * max_chars`` characters of the description are read, so the cost is
    bounded whatever the ticket's size. Never raises; may return ``""``.
    """
    limit = max(max_chars, 0)
    window = description[: limit * _SCAN_FACTOR]
    if len(window) < len(description) and "\n" in window:
        # End on a whole line, so that a trace line cut in half is still seen as one.
        window = window[: window.rindex("\n")]
    head = _clean(subject[:limit])
    body = _clean(window)
    text = f"{head}\n{body}" if head and body else head or body
    return text[:limit].rstrip()


def prose_pair(text: str, narrow: int, wide: int) -> tuple[str, str]:
    """``prose("", text, narrow)`` and ``prose("", text, wide)`` (``narrow <= wide``), reading the
    text once when it fits in the narrow window's scan: then both read the same characters and
    the narrow prose is the wide one cut to ``narrow`` characters."""
    wide_prose = prose("", text, wide)
    if narrow <= wide and len(text) <= narrow * _SCAN_FACTOR:
        return wide_prose[:narrow].rstrip(), wide_prose
    return prose("", text, narrow), wide_prose

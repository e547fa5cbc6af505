"""The human prose of a ticket: what the text-only enrichments (sentiment, language) read.

Support tickets are long and full of machine text that says nothing about the writer's mood or
language and would dominate both: code blocks, stack traces, log lines, URLs and markup. `prose`
drops them and keeps a bounded prefix of what is left, which also bounds the cost of every
enrichment that reads it.
"""

from __future__ import annotations

import re

# Only this many characters of the description are scanned per requested prose character, so that
# a 64 KB paste costs no more than a short ticket; a block of code that runs past the window is
# dropped as if it ran to the end.
_SCAN_FACTOR = 8

# Whole blocks: Jira {code}/{noformat}, Markdown fences (``` or ~~~), HTML <pre>/<code>. An
# unclosed block runs to the end of the text, as Jira and Markdown render it.
_BLOCK_RE = re.compile(
    r"\{code(?::[^}\n]*)?\}.*?(?:\{code\}|\Z)"
    r"|\{noformat(?::[^}\n]*)?\}.*?(?:\{noformat\}|\Z)"
    r"|^[ \t]*```.*?(?:^[ \t]*```[^\n]*|\Z)"
    r"|^[ \t]*~~~.*?(?:^[ \t]*~~~[^\n]*|\Z)"
    r"|<(pre|code)\b[^>]*>.*?(?:</\1\s*>|\Z)",
    re.DOTALL | re.IGNORECASE | re.MULTILINE,
)

# Whole lines of machine text: Java frames (`at org.x.Y.z(Y.java:12)`, also behind a `[info]`
# prefix), `Caused by:`, `... 12 more`, exception headers (`java.io.IOException: ...`), Python
# tracebacks with the source line under each frame, and timestamped log lines.
_LINE_RE = re.compile(
    r"^[ \t]*(?:\[\w+\][ \t]*)?at [\w$.<>/-]+\([^)\n]*\)[^\n]*"
    r"|^[ \t]*\.\.\. \d+ more[^\n]*"
    r"|^[ \t]*Caused by: [^\n]*"
    r"|^[ \t]*(?:Exception in thread \"[^\"\n]*\" )?(?:[A-Za-z_$][\w$]*\.)+[A-Za-z_$][\w$]*"
    r"(?:Exception|Error|Throwable)\b[^\n]*"
    r"|^[ \t]*Traceback \(most recent call last\):[^\n]*"
    r"|^[ \t]*File \"[^\"\n]*\", line \d+[^\n]*(?:\n[ \t]{4,}[^\n]*)?"
    r"|^[ \t]*\[?\d{4}-\d\d-\d\d[ T]\d\d:\d\d[^\n]*",
    re.MULTILINE,
)

# Machine text inside a line: Jira {{monospace}}, Markdown `code`, URLs, HTML tags and the
# Jira markup that is left once the blocks are gone ({quote}, {panel:...}, {color}, h2.).
_INLINE_RE = re.compile(
    r"\{\{.*?\}\}"
    r"|`[^`\n]*`"
    r"|\b(?:https?|ftp|file)://\S+"
    r"|</?[A-Za-z][^<>\n]{0,200}>"
    r"|\{(?:quote|panel|color|code|noformat)(?::[^}\n]*)?\}"
    r"|^[ \t]*h[1-6]\.[ \t]",
    re.MULTILINE | re.IGNORECASE,
)

_SPACE_RE = re.compile(r"\s+")


def _clean(text: str) -> str:
    text = _BLOCK_RE.sub(" ", text)
    text = _LINE_RE.sub(" ", text)
    text = _INLINE_RE.sub(" ", text)
    return _SPACE_RE.sub(" ", text).strip()


def prose(subject: str, description: str, max_chars: int = 1000) -> str:
    """The subject and the start of the description without code, stack traces, logs or markup.

    Code blocks (Jira ``{code}``/``{noformat}``, Markdown fences, HTML ``<pre>``), stack-trace and
    log lines, URLs, inline code and markup are removed, whitespace runs become one space, and the
    subject, a newline and the description's prose are cut to at most ``max_chars`` characters.
    Only the first ``8 * max_chars`` characters of the description are read, so the cost is
    bounded whatever the ticket's size. Never raises on any strings; may return ``""``.
    """
    limit = max(max_chars, 0)
    head = _clean(subject[:limit])
    body = _clean(description[: limit * _SCAN_FACTOR])
    text = f"{head}\n{body}" if head and body else head or body
    return text[:limit].rstrip()

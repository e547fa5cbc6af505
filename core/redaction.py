"""Personal data and credentials in ticket text, found and replaced by placeholders.

The enrichment path calls `redact` on every ticket, so everything here is standard library,
every pattern is compiled once (at import, or on first use for those only some tickets need) and
every pattern runs in time linear in the text:
number runs are matched possessively and checked in Python instead of with backtracking
lookarounds, and every repetition that could otherwise nest is bounded.

Kinds and placeholders:

- ``email`` → ``[EMAIL]``: ASCII or Latin-script local parts and domains with a letter TLD.
- ``phone`` → ``[PHONE]``: ``+CC`` or ``00CC`` numbers; national numbers with separators and a
  trunk ``0`` (``030 1234567``, ``03-1234-5678``, ``06 12 34 56 78``); North American
  ``(555) 123-4567`` and ``1-800-555-0199``; a parenthesised area code (``(11) 91234-5678``);
  any 8-15 digit number right after a word such as "phone", "Tel.", "teléfono", "電話" or
  "هاتف". Dates, dotted quads and numbers glued to words (``Job_1633``,
  ``HADOOP-12345``) are never phones.
- ``card`` → ``[CARD]``: 13-19 digits, optionally grouped by spaces or dashes, that pass the Luhn
  check and have the prefix and length of a major network (Visa, Mastercard, Amex, Diners, JCB,
  Discover, UnionPay, Maestro), so Luhn-valid ids such as timestamps are left alone.
- ``iban`` → ``[IBAN]``: country code, check digits and BBAN of that country's registered
  length, with or without spaces, passing the ISO 13616 mod-97 check.
- ``ip`` → ``[IP]``: IPv4 with octets 0-255 and IPv6 in full, compressed or IPv4-mapped form. A
  dotted quad whose parts are all 0-255 is an IPv4 address even when it was meant as a
  four-part version (``3.3.1.2``, ``jackson-databind 2.9.10.2``); three-part versions, parts
  above 255 and quads glued to a word by a dash (``pkg-3.4.0.3``, ``8.54.0.21-CA``) are not.
- ``secret`` → ``[SECRET]``: the value after a label such as ``password:``, ``pwd=``,
  ``token:``, ``api_key=``, ``JSESSIONID=``, ``Passwort:``, ``パスワード：`` (also in JSON, YAML,
  XML, Hadoop ``<name>…password</name><value>``, ``--password x``, ``mysql -pX`` and "my password
  is X" when X has a digit), after ``Authorization:`` and ``Bearer``, the password of a URL, and
  well-known key shapes (AWS access key ids, GitHub, GitLab, Slack, Stripe and ``sk-`` keys,
  Google API keys, JWTs). Only the value is replaced: ``password: [SECRET]``. Masks, templates
  (``${DB_PASSWORD}``), constant names and code after a label are not values.
- ``private_key`` → ``[PRIVATE_KEY]``: a whole PEM or PGP private-key block, up to the end of the
  text when its END line is missing.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

# Highest priority first: when two findings start at the same place and are equally long, the
# more specific kind names the placeholder.
_PRIORITY = ("private_key", "secret", "card", "iban", "email", "ip", "phone")
KINDS: frozenset[str] = frozenset(_PRIORITY)
_RANK = {kind: rank for rank, kind in enumerate(_PRIORITY)}
_PLACEHOLDERS = {kind: f"[{kind.upper()}]" for kind in _PRIORITY}

Span = tuple[int, int]


def _lazy(pattern: str, flags: int = 0) -> Callable[[], re.Pattern[str]]:
    """A pattern compiled on its first use, not at import: the patterns only some tickets need
    (secrets, e-mail, a phone number's context word, key blocks) cost a cold start several
    milliseconds to compile."""
    return functools.cache(lambda: re.compile(pattern, flags))


@dataclass(frozen=True)
class Redaction:
    """One redacted finding: its kind and where it was in the original text (end exclusive)."""

    kind: str
    start: int
    end: int

    def as_dict(self) -> dict[str, str | int]:
        """The redaction as a JSON-ready mapping."""
        return {"kind": self.kind, "start": self.start, "end": self.end}


def _is_word_char(text: str, index: int) -> bool:
    """Whether an ASCII letter, digit or underscore is at ``index``: a glued token continues."""
    if not 0 <= index < len(text):
        return False
    char = text[index]
    return char == "_" or (char.isascii() and char.isalnum())


# --- email -----------------------------------------------------------------------------------


def _positions(haystack: str, needle: str) -> Iterator[int]:
    i = haystack.find(needle)
    while i != -1:
        yield i
        i = haystack.find(needle, i + 1)


# How far past a needle a head may end: every head below is shorter than this.
_HEAD_END = 64


@functools.lru_cache(maxsize=32)
def _window(head: str, flags: int, reach: int) -> re.Pattern[str]:
    """The pattern ``head`` after at most ``reach`` characters of anything, the head in group 1:
    one `match` tries every start in a needle's window in C (a `search` from the window's start
    ran on to the end of the text it was given, trying starts past the needle too). Keyed by the
    pattern's text: hashing a compiled pattern hashes its whole program, on every call."""
    return re.compile(rf"(?s:.{{0,{reach}}}?)({head})", flags)


def _near(
    pattern: re.Pattern[str],
    head: re.Pattern[str],
    text: str,
    haystack: str,
    needles: tuple[str, ...] | re.Pattern[str],
    reach: int,
) -> Iterator[re.Match[str]]:
    """What ``pattern.finditer(text)`` yields, for a pattern each match of which starts with a
    match of ``head`` (a short prefix of it) that holds a needle at most ``reach`` characters
    from its start. The needles are found in ``haystack`` (the text itself, or the text
    lower-cased for a case-insensitive pattern and lower-case needles) by substring search, or
    are where a cheap pattern (one that opens with a literal character, which the engine skips
    to) matches; the pattern is tried only where ``head`` matches just before one: on a long
    log that reads a few hundred characters instead of all of them."""
    n = len(text)
    if len(haystack) != n:  # lower-casing changed the length: positions would not line up
        yield from pattern.finditer(text)
        return
    if isinstance(needles, re.Pattern):
        places: Iterable[int] = [m.start() for m in needles.finditer(haystack)]
    else:
        # `in` first: most texts hold none of the needles, and it costs less than a generator.
        places = [
            i for needle in needles if needle in haystack for i in _positions(haystack, needle)
        ]
        if len(needles) > 1:
            places = sorted(set(places))
    if not places:
        return
    window = _window(head.pattern, head.flags, reach)
    pos = 0  # where the next match may start: finditer's matches do not overlap
    previous = -1
    for i in places:
        # Candidate starts for this needle: [i - reach, i], after those already tried. The
        # window's match finds the first head starting at most `reach` after `start`; as
        # `start >= i - reach`, a head it misses would start past the needle.
        start = max(pos, previous + 1, i - reach)
        previous = i
        while start <= i:
            h = window.match(text, start, min(n, i + _HEAD_END))
            if h is None or h.start(1) > i:
                break
            m = pattern.match(text, h.start(1))
            if m is None:
                start = h.start(1) + 1
                continue
            yield m
            pos = m.end()
            start = pos


# Latin letters beyond ASCII (U+00C0-U+024F) cover German, French and Spanish addresses, Greek and
# Cyrillic (U+0370-U+04FF) internationalised domains such as почта.рф; CJK and Arabic letters are
# left out because they glue to the address in running text ("連絡先はa@b.jpです").
_EMAIL_RE = _lazy(
    r"(?<![A-Za-z0-9À-ɏͰ-ӿ._%+\-/])"
    r"[A-Za-z0-9À-ɏͰ-ӿ._%+\-]{1,64}@"
    r"(?:[A-Za-z0-9À-ɏͰ-ӿ\-]{1,63}\.){1,8}(?:[A-Za-zͰ-ӿ]{2,24}|xn--[A-Za-z0-9\-]{1,59})"
    r"(?![A-Za-z0-9À-ɏͰ-ӿ\-])"
)
# The local part up to the "@": what `_near` looks for before each "@".
_EMAIL_LOCAL_MAX = 64
_EMAIL_HEAD = _lazy(r"(?<![A-Za-z0-9À-ɏͰ-ӿ._%+\-/])[A-Za-z0-9À-ɏͰ-ӿ._%+\-]{1,64}@")
# "postgres://user:pass@host" is a password and a host, not an address.
_URL_USERINFO_BEFORE = _lazy(r"://[^\s/@:]{0,256}:$")
_USERINFO_WINDOW = 260


def _emails(text: str) -> Iterator[Span]:
    for m in _near(_EMAIL_RE(), _EMAIL_HEAD(), text, text, ("@",), _EMAIL_LOCAL_MAX):
        start, end = m.span()
        if (
            start
            and text[start - 1] == ":"
            and _URL_USERINFO_BEFORE().search(text, max(0, start - _USERINFO_WINDOW), start)
        ):
            continue
        # scp-style remotes ("git@github.com:org/repo.git") name a host, not a person.
        after = text[end : end + 2]
        if after[:1] == ":" and (_is_word_char(text, end + 1) or after[1:] in ("/", "~")):
            continue
        yield start, end


# --- phone -----------------------------------------------------------------------------------

# Possessive, so that a run of digits and separators is taken whole from its first digit and
# never re-tried from inside (which would make long number runs quadratic); Python then decides.
# Runs are matched only where `_PHONE_START` finds one can begin (see `_phone_runs`).
_PHONE_RUN = re.compile(
    r"(?=[+(0-9])(?<![A-Za-z0-9_.\-/+])(?<![0-9]:)"
    r"\+?(?:\([0-9]{1,5}\)[ ]?)?[0-9]++"
    r"(?:(?:[ ]?\([0-9]{1,5}\)[ ]?|[ .\-/])[0-9]++)*+"
)
# Where one number ends and the next begins inside a run: after a subscriber number of six or
# more digits ("+49 30 1234567 4711") and before a dotted quad ("+49 30 1234567 10.0.0.1").
_PHONE_RUN_STOP = re.compile(r"(?<=[0-9]{6})[ ./]|[ ](?=[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?![0-9]))")
_DIGIT_GROUP = re.compile(r"[0-9]+")
_NON_DIGIT = re.compile(r"[^0-9]+")
_DATE = re.compile(
    r"(?<![0-9])(?<![0-9][./\-])(?:[0-9]{1,2}[./\-][0-9]{1,2}[./\-](?:[0-9]{4}|[0-9]{2})"
    r"|[0-9]{4}[./\-][0-9]{1,2}[./\-][0-9]{1,2})(?![0-9]|[./\-][0-9])"
)
_DOTTED_QUAD = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
# A number right after one of these words is a phone number whatever its format; only the
# fillers in between may separate them ("Tel.-Nr.: ", "call me at ", "電話番号は").
_PHONE_CONTEXT = _lazy(
    r"(?<![A-Za-z])(?:tel|tél|phone|telephone|téléphone|telefon|telefono|teléfono|mobile?|móvil|"
    r"movil|cell|handy|fax|call|whatsapp|sms|rufnummer|anrufen|erreichbar|portable|joindre|"
    r"appele[rz]|ll[aá]mame|ll[aá]meme|llamar|電話|携帯|هاتفي?|الهاتف|جوالي?|الجوال|رقمي)"
    r"(?:[^\w\n]|番号|は|(?<![A-Za-z])(?:me|us|at|on|is|ist|es|est|number|no|nr|num|nummer|numéro|"
    r"número|unter|au|al|le|el)(?![A-Za-z]))*$",
    re.IGNORECASE,
)
_PHONE_CONTEXT_CHARS = 48
_PHONE_MIN_DIGITS = 8
_PHONE_MAX_DIGITS = 15  # E.164


def _phone_shape(candidate: str) -> bool | None:
    """True if the format alone makes a phone number, None if only a word like "phone" before it
    would, False if nothing would."""
    digits = _NON_DIGIT.sub("", candidate)
    if not _PHONE_MIN_DIGITS <= len(digits) <= _PHONE_MAX_DIGITS:
        return False
    if _DOTTED_QUAD.fullmatch(candidate):
        return False
    if candidate[0] == "+":
        return True
    groups = _DIGIT_GROUP.findall(candidate)
    if len(groups) > 1:
        first = groups[0]
        if first.startswith("00") and len(first) >= 3 and first[2] != "0":
            return True  # 0049 30 1234567: the international prefix dialled out
        # A trunk 0 then an area code: the national format of most of Europe, Japan and the Gulf.
        # "00 00 00" (hex dumps) and "0.5 0.25" (decimals) fail the second digit or group length.
        if (
            first[0] == "0"
            and len(first) >= 2
            and first[1] != "0"
            and 9 <= len(digits) <= 12
            and min(map(len, groups)) >= 2
        ):
            return True
        lengths = [len(g) for g in groups]
        country = lengths[:-3]  # none, or the North American country code 1
        # North American (555) 123-4567 and 1-800-555-0199; area codes never start with 0 or 1.
        if (
            lengths[-3:] == [3, 3, 4]
            and groups[-3][0] in "23456789"
            and (not country or (country == [1] and first == "1"))
        ):
            return True
        # A parenthesised area code is a phone-number habit everywhere: (11) 91234-5678.
        if candidate[0] == "(" and 9 <= len(digits) <= 12:
            return True
    return None


def _phone_in(text: str, start: int, run: str) -> Span | None:
    if len(run) < _PHONE_MIN_DIGITS or _DATE.search(run):
        return None  # log lines put dates next to other numbers: "02 2021/05/24 10"
    # The whole run first, then shorter prefixes ending at a separator, so that a number
    # followed by an unrelated one ("0171 1234567 2x daily") is still found.
    ends = [g.end() for g in _DIGIT_GROUP.finditer(run)]
    ends = [e for e in ends if e == len(run) or run[e] in " .-/"][::-1][:6]
    context: bool | None = None
    for end in ends:
        if end == len(run) and _is_word_char(text, start + end):
            continue
        verdict = _phone_shape(run[:end])
        if verdict is None:
            if context is None:
                window = max(0, start - _PHONE_CONTEXT_CHARS)
                context = _PHONE_CONTEXT().search(text, window, start) is not None
            verdict = context
        if verdict:
            return start, start + end
    return None


# Where a run can start: its first character, then the run's lookbehinds read back over it. A
# pattern led by a character class is the one the engine skips through fastest (a third of the
# time of the run's own, lookahead-led scan on a long ticket with few digits).
_PHONE_START = re.compile(r"[+(0-9](?<![A-Za-z0-9_.\-/+][+(0-9])(?<![0-9]:[+(0-9])")


def _phone_runs(text: str) -> Iterator[re.Match[str]]:
    """``_PHONE_RUN.finditer(text)``: the run is matched only where one can start."""
    end = 0
    match = _PHONE_RUN.match
    for start in _PHONE_START.finditer(text):
        if start.start() < end:
            continue  # inside the run before: finditer's matches do not overlap
        m = match(text, start.start())
        if m is not None:
            end = m.end()
            yield m


def _phones(text: str) -> Iterator[Span]:
    for m in _phone_runs(text):
        if m.end() - m.start() < _PHONE_MIN_DIGITS:
            continue  # most runs are years, line numbers and ports
        run = m.group()
        piece_start = 0
        for stop in [*_PHONE_RUN_STOP.finditer(run), None]:
            piece_end = stop.start() if stop else len(run)
            span = _phone_in(text, m.start() + piece_start, run[piece_start:piece_end])
            if span:
                yield span
            if stop:
                piece_start = stop.end()


# --- card ------------------------------------------------------------------------------------

# Led by its first digit, the lookbehind reading back over it (see `_PHONE_START`).
_CARD_RUN = re.compile(r"[0-9](?<![A-Za-z0-9_.\-/][0-9])[0-9]*+(?:[ \-][0-9]++)*+")
_CARD_MIN, _CARD_MAX = 13, 19


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _issued_by_a_network(number: str) -> bool:
    # Prefixes and lengths of Visa, Mastercard, Amex, Diners, JCB, Discover, UnionPay and Maestro:
    # Luhn alone passes one random number in ten, such as ticket ids and timestamps.
    length, first = len(number), number[0]
    if first == "4":
        return length in (13, 16, 19)
    if first == "2":
        return length == 16 and 2221 <= int(number[:4]) <= 2720
    if first == "3":
        two = number[:2]
        return (
            (two in ("34", "37") and length == 15)
            or (two in ("30", "36", "38", "39") and length >= 14)
            or (two == "35" and length >= 16)
        )
    return first in "56" and length >= 16


def _cards(text: str) -> Iterator[Span]:
    for m in _CARD_RUN.finditer(text):
        run = m.group()
        if len(run) < _CARD_MIN:
            continue
        groups = list(_DIGIT_GROUP.finditer(run))
        # Candidates are the run's group prefixes with 13-19 digits; card groupings (4-4-4-4,
        # 4-6-5, 4-6-4) never have a short group before the last one.
        candidates: list[tuple[int, str]] = []
        digits = ""
        for i, g in enumerate(groups):
            if i and not 4 <= len(groups[i - 1].group()) <= 6:
                break
            digits += g.group()
            if len(digits) > _CARD_MAX:
                break
            if len(digits) >= _CARD_MIN:
                candidates.append((g.end(), digits))
        for end, number in reversed(candidates):
            if end == len(run) and _is_word_char(text, m.start() + end):
                continue
            if _issued_by_a_network(number) and _luhn_ok(number):
                yield m.start(), m.start() + end
                break


# --- iban ------------------------------------------------------------------------------------

# IBAN lengths per country from the SWIFT IBAN registry (ISO 13616); RU is not in the registry
# but its banks issue IBANs of this length.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip
# The check digits, found from the first one (a digit-led pattern: the engine skips to digits)
# and checked back for the two letters of a country code that start a word.
_IBAN_CHECK_DIGITS = re.compile(r"[0-9](?<=(?<![A-Za-z0-9])[A-Za-z]{2}[0-9])[0-9]")


# One pattern per registered length: the BBAN is exactly that many characters, each optionally
# preceded by one space, and must not run on into a longer token.
# Compiled on first use, one length at a time: all of them take about 5 ms, which a cold start
# should not pay for countries no ticket names.
@functools.cache
def _iban_tail(length: int) -> re.Pattern[str]:
    return re.compile(rf"(?:[ ]?[A-Za-z0-9]){{{length - 4}}}(?![A-Za-z0-9])")


def _mod97_ok(candidate: str) -> bool:
    compact = candidate.replace(" ", "").upper()
    if not 2 <= int(compact[2:4]) <= 98:  # 00, 01 and 99 are never issued
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _ibans(text: str) -> Iterator[Span]:
    for m in _IBAN_CHECK_DIGITS.finditer(text):
        start = m.start() - 2
        length = _IBAN_LENGTHS.get(text[start : m.start()].upper())
        if length is None:
            continue
        tail = _iban_tail(length).match(text, m.end())
        if tail and _mod97_ok(text[start : tail.end()]):
            yield start, tail.end()


# --- ip --------------------------------------------------------------------------------------

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
# Not after a letter, digit or dot and not before ".digit": 1.2.3.4.5 and v1.2.3.4 are not IPs;
# nor glued by a dash to a word, as versions in artifact names are (pkg-3.4.0.3, 8.54.0.21-CA).
_IPV4_RE = re.compile(
    rf"(?=[0-9])(?<![A-Za-z0-9_.])(?<![A-Za-z]-){_OCTET}(?:\.{_OCTET}){{3}}(?![A-Za-z0-9_]|\.[0-9]|-[A-Za-z])"
)
_IPV6_RUN = re.compile(
    r"(?<![A-Za-z0-9_:.])(?=[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:]++(?:\.[0-9.]++)?"
)

# Where a candidate's first separator is, for `_near`: a dotted quad's first dot, followed by
# two more parts; an IPv6 address's first colon, another colon at most four hex digits on. Both
# open with a literal character, so they read a long log at a fraction of a full scan's cost.
_IPV4_FIRST_DOT = re.compile(r"\.(?=[0-9]{1,3}\.[0-9]{1,3}\.[0-9])")
_IPV4_HEAD = re.compile(r"(?<![A-Za-z0-9_.])(?<![A-Za-z]-)[0-9]")
_IPV6_FIRST_COLON = re.compile(r":(?=[0-9A-Fa-f]{0,4}:)")
_IPV6_HEAD = re.compile(r"(?<![A-Za-z0-9_:.])(?=[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:)")

_IPV6_GROUP_SPLIT = re.compile(r"[:.]")


def _ipv6_ok(token: str) -> bool:
    # Eight groups need seven colons, six and a dotted quad six, fewer a "::": times of day
    # ("12:34:56") are most of the candidates in a log, and the parser is slow to refuse them.
    if "::" not in token and token.count(":") < 6:
        return False
    try:
        ipaddress.IPv6Address(token)
    except ValueError:
        return False
    groups = [g for g in _IPV6_GROUP_SPLIT.split(token) if g]
    # Python slices (a[1::2]) and C++ scopes (Abc::Def) are valid IPv6 spellings; real addresses
    # have a digit and either three groups or one of three or more characters (fe80::1).
    return any(c.isdigit() for c in token) and (
        token == "::1" or len(groups) >= 3 or (len(groups) == 2 and max(map(len, groups)) >= 3)
    )


def _ips(text: str) -> Iterator[Span]:
    if text.count(".") >= 3:  # a dotted quad has three
        for m in _near(_IPV4_RE, _IPV4_HEAD, text, text, _IPV4_FIRST_DOT, 3):
            yield m.span()
    if "::" not in text and text.count(":") < 7:
        return
    for m in _near(_IPV6_RUN, _IPV6_HEAD, text, text, _IPV6_FIRST_COLON, 4):
        start, token = m.start(), m.group().rstrip(".")
        if _is_word_char(text, start + len(token)) and len(token) == len(m.group()):
            continue
        for candidate in (token, token[:-1] if token.endswith(":") else ""):
            if candidate and _ipv6_ok(candidate):
                yield start, start + len(candidate)
                break


# --- secret ----------------------------------------------------------------------------------

_LABEL = (
    r"(?:pass(?:word|wd|phrase)|pwd?|passwort|kennwort|mot[ _]de[ _]passe|contrase[ñn]a|senha|"
    r"(?:client[_\-]?)?secret(?:[_\-]?(?:access[_\-]?)?key)?|"
    r"(?:(?:access|refresh|auth|api|bearer|private|session|id)[_\-]?)?token|"
    r"api[_\-]?key|apikey|access[_\-]?key(?:[_\-]?id)?|private[_\-]?key|"
    r"(?:j|php)?sess(?:ion)?[_\-]?id|"
    r"パスワード|暗証番号|كلمة (?:المرور|السر))"
)
# Lower-case substrings of which every label contains at least one.
_LABEL_NEEDLES = (
    "pass", "pw", "kennwort", "contrase", "senha", "secret", "token", "key", "sess",
    "パスワード", "暗証番号", "كلمة",
)  # fmt: skip
# Printable ASCII without quotes, <>&, braces, pipe, backtick, comma and semicolon: those end a
# value in query strings, markup, JDBC/.NET connection strings and prose.
_BARE = r"[!#$%()*+\-./0-9:=?@A-Z\[\\\]^_a-z~]{1,256}"
_VALUE = rf"(?:\"(?P<dq>[^\"\n]{{1,256}})\"|'(?P<sq>[^'\n]{{1,256}})'|(?P<bare>{_BARE}))"


# The labels' first character to their last: a needle in a label is at most this far from its
# start (a unit test holds the longest label to it).
_LABEL_REACH = 24
# Every label's first letter, as a lookahead the engine checks before the lookbehind and the
# labels themselves.
_LABEL_FIRST = "(?=[abcijkmprstパ暗ك])"
_LABEL_HEAD = _lazy(rf"{_LABEL_FIRST}(?<![A-Za-z0-9/]){_LABEL}", re.IGNORECASE)


# The lookahead on the labels' first letters lets the engine skip to candidate positions instead
# of trying the lookbehind and every label at each character: half the time on long tickets.
# About 5 ms to compile: on first use, not at import.
@functools.cache
def _secret_labeled() -> re.Pattern[str]:
    return re.compile(
        rf"{_LABEL_FIRST}(?<![A-Za-z0-9/]){_LABEL}[\"']?"
        # "password for the VPN is ...": up to three words say whose password it is.
        r"(?P<qualified>[ \t]+(?:for|für|pour|para|del?|of)(?:[ \t]+[^\s:=：]{1,40}){1,3}?)?"
        r"(?:[ \t]*(?:=>|[:=：])"
        r"|(?P<said>[ \t]+(?:is|ist|est|es|lautet|was|era|هي)[ \t]*:?|[ \t]*は))"
        rf"[ \t]*{_VALUE}",
        re.IGNORECASE,
    )


# mysql -u root -pS3cret: the password glued to -p (a space after -p makes mysql prompt).
_SECRET_MYSQL = _lazy(
    r"(?<![A-Za-z0-9])mysql(?:dump|admin)?(?![A-Za-z0-9])"
    r"[^\n]{0,120}?[ \t]-p(?P<bare>[^\s\"']{1,256})"
)
_SECRET_CLI = _lazy(
    rf"(?<![A-Za-z0-9\-])--(?:password|passwd|pass|token|api-key|apikey|secret|client-secret)"
    rf"[ \t]+{_VALUE}",
    re.IGNORECASE,
)
_SECRET_XML = _lazy(
    rf"<[A-Za-z_:.\-]{{0,40}}{_LABEL}>(?P<bare>[^<\n]{{1,256}})</",
    re.IGNORECASE,
)
# Hadoop-style configuration: <name>ssl.server.keystore.password</name><value>...</value>.
# The label ends the name: "signer.secret.provider" names a provider, not a secret.
_SECRET_XML_PROPERTY = _lazy(
    rf"<name>[^<\n]{{0,100}}?{_LABEL}(?:[._\-]key)?</name>\s{{0,40}}"
    r"<value>(?P<bare>[^<\n]{1,256})</value>",
    re.IGNORECASE,
)
_SECRET_AUTH = _lazy(
    r"(?<![A-Za-z0-9\-])(?:proxy-)?authorization[\"']?[ \t]*[:=][ \t]*[\"']?"
    r"(?:(?P<scheme>bearer|basic|token|negotiate|apikey)[ \t]+)?"
    r"(?P<bare>[A-Za-z0-9\-._~+/=:]{8,4096})",
    re.IGNORECASE,
)
_SECRET_BEARER = _lazy(
    r"(?<![A-Za-z0-9])bearer[ \t]+(?P<bare>[A-Za-z0-9\-._~+/]{8,4096}=*)", re.IGNORECASE
)
_SECRET_URL = _lazy(
    r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]{1,20}://[^\s/:@]{0,256}:(?P<bare>[^\s/@]{1,256})@"
)
_SECRET_SHAPES = _lazy(
    r"(?<![A-Za-z0-9_\-])(?:"
    r"(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key ids
    r"|gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,244}"
    r"|glpat-[A-Za-z0-9_\-]{20,50}"
    r"|xox[baprs]-[A-Za-z0-9\-]{10,250}"
    r"|[sr]k_(?:live|test)_[A-Za-z0-9]{16,247}"
    r"|sk-(?=[A-Za-z_\-]{0,250}[0-9])[A-Za-z0-9_\-]{20,250}"  # a digit: not kebab-case words
    r"|AIza[0-9A-Za-z_\-]{35}"
    r"|eyJ[A-Za-z0-9_\-]{8,4096}\.eyJ[A-Za-z0-9_\-]{8,8192}\.[A-Za-z0-9_\-]{0,4096}"  # JWT
    r")(?![A-Za-z0-9_\-])"
)
# Every key shape above starts with one of these (case as written), or one character before
# it ("sk_live_"): without one, no scan.
_SHAPE_PREFIXES = (
    "AKIA", "ASIA", "gh", "github_pat_", "glpat-", "xox", "k_live_", "k_test_", "sk-", "AIza",
    "eyJ",
)  # fmt: skip
_SHAPE_HEAD = _lazy(
    r"(?<![A-Za-z0-9_\-])(?:AKIA|ASIA|gh[pousr]_|github_pat_|glpat-|xox[baprs]-|"
    r"[sr]k_(?:live|test)_|sk-|AIza|eyJ)"
)
_CLI_NEEDLES = ("--pass", "--token", "--api", "--secret", "--client-secret")
_CLI_HEAD = _lazy(
    r"(?<![A-Za-z0-9\-])--(?:password|passwd|pass|token|api-key|apikey|secret|client-secret)",
    re.IGNORECASE,
)
_AUTH_HEAD = _lazy(r"(?<![A-Za-z0-9\-])(?:proxy-)?authorization", re.IGNORECASE)
_BEARER_HEAD = _lazy(r"(?<![A-Za-z0-9])bearer", re.IGNORECASE)
_URL_HEAD = _lazy(r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]{1,20}://")
_NOT_SECRETS = frozenset({
    "null", "none", "nil", "true", "false", "yes", "no", "required", "optional", "invalid",
    "incorrect", "expired", "missing", "empty", "changed", "reset", "wrong", "redacted", "hidden",
    "masked", "string", "undefined", "unknown", "unset", "new", "this", "self",
})  # fmt: skip
# Masks, templates, environment references and our own placeholders are not values to hide,
# so that redacting twice changes nothing.
_PLACEHOLDER_VALUE = _lazy(
    r"[*xX•.#?_\-]+|\$\{.*|\$\(.*|\$[A-Z_][A-Z0-9_]*|\{\{.*|%\(.*|%s|<.*>|\[[A-Z_]+\]|\(.*\)|/.*/.*"
)
# What follows a label in code and logs without being a value: a constant or environment
# variable name (HDFS_DELEGATION_TOKEN), a call (conf.get(...)), the next key ("token: Kind:",
# "TOKEN: code=82").
_NOT_A_VALUE = _lazy(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[A-Za-z_][\w.]*\(.*|.*:|[A-Za-z_]\w*=.*")


def _without_trailing_punctuation(value: str) -> str:
    # Sentence punctuation after a bare value ("password=hunter2.", "(pwd: abc123)") is not part
    # of it, unless it closes a bracket opened inside the value ("[SECRET]"). "!" and "?" stay:
    # passwords end with them ("Summer2021!") more often than sentences glue them to a value.
    while value and value[-1] in ".:)]":
        closing = value[-1]
        opening = {")": "(", "]": "["}.get(closing)
        if opening and value.count(opening) >= value.count(closing):
            break
        value = value[:-1]
    return value


def _value_span(m: re.Match[str], said: bool) -> Span | None:
    for group in ("dq", "sq", "bare"):
        value = m.group(group) if group in m.re.groupindex else None
        if value is None:
            continue
        start = m.start(group)
        if group == "bare":
            if _NOT_A_VALUE().fullmatch(value):
                return None
            value = _without_trailing_punctuation(value)
        if len(value) < 3 or value.lower() in _NOT_SECRETS or _PLACEHOLDER_VALUE().fullmatch(value):
            return None
        if said and (len(value) < 6 or not _has_digit(value)):
            return None  # "password is expired" is prose; "password is Summer2021" is not
        return start, start + len(value)
    return None


def _has_digit(value: str) -> bool:
    return any(c.isdigit() for c in value)


def _without_trailing_dots(m: re.Match[str]) -> Span:
    start = m.start("bare")
    return start, start + len(m.group("bare").rstrip("."))


def _secrets(text: str) -> Iterator[Span]:
    # Each pattern is tried only near a substring its matches must hold (`_near`), and not at
    # all without one: a substring search is a hundred times cheaper per character than a scan
    # with a case-insensitive alternation, and logs are long.
    lowered = text.lower()
    if "ı" in lowered or "ſ" in lowered:
        # Case-insensitive patterns take a dotless i for "i" and a long s for "s", which
        # lower() keeps: the needles are looked for as the patterns would read them.
        lowered = lowered.replace("ı", "i").replace("ſ", "s")
    labeled = [
        _near(_secret_labeled(), _LABEL_HEAD(), text, lowered, _LABEL_NEEDLES, _LABEL_REACH),
        _near(_SECRET_CLI(), _CLI_HEAD(), text, lowered, _CLI_NEEDLES, 0),
    ]
    labeled += [
        pattern().finditer(text)
        for pattern, needle in (
            (_SECRET_XML, "</"),
            (_SECRET_XML_PROPERTY, "<name>"),
            (_SECRET_MYSQL, "mysql"),
        )
        if needle in lowered
    ]
    for matches in labeled:
        for m in matches:
            # Prose around the label ("is", "for the VPN") asks for a value that looks like one.
            said = any(
                name in m.re.groupindex and m.group(name) is not None
                for name in ("said", "qualified")
            )
            span = _value_span(m, said)
            if span:
                yield span
    # Without a scheme or a digit, "Authorization: Permission denied" and "Bearer authentication"
    # are prose, not credentials.
    for m in _near(_SECRET_AUTH(), _AUTH_HEAD(), text, lowered, ("authorization",), 6):
        if m.group("scheme") or _has_digit(m.group("bare")):
            yield _without_trailing_dots(m)
    for m in _near(_SECRET_BEARER(), _BEARER_HEAD(), text, lowered, ("bearer",), 0):
        if _has_digit(m.group("bare")):
            yield _without_trailing_dots(m)
    for m in _near(_SECRET_URL(), _URL_HEAD(), text, text, ("://",), 21):
        span = _value_span(m, said=False)
        if span:
            yield span
    for m in _near(_SECRET_SHAPES(), _SHAPE_HEAD(), text, text, _SHAPE_PREFIXES, 1):
        yield m.span()


# --- private key -----------------------------------------------------------------------------

_PRIVATE_KEY_RE = _lazy(
    r"-----BEGIN (?:[A-Z0-9]{1,20} ){0,3}PRIVATE KEY(?: BLOCK)?-----.*?"
    r"(?:-----END (?:[A-Z0-9]{1,20} ){0,3}PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.DOTALL,
)


def _private_keys(text: str) -> Iterator[Span]:
    if "PRIVATE KEY" not in text:
        return
    for m in _PRIVATE_KEY_RE().finditer(text):
        yield m.span()


# The fewest ASCII digits a finding of each kind holds: 13 for a card, 8 for a phone number,
# the two check digits of an IBAN.
_MIN_DIGITS = {"card": _CARD_MIN, "phone": _PHONE_MIN_DIGITS, "iban": 2}

_FINDERS: dict[str, Callable[[str], Iterator[Span]]] = {
    "private_key": _private_keys,
    "secret": _secrets,
    "card": _cards,
    "iban": _ibans,
    "email": _emails,
    "ip": _ips,
    "phone": _phones,
}


def find(text: str, kinds: frozenset[str] | None = None) -> list[Redaction]:
    """The findings `redact` would replace, sorted by start, without changing the text."""
    wanted = KINDS if kinds is None else kinds
    unknown = wanted - KINDS
    if unknown:
        raise ValueError(f"unknown redaction kinds {sorted(unknown)}; known: {sorted(KINDS)}")
    found: list[tuple[int, int, int, str]] = []
    # A kind that needs more ASCII digits than the text holds cannot be in it: counting them
    # (ten scans in C) costs far less than the scans of the finders it skips.
    digits = sum(map(text.count, "0123456789"))
    for kind in _PRIORITY:
        if kind in wanted and digits >= _MIN_DIGITS.get(kind, 0):
            found.extend((start, -end, _RANK[kind], kind) for start, end in _FINDERS[kind](text))
    # Earliest start first, then the longest, then the most specific kind; anything that overlaps
    # a kept finding is dropped.
    found.sort()
    kept: list[Redaction] = []
    covered_to = 0
    for start, neg_end, _, kind in found:
        if start >= covered_to and -neg_end > start:
            kept.append(Redaction(kind, start, -neg_end))
            covered_to = -neg_end
    return kept


def redact(text: str, kinds: frozenset[str] | None = None) -> tuple[str, list[Redaction]]:
    """Replace each finding of the given kinds (all when None) by its placeholder, e.g. [EMAIL].

    Returns the redacted text and the redactions sorted by start, with positions in the
    original text. Raises ValueError for a kind not in `KINDS`.
    """
    redactions = find(text, kinds)
    if not redactions:
        return text, redactions
    pieces: list[str] = []
    position = 0
    for r in redactions:
        pieces.append(text[position : r.start])
        pieces.append(_PLACEHOLDERS[r.kind])
        position = r.end
    pieces.append(text[position:])
    return "".join(pieces), redactions

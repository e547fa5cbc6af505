"""The secret and IP patterns are tried only near their needles (`core.redaction._near`): on any text
that must give exactly what a scan of the whole text gives."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import redaction as r

Lazy = Callable[[], re.Pattern[str]]
# (pattern, head, case-insensitive haystack?, needles, reach), as `_secrets` and `_ips` use them.
USES: dict[str, tuple[Lazy, Lazy, bool, tuple[str, ...] | re.Pattern[str], int]] = {
    "labeled": (r._secret_labeled, r._LABEL_HEAD, True, r._LABEL_NEEDLES, r._LABEL_REACH),
    "cli": (r._SECRET_CLI, r._CLI_HEAD, True, r._CLI_NEEDLES, 0),
    "authorization": (r._SECRET_AUTH, r._AUTH_HEAD, True, ("authorization",), 6),
    "bearer": (r._SECRET_BEARER, r._BEARER_HEAD, True, ("bearer",), 0),
    "url": (r._SECRET_URL, r._URL_HEAD, False, ("://",), 21),
    "shapes": (r._SECRET_SHAPES, r._SHAPE_HEAD, False, r._SHAPE_PREFIXES, 1),
    "ipv4": (lambda: r._IPV4_RE, lambda: r._IPV4_HEAD, False, r._IPV4_FIRST_DOT, 3),
    "ipv6": (lambda: r._IPV6_RUN, lambda: r._IPV6_HEAD, False, r._IPV6_FIRST_COLON, 4),
    "email": (r._EMAIL_RE, r._EMAIL_HEAD, False, ("@",), r._EMAIL_LOCAL_MAX),
}

PIECES = [
    "password", "Password", "passwd", "pwd", "PW", "mot de passe", "Passwort", "contraseña",
    "client_secret", "client-secret-access-key", "secret", "api_key", "apikey", "access_key_id",
    "private_key", "access_token", "refresh-token", "token", "JSESSIONID", "php_session_id",
    "sessionid", "パスワード", "كلمة المرور", "for the VPN", "is", "ist", ":", "=", "=>", "：",
    '"', "'", " ", " ", "\t", "\n", ".", ",", "hunter2", "S3cr3t!", "abc123def456", "x" * 30,
    "Authorization:", "proxy-authorization=", "Bearer", "bearer", "Basic", "dXNlcjpwYXNz",
    "https://", "postgres://", "user:pa55w0rd@db", "@", "/", "--password", "--token", "--api-key",
    "--client-secret", "---", "-p", "AKIA", "ABCDEFGHIJKLMNOP", "ghp_", "gh", "a" * 36,
    "github_pat_", "glpat-", "xoxb-", "sk_live_", "rk_test_", "sk-", "AIza", "eyJ", "0123456789",
    "İ", "ß", "jane.doe", "x" * 70, "example.com", "@", "mail.", "co", "uk", "10", "255", "256", "1", "0", "::", "fe80", "abcd", "FFFF", "v", "pkg-", ".",
    ":", "key", "monkey", "KeyProvider", "delegation token", "-", "_", "ſ", "ı", "paſsword",
    "apı_key", "\u212a",
]  # fmt: skip


def _near_matches(name: str, text: str) -> list[tuple[int, int]]:
    pattern, head, folded, needles, reach = USES[name]
    haystack = text.lower() if folded else text
    return [m.span() for m in r._near(pattern(), head(), text, haystack, needles, reach)]


def _scanned(name: str, text: str) -> list[tuple[int, int]]:
    return [m.span() for m in USES[name][0]().finditer(text)]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=60), st.sampled_from(sorted(USES)))
def test_near_finds_what_a_scan_of_the_whole_text_finds(pieces: list[str], name: str) -> None:
    text = "".join(pieces)
    assert _near_matches(name, text) == _scanned(name, text)


@pytest.mark.parametrize("name", sorted(USES))
def test_near_finds_matches_deep_in_a_long_log(name: str) -> None:
    samples = {
        "labeled": "api_key: abc123def456",
        "cli": "run --password S3cr3t!",
        "authorization": "Authorization: Bearer abc123def456",
        "bearer": "Bearer abc123def456ghi",
        "url": "postgres://admin:pa55w0rd@db.internal",
        "shapes": "AKIAABCDEFGHIJKLMNOP",
        "ipv4": "connect to 10.0.12.7 failed",
        "ipv6": "listening on fe80::1ff:fe23:4567:890a",
        "email": "mail jane.doe+ops@example.co.uk now",
    }
    line = "2024-01-01 INFO org.apache.hadoop.Monkey: token key passed --- gh session\n"
    text = line * 80 + samples[name] + "\n" + line * 80
    found = _near_matches(name, text)
    assert found == _scanned(name, text)
    assert any(start >= len(line) * 80 for start, _ in found)


def test_every_label_fits_the_reach_its_needles_are_looked_for_in() -> None:
    parsed = re._parser.parse(r._LABEL, re.IGNORECASE)  # type: ignore[attr-defined]
    assert parsed.getwidth()[1] <= r._LABEL_REACH
    for label in ("client-secret-access-key", "mot de passe", "PHPSESSID", "refresh_token"):
        assert re.fullmatch(r._LABEL, label, re.IGNORECASE)
        assert any(n in label.lower() for n in r._LABEL_NEEDLES)


IP_PIECES = ["10", "255", "256", "1", "0", "7", ".", ".", ":", ":", "::", "fe80", "abcd", "FFFF",
             "v", "-", "a", " ", "pkg-", "_", "\n"]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(IP_PIECES), max_size=60), st.sampled_from(["ipv4", "ipv6"]))
def test_near_finds_the_ips_a_scan_of_the_whole_text_finds(pieces: list[str], name: str) -> None:
    text = "".join(pieces)
    assert _near_matches(name, text) == _scanned(name, text)


# The check digits of an IBAN used to be found from the country code, with a lookbehind tried at
# every character; they are now found from the first digit and checked back.
_COUNTRY_FIRST = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2})[0-9]{2}")


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.sampled_from(["DE", "de", "GB", "x", "1", "12", "89", " ", "-", "_", "é", "3704"]),
        max_size=40,
    )
)
def test_iban_check_digits_are_found_where_the_country_code_pattern_finds_them(
    pieces: list[str],
) -> None:
    text = "".join(pieces)
    starts = [m.start() - 2 for m in r._IBAN_CHECK_DIGITS.finditer(text)]
    assert starts == [m.start() for m in _COUNTRY_FIRST.finditer(text)]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("paſsword: S3cr3t!", "S3cr3t!"),
        ("apı_key=abc123def456", "abc123def456"),
        ("ſecret: x9y8z7w6", "x9y8z7w6"),
    ],
)
def test_needles_are_found_as_the_case_insensitive_patterns_read_them(
    text: str, value: str
) -> None:
    # A dotless i and a long s match "i" and "s" case-insensitively, but lower() keeps them.
    start = text.index(value)
    assert r.find(text) == [r.Redaction("secret", start, start + len(value))]


# The card run as it was written before it was led by its first digit: the same matches.
_CARD_RUN_LOOKAHEAD = re.compile(r"(?=[0-9])(?<![A-Za-z0-9_.\-/])[0-9]++(?:[ \-][0-9]++)*+")
DIGITISH = st.text(alphabet="0123456789 +()-./:aZ_\n", max_size=40)


@settings(max_examples=500, deadline=None)
@given(DIGITISH)
def test_phone_runs_are_those_a_scan_of_the_whole_text_finds(text: str) -> None:
    assert [m.span() for m in r._phone_runs(text)] == [
        m.span() for m in r._PHONE_RUN.finditer(text)
    ]


@settings(max_examples=500, deadline=None)
@given(DIGITISH)
def test_card_runs_are_those_of_the_lookahead_led_pattern(text: str) -> None:
    assert [m.span() for m in r._CARD_RUN.finditer(text)] == [
        m.span() for m in _CARD_RUN_LOOKAHEAD.finditer(text)
    ]

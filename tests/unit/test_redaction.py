import dataclasses
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from core.redaction import KINDS, Redaction, redact

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "pii.jsonl"
ENTRIES: list[dict[str, Any]] = [
    json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()
]
POSITIVES = [e for e in ENTRIES if e["expected"]]
NEGATIVES = [e for e in ENTRIES if not e["expected"]]


def _entry_id(entry: dict[str, Any]) -> str:
    return str(entry["id"])


def _expected_spans(entry: dict[str, Any]) -> list[tuple[str, int, int]]:
    """Every occurrence of every expected value, as (kind, start, end), except occurrences inside
    a longer expected value (the "::1" inside "fe80::1ff:...")."""
    text = entry["text"]
    spans = []
    for item in entry["expected"]:
        value = item["value"]
        start = text.find(value)
        assert start >= 0, f"{entry['id']}: expected value not in text"
        while start >= 0:
            spans.append((item["kind"], start, start + len(value)))
            start = text.find(value, start + len(value))
    return [
        (kind, s, e)
        for kind, s, e in spans
        if not any(s2 <= s and e <= e2 and e2 - s2 > e - s for _, s2, e2 in spans)
    ]


def _covers(r: Redaction, start: int, end: int) -> bool:
    return r.start <= start and end <= r.end


def _luhn(number: str) -> bool:
    """An independent Luhn check, so the test does not trust the code under test."""
    digits = [int(d) for d in reversed(number)]
    doubled = [sum(divmod(2 * d, 10)) for d in digits[1::2]]
    return (sum(digits[0::2]) + sum(doubled)) % 10 == 0


# --- the corpus --------------------------------------------------------------------------------


def test_the_corpus_is_large_and_covers_every_kind_and_script() -> None:
    assert len(ENTRIES) >= 80
    assert len({e["id"] for e in ENTRIES}) == len(ENTRIES)
    assert {item["kind"] for e in POSITIVES for item in e["expected"]} == KINDS
    assert len(NEGATIVES) >= 30
    texts = "".join(e["text"] for e in ENTRIES)
    for script in (r"[\u3040-\u30ff]", r"[\u0600-\u06ff]", r"[äöüß]", r"[éèàç]", r"[ñ¿¡]"):
        assert re.search(script, texts), script
    assert re.search(r"[\U0001F300-\U0001FAFF]", texts), "emoji"


@pytest.mark.parametrize("entry", POSITIVES, ids=_entry_id)
def test_every_true_positive_is_covered_by_one_redaction_of_its_kind(entry: dict[str, Any]) -> None:
    text = entry["text"]
    redacted, redactions = redact(text)
    for kind, start, end in _expected_spans(entry):
        assert any(r.kind == kind and _covers(r, start, end) for r in redactions), (
            f"{kind} {text[start:end]!r} not redacted: {[r.as_dict() for r in redactions]}"
        )
        assert text[start:end] not in redacted


@pytest.mark.parametrize("entry", POSITIVES, ids=_entry_id)
def test_positive_lines_have_no_redaction_beyond_the_expected_values(entry: dict[str, Any]) -> None:
    text = entry["text"]
    spans = _expected_spans(entry)
    _, redactions = redact(text)
    extra = [r for r in redactions if not any(_covers(r, s, e) for _, s, e in spans)]
    assert not extra, [(r.kind, text[r.start : r.end]) for r in extra]


@pytest.mark.parametrize("entry", NEGATIVES, ids=_entry_id)
def test_negative_lines_are_not_redacted_at_all(entry: dict[str, Any]) -> None:
    text = entry["text"]
    redacted, redactions = redact(text)
    assert redactions == [], [(r.kind, text[r.start : r.end]) for r in redactions]
    assert redacted == text


@pytest.mark.parametrize("entry", ENTRIES, ids=_entry_id)
def test_redacting_twice_changes_nothing_more(entry: dict[str, Any]) -> None:
    once, _ = redact(entry["text"])
    assert redact(once) == (once, [])


# --- the contract of redact ----------------------------------------------------------------------


def test_each_kind_has_its_placeholder() -> None:
    text = (
        "Mail ana@example.com, call +49 30 1234567, card 4111 1111 1111 1111, "
        "IBAN DE89 3704 0044 0532 0130 00, host 203.0.113.9, password: hunter2x\n"
        "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg\n-----END EC PRIVATE KEY-----"
    )
    redacted, redactions = redact(text)
    assert redacted == (
        "Mail [EMAIL], call [PHONE], card [CARD], IBAN [IBAN], host [IP], password: [SECRET]\n"
        "[PRIVATE_KEY]"
    )
    assert [r.kind for r in redactions] == [
        "email",
        "phone",
        "card",
        "iban",
        "ip",
        "secret",
        "private_key",
    ]


def test_positions_refer_to_the_original_text_and_the_label_is_kept() -> None:
    text = "user: jdoe, password: hunter2x (new), and mail jdoe@example.com"
    redacted, redactions = redact(text)
    assert [text[r.start : r.end] for r in redactions] == ["hunter2x", "jdoe@example.com"]
    assert redacted == "user: jdoe, password: [SECRET] (new), and mail [EMAIL]"
    assert redactions == sorted(redactions, key=lambda r: r.start)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("password=S3cr3t!", "S3cr3t!"),
        ("passwd: letmein42.", "letmein42"),
        ('{"pwd": "a b c 1"}', "a b c 1"),
        ("secret: 9f8e7d6c5b4a", "9f8e7d6c5b4a"),
        ("token: t0k3nvalue&x=1", "t0k3nvalue"),
        ("api_key=AbCdEf123456", "AbCdEf123456"),
        ("apikey: zzz999yyy", "zzz999yyy"),
        ("Authorization: Bearer abc123def456ghi", "abc123def456ghi"),
        ("Bearer abc123def456ghi.", "abc123def456ghi"),
        ("id AKIAIOSFODNN7EXAMPLE here", "AKIAIOSFODNN7EXAMPLE"),
        ("ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"),
        ("xoxp-1234567890-abcdefghij", "xoxp-1234567890-abcdefghij"),
        ("key sk-abc123def456ghi789jkl", "sk-abc123def456ghi789jkl"),
        ("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."),
        ("redis://:s3cretRedis@cache:6379/0", "s3cretRedis"),
    ],
)
def test_a_secret_redaction_spans_exactly_the_value(text: str, value: str) -> None:
    _, redactions = redact(text, frozenset({"secret"}))
    assert [text[r.start : r.end] for r in redactions] == [value]


def test_the_kinds_filter_only_finds_those_kinds() -> None:
    text = "ana@example.com +49 30 1234567 203.0.113.9 password: hunter2x"
    redacted, redactions = redact(text, frozenset({"email", "ip"}))
    assert redacted == "[EMAIL] +49 30 1234567 [IP] password: hunter2x"
    assert {r.kind for r in redactions} == {"email", "ip"}
    assert redact(text, frozenset()) == (text, [])
    assert {r.kind for r in redact(text, None)[1]} == {"email", "phone", "ip", "secret"}


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="ssn"):
        redact("text", frozenset({"email", "ssn"}))


def test_overlapping_findings_keep_the_earliest_then_longest() -> None:
    # The IPv6 address starts before the IPv4 address it embeds.
    text = "from ::ffff:192.0.2.128 today"
    assert redact(text)[0] == "from [IP] today"
    assert len(redact(text)[1]) == 1
    # The secret value ends at the space; the card starting at the same place is longer.
    text = "password=4111 1111 1111 1111"
    assert redact(text)[0] == "password=[CARD]"
    # The same span found as a label value and as a key shape is one redaction.
    text = "api_key=AKIAIOSFODNN7EXAMPLE"
    assert [r.as_dict() for r in redact(text)[1]] == [{"kind": "secret", "start": 8, "end": 28}]
    # Everything inside a private-key block is part of the block.
    text = "-----BEGIN PRIVATE KEY-----\nana@example.com 10.0.0.1\n-----END PRIVATE KEY----- ok"
    assert redact(text)[0] == "[PRIVATE_KEY] ok"
    assert [r.kind for r in redact(text, frozenset({"ip", "email"}))[1]] == ["email", "ip"]


def test_the_password_of_a_url_is_a_secret_not_an_email() -> None:
    text = "jdbc postgres://hive:Pg1234@db.example.com:5432/metastore"
    assert redact(text)[0] == "jdbc postgres://hive:[SECRET]@db.example.com:5432/metastore"


@pytest.mark.parametrize(
    ("valid", "invalid"),
    [
        ("4111 1111 1111 1111", "4111 1111 1111 1112"),
        ("5500-0000-0000-0004", "5500-0000-0000-0040"),
        ("378282246310005", "378282246310050"),
        ("6011111111111117", "6011111111111171"),
        ("4222222222222", "4222222222220"),
        ("3782 822463 10005", "3782 822463 10006"),
    ],
)
def test_only_luhn_valid_numbers_are_cards(valid: str, invalid: str) -> None:
    assert _luhn(valid.replace(" ", "").replace("-", ""))
    assert not _luhn(invalid.replace(" ", "").replace("-", ""))
    assert redact(f"card {valid} declined") == (
        "card [CARD] declined",
        [Redaction("card", 5, 5 + len(valid))],
    )
    assert redact(f"card {invalid} declined") == (f"card {invalid} declined", [])


@pytest.mark.parametrize(
    "number",
    [
        "1000000000009",  # no network starts with 1
        "7000000000000005",  # nor with 7
        "9000000000000001",  # nor with 9
        "2220000000000000",  # Mastercard's 2-series starts at 2221
        "2021093012346",  # a date-prefixed ticket id
        "4123456789012345678908",  # too long for any card
    ],
)
def test_luhn_valid_numbers_outside_the_card_networks_are_not_cards(number: str) -> None:
    assert _luhn(number)  # so that only the network prefix and length can refuse it
    assert redact(f"id {number}", frozenset({"card"}))[1] == []


@pytest.mark.parametrize(
    ("valid", "invalid"),
    [
        ("DE89 3704 0044 0532 0130 00", "DE89 3704 0044 0532 0130 01"),
        ("DE89370400440532013000", "DE98370400440532013000"),
        ("GB29 NWBK 6016 1331 9268 19", "GB29 NWBK 6016 1331 9268 91"),
        ("FR14 2004 1010 0505 0001 3M02 606", "FR14 2004 1010 0505 0001 3N02 606"),
        ("be68 5390 0754 7034", "be68 5390 0754 7043"),
    ],
)
def test_only_mod97_valid_ibans_are_ibans(valid: str, invalid: str) -> None:
    assert redact(f"IBAN {valid}.") == ("IBAN [IBAN].", [Redaction("iban", 5, 5 + len(valid))])
    assert redact(f"IBAN {invalid}.", frozenset({"iban"})) == (f"IBAN {invalid}.", [])


def test_an_iban_must_have_its_countrys_length() -> None:
    # A valid German IBAN with one more digit is no longer a German IBAN.
    assert redact("DE89 3704 0044 0532 0130 001", frozenset({"iban"}))[1] == []


@pytest.mark.parametrize(
    ("text", "is_ip"),
    [
        ("host 10.0.0.1", True),
        ("Hadoop 3.3.1.2 release", True),  # documented: a dotted quad of 0-255 parts is an IP
        ("Hadoop 3.3.1 release", False),
        ("build 10.0.19041.1237", False),
        ("singledispatch-3.4.0.3-py2.whl", False),  # glued to a word by a dash
        ("range 10.0.0.1-10.0.0.254", True),
        ("addr 256.1.1.1", False),
        ("oid 1.3.6.1.4.1", False),
        ("host 2001:db8::1", True),
        ("slice a[1::2]", False),
        ("at 10:30:45", False),
    ],
)
def test_what_is_an_ip_address(text: str, is_ip: bool) -> None:
    assert bool(redact(text)[1]) is is_ip


@pytest.mark.parametrize(
    "text",
    [
        "upgraded to 2.9.2 yesterday",
        "since 2021-09-30 10:15:30,123",
        "on 30.09.2021 at 08:15",
        "listening on localhost:8080 and port 50070",
        "Job_1633027200_0001 failed",
        "see HADOOP-12345 and YARN-10234",
        "at org.apache.Foo.bar(Foo.java:1234)",
        'File "/opt/app/job.py", line 142, in run',
        "request 550e8400-e29b-41d4-a716-446655440000",
        "took 12345678 ms",
        "Tel: 12-34-56",  # fewer than 8 digits, even after a phone word
        "score +1 23 45 6",
    ],
)
def test_numbers_that_are_not_phone_numbers(text: str) -> None:
    assert redact(text)[1] == []


def test_a_truncated_private_key_is_redacted_to_the_end() -> None:
    text = "key:\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5v"
    assert redact(text) == ("key:\n[PRIVATE_KEY]", [Redaction("private_key", 5, len(text))])


def test_empty_text() -> None:
    assert redact("") == ("", [])


def test_a_redaction_never_holds_the_value() -> None:
    text = "password: hunter2x and ana@example.com"
    _, redactions = redact(text)
    assert [f.name for f in dataclasses.fields(Redaction)] == ["kind", "start", "end"]
    for r in redactions:
        for value in ("hunter2x", "ana@example.com"):
            assert value not in repr(r)
            assert value not in json.dumps(r.as_dict())
    assert redactions[0].as_dict() == {"kind": "secret", "start": 10, "end": 18}


def _pathological_inputs() -> dict[str, str]:
    size = 64 * 1024
    fragments = ("1", "2 ", "3-", "4.", "5/", "+6", "(7)", "a@a.a", "a@", ".a", ":", "::", "DE89 ")
    mixed = "".join(fragments[(i * 7 + i // 3) % len(fragments)] for i in range(size))
    return {
        "mixed": mixed[:size],
        "digit-space": ("1 " * size)[:size],
        "digit-space-letter": ("1 " * size)[: size - 1] + "x",
        "digit-dot": ("1." * size)[:size],
        "email-fragments": ("a@a.a" * size)[:size],
        "email-dots": "a@" + ("a." * size)[: size - 2],
        "hex-colons": ("a1:" * size)[:size],
        "labels": ("password=" * size)[:size],
        "qualified-labels": ("password for a b c " * size)[:size],
        "mysql-flags": ("mysql -" * size)[:size],
        "begin-markers": ("-----BEGIN RSA PRIVATE KEY-----" * size)[:size],
    }


@pytest.mark.parametrize("name", list(_pathological_inputs()))
def test_a_64_kib_pathological_text_completes(name: str) -> None:
    # No timing assertion (bench/pii.py measures); a catastrophic backtrack would hang here.
    text = _pathological_inputs()[name]
    assert len(text) == 64 * 1024
    redacted, redactions = redact(text)
    assert all(a.end <= b.start for a, b in itertools.pairwise(redactions))
    assert len(redacted) <= len(text) + 16 * len(redactions)

"""PII detection and redaction: each detector, the hard negatives, and the quality floor."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import luhn

from anarq.qmask import pii
from anarq.qmask.pii import corpus

KEY = b"k" * 32


def types_in(text: str) -> list[tuple[str, str]]:
    return [(e.type, e.text) for e in pii.detect(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail ana.smith@example.org today", [("EMAIL", "ana.smith@example.org")]),
        ("Call me at (212) 736-5000.", [("PHONE", "(212) 736-5000")]),
        ("ring +44 20 7946 0958 now", [("PHONE", "+44 20 7946 0958")]),
        ("card 4111 1111 1111 1111 exp 09/27", [("CREDIT_CARD", "4111 1111 1111 1111")]),
        ("IBAN DE89 3704 0044 0532 0130 00 please", [("IBAN", "DE89 3704 0044 0532 0130 00")]),
        ("login from 203.0.113.7 at night", [("IP_ADDRESS", "203.0.113.7")]),
        ("from 2001:db8::8a2e:370:7334 too", [("IP_ADDRESS", "2001:db8::8a2e:370:7334")]),
        ("She was born on 14 March 1985.", [("DATE_OF_BIRTH", "14 March 1985")]),
        ("DOB: 1985-03-14", [("DATE_OF_BIRTH", "1985-03-14")]),
        ("postgres://app:s3cr3t@db.example.com/x", [("URL_CREDENTIALS", "app:s3cr3t")]),
        (
            "tip 1NEDqZPvTWRaoho48qXuLLsrYomMXPABfD thanks",
            [("CRYPTO_ADDRESS", "1NEDqZPvTWRaoho48qXuLLsrYomMXPABfD")],
        ),
        ("SSN 536-90-4399 on file", [("US_SSN", "536-90-4399")]),
        ("DNI 12345678Z verificado", [("ES_DNI", "12345678Z")]),
        ("BSN 111222333.", [("NL_BSN", "111222333")]),
    ],
)
def test_each_detector_finds_its_kind(text: str, expected: list[tuple[str, str]]) -> None:
    assert types_in(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Order 4111 1111 1111 1112 has shipped.",  # fails Luhn
        "Upgrade to version 1.2.3.4 tonight.",
        "Firmware v10.0.0.1 is out.",
        "Ticket 011-215-1846 is closed.",  # no area code starts with 0
        "Meeting on 2021-03-04 at 10:45:30.",  # a date, but nobody's birth
        "Use icon@2x.png for retina screens.",
        "see https://social.example/@alice and ssh://git@code.example.org/x.git",
        "Old account DE00 3704 0044 0532 0130 00 was closed.",  # wrong IBAN check
        "Case 000-12-3456 was filed.",  # no SSN area is 000
        "Ref 111222333 in the ledger.",  # a valid BSN checksum, but nothing says BSN
        "Budget is 1,250,000 and coordinates 48.8566, 2.3522.",
        "999.1.2.3 is no address",
    ],
)
def test_hard_negatives_are_not_personal_data(text: str) -> None:
    assert types_in(text) == []


def luhn_card(body: str) -> str:
    return body + luhn.calc_check_digit(body)


@given(st.text(alphabet="0123456789", min_size=14, max_size=14), st.sampled_from([" ", "-", ""]))
@settings(max_examples=200, deadline=None)
def test_any_luhn_valid_card_is_found_and_one_changed_digit_is_not(
    digits: str, separator: str
) -> None:
    card = luhn_card("4" + digits)
    printed = separator.join(card[i : i + 4] for i in range(0, 16, 4))
    assert types_in(f"paid with {printed} yesterday") == [("CREDIT_CARD", printed)]
    position = random.Random(digits).randrange(1, 16)
    changed = card[:position] + str((int(card[position]) + 1) % 10) + card[position + 1 :]
    assert not luhn.is_valid(changed)
    printed = separator.join(changed[i : i + 4] for i in range(0, 16, 4))
    assert "CREDIT_CARD" not in [kind for kind, _ in types_in(f"paid with {printed} yesterday")]


@given(st.ip_addresses(v=4))
@settings(max_examples=100, deadline=None)
def test_every_ipv4_address_is_found_unless_it_is_a_version(address: object) -> None:
    assert types_in(f"request from {address} was blocked") == [("IP_ADDRESS", str(address))]
    assert types_in(f"upgrade to version {address} now") == []


@given(st.text(max_size=300))
@settings(max_examples=200, deadline=None)
def test_detect_never_fails_and_spans_are_ordered_and_disjoint(text: str) -> None:
    entities = pii.detect(text)
    for entity in entities:
        assert text[entity.start : entity.end] == entity.text
        assert 0 <= entity.score <= 1
    assert all(a.end <= b.start for a, b in itertools.pairwise(entities))


def test_redaction_modes() -> None:
    text = "Mail ana@example.org or call (212) 736-5000; card 4111-1111-1111-1111."
    assert pii.redact(text).text == "Mail [EMAIL] or call [PHONE]; card [CREDIT_CARD]."
    assert pii.redact(text, mode="partial").text == (
        "Mail a***@example.org or call (***) ***-**00; card ****-****-****-1111."
    )
    hashed = pii.redact(text, mode="hash", key=KEY).text
    assert hashed.startswith("Mail [EMAIL:") and "ana@" not in hashed


def test_hash_mode_reads_one_value_alike_in_any_spelling_and_needs_a_key() -> None:
    one = pii.redact("call (212) 736-5000", mode="hash", key=KEY).text
    other = pii.redact("call 212.736.5000", mode="hash", key=KEY).text
    assert one.split()[-1] == other.split()[-1]
    assert pii.redact("call 212.736.5000", mode="hash", key=b"x" * 32).text != other
    with pytest.raises(ValueError, match="key"):
        pii.redact("call 212.736.5000", mode="hash")


def test_types_filter_and_unknown_types() -> None:
    text = "ana@example.org, 203.0.113.7"
    assert [e.type for e in pii.detect(text, types=["IP_ADDRESS"])] == ["IP_ADDRESS"]
    with pytest.raises(ValueError, match="unknown"):
        pii.detect(text, types=["SHOE_SIZE"])


def test_generated_corpus_is_deterministic_and_labelled() -> None:
    first, again = corpus.generate(50, seed=3), corpus.generate(50, seed=3)
    assert first == again and first != corpus.generate(50, seed=4)
    for sample in first:
        for _, start, end in sample.spans:
            assert 0 <= start < end <= len(sample.text)


def test_quality_floor_on_the_generated_corpus() -> None:
    """A quality floor, not a timing: precision and recall ≥ 0.95 overall and per type."""
    samples = corpus.generate(2000, seed=2026)
    tallies = corpus.evaluate(samples, [pii.detect(s.text) for s in samples])
    overall = tallies["overall"]
    assert overall.precision >= 0.95 and overall.recall >= 0.95, overall
    for kind in pii.ENTITY_TYPES:
        assert tallies[kind].precision >= 0.9 and tallies[kind].recall >= 0.9, (kind, tallies[kind])

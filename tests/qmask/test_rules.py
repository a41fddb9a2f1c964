"""Profile rules on JSON records, and the generalizations they share with k-anonymity."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anarq.qlock import SigningKey, open_sealed, seal
from anarq.qmask import rules
from anarq.qmask.generalize import number_range
from anarq.qmask.rules import Keys, Rule, RuleInvalid, apply_rules, parse_rule

ALICE = Keys(b"a" * 32)
BOB = Keys(b"b" * 32)


def masked(record: object, *specs: str, keys: Keys = ALICE) -> object:
    return apply_rules(record, [parse_rule(spec) for spec in specs], keys)


def test_remove_and_redact() -> None:
    record = {"name": "Ana", "ssn": "536-90-4399", "notes": "mail ana@example.org"}
    assert masked(record, "ssn=remove", "name=redact", "notes=redact:pii") == {
        "name": "[REDACTED]",
        "notes": "mail [EMAIL]",
    }
    assert record["ssn"] == "536-90-4399", "the input is not changed"


def test_paths_reach_into_objects_and_lists() -> None:
    record = {
        "contact": {"email": "ana@example.org", "city": "Lyon"},
        "visits": [{"ip": "203.0.113.7", "at": "2024-03-05"}, {"ip": "198.51.100.1"}],
        "tags": ["a", "b"],
    }
    assert masked(record, "contact.email=remove", "visits.*.ip=remove", "tags.*=remove") == {
        "contact": {"city": "Lyon"},
        "visits": [{"at": "2024-03-05"}, {}],
        "tags": [],
    }


def test_absent_fields_are_left_alone() -> None:
    assert masked({"a": 1}, "b.c=remove", "a.x=redact") == {"a": 1}


def test_generalize_dates_numbers_and_strings() -> None:
    record = {"born": "1985-03-14", "seen": "2024-03-05T10:00:00+00:00", "age": 37, "zip": "75011"}
    assert masked(
        record, "born=generalize:year", "seen=generalize", "age=generalize:10", "zip=generalize:3"
    ) == {"born": "1985", "seen": "2024-03", "age": "30-39", "zip": "750**"}
    assert masked({"w": 72.5}, "w=generalize:5") == {"w": "[70,75)"}


def test_pseudonyms_are_stable_per_owner_and_differ_across_owners() -> None:
    record = {"email": "ana@example.org"}
    first = masked(record, "email=pseudonym")
    assert first == masked(record, "email=pseudonym")
    assert first != masked(record, "email=pseudonym", keys=BOB)
    assert masked({"email": "ben@example.org"}, "email=pseudonym") != first
    assert str(first["email"]).startswith(rules.PSEUDONYM_PREFIX)  # type: ignore[index]


@given(st.recursive(st.none() | st.integers() | st.text(max_size=20), st.lists, max_leaves=8))
@settings(max_examples=100, deadline=None)
def test_pseudonyms_are_a_function_of_the_value(value: object) -> None:
    assert ALICE.pseudonym(value) == ALICE.pseudonym(value)
    assert ALICE.pseudonym(value) != BOB.pseudonym(value)


def test_encrypt_seals_to_the_owner() -> None:
    owner = SigningKey.generate(hybrid=False)
    reader = owner.verify_key.derive_recipient_key()
    keys = Keys(b"a" * 32, lambda data: seal(data, [reader]))
    out = apply_rules({"iban": "DE89370400440532013000"}, [Rule("iban", "encrypt")], keys)
    envelope = base64.b64decode(out["iban"])
    assert open_sealed(envelope, owner.derive_agreement_key()) == b'"DE89370400440532013000"'


@pytest.mark.parametrize(
    "text",
    [
        "email",
        "email=shred",
        "=remove",
        "a..b=remove",
        "email=remove:now",
        "age=generalize:-5",
        "age=generalize:wide",
        "notes=redact:all",
    ],
)
def test_bad_rules_are_refused(text: str) -> None:
    with pytest.raises(RuleInvalid):
        parse_rule(text)


@given(st.integers(0, 10**9), st.sampled_from([2, 5, 10, 100]))
@settings(max_examples=200, deadline=None)
def test_number_ranges_hold_their_value(value: int, width: int) -> None:
    low, high = (int(x) for x in number_range(value, width).split("-"))
    assert low <= value <= high and high - low == width - 1 and low % width == 0

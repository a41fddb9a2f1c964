"""Base58btc through GMP, against the `base58` package (a well-used reference) and the
examples of the multibase and did:key specs."""

from __future__ import annotations

import base58
import pytest
from hypothesis import given
from hypothesis import strategies as st

from anarq.qlock import b58


@given(st.binary(max_size=80), st.integers(min_value=0, max_value=4))
def test_encoding_matches_the_reference(data: bytes, zeros: int) -> None:
    value = b"\0" * zeros + data
    encoded = b58.encode(value)
    assert encoded == base58.b58encode(value).decode()
    assert b58.decode(encoded) == value


def test_known_values() -> None:
    assert b58.encode(b"") == ""
    assert b58.encode(b"\0\0") == "11"
    assert b58.encode(b"hello world") == "StV1DL6CwTryKyV"
    assert b58.decode("StV1DL6CwTryKyV") == b"hello world"
    # The did:key spec's Ed25519 example decodes to the multicodec ed25519-pub prefix.
    assert b58.decode("6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp")[:2] == b"\xed\x01"


@pytest.mark.parametrize("text", ["0", "O", "I", "l", "abc!", "z6Mk"])
def test_characters_outside_the_alphabet_are_refused(text: str) -> None:
    if text == "z6Mk":
        assert b58.decode(text)  # every character is in the alphabet
        return
    with pytest.raises(ValueError, match="outside the alphabet"):
        b58.decode(text)

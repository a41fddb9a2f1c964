"""Streams as a specification: every reader gets the plaintext back, in constant memory,
and any cut, swap, repeat, addition or flipped bit is refused with a typed error."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anarq.qlock import AgreementKey, WrongKey
from anarq.qlock import stream as stream_module
from anarq.qlock.conditions_errors import BadStream, StreamTruncated
from anarq.qlock.seal import AEAD_AES_256_GCM, AEAD_CHACHA20_POLY1305, TAG_BYTES
from anarq.qlock.stream import (
    STREAM_CHUNK_BYTES,
    STREAM_MAX_CHUNK_BYTES,
    STREAM_MIN_CHUNK_BYTES,
    decrypt_stream,
    default_stream_aead,
    encrypt_stream,
    encrypt_stream_part,
    read_stream_header,
    rewrap_stream_header,
    start_stream,
    stream_recipients,
)

# Small chunks make many-chunk streams cheap; the format is the same at any chunk size.
CHUNK = STREAM_MIN_CHUNK_BYTES
READERS = [AgreementKey.generate(hybrid=False) for _ in range(2)] + [
    AgreementKey.generate(hybrid=True) for _ in range(2)
]
OUTSIDER = AgreementKey.generate(hybrid=False)
QUICK = settings(max_examples=40, deadline=None)

readers = st.lists(st.sampled_from(READERS), min_size=1, max_size=3, unique_by=id)
# Sizes around the chunk boundaries, where STREAM has its edge cases, and some at random.
sizes = st.one_of(
    st.sampled_from([0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 7 * CHUNK, 7 * CHUNK + 3]),
    st.integers(0, 40 * CHUNK),
)


def _pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    """`data` cut at the given offsets: the pieces a network or a file reader might give."""
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def _stream(plaintext: bytes, reader: AgreementKey = READERS[0]) -> tuple[bytes, list[bytes]]:
    """Header and the list of ciphertext chunks, as they are on the wire."""
    header, *chunks = encrypt_stream([plaintext], [reader.recipient_key], chunk_bytes=CHUNK)
    return header, chunks


def _decrypt(parts: list[bytes], reader: AgreementKey = READERS[0]) -> bytes:
    return b"".join(decrypt_stream(parts, reader))


# --- round trips ----------------------------------------------------------------------------


@QUICK
@given(
    size=sizes,
    chosen=readers,
    plain_cuts=st.lists(st.integers(0, 10**6), max_size=8),
    wire_cuts=st.lists(st.integers(0, 10**6), max_size=8),
)
def test_every_reader_decrypts_what_was_streamed_whatever_the_pieces(
    size: int,
    chosen: list[AgreementKey],
    plain_cuts: list[int],
    wire_cuts: list[int],
) -> None:
    plaintext = os.urandom(size)
    recipients = [reader.recipient_key for reader in chosen]

    wire = b"".join(encrypt_stream(_pieces(plaintext, plain_cuts), recipients, chunk_bytes=CHUNK))

    for reader in chosen:
        assert b"".join(decrypt_stream(_pieces(wire, wire_cuts), reader)) == plaintext


@pytest.mark.parametrize(
    "size",
    [
        0,
        1,
        STREAM_CHUNK_BYTES - 1,
        STREAM_CHUNK_BYTES,
        STREAM_CHUNK_BYTES + 1,
        3 * STREAM_CHUNK_BYTES,
    ],
)
def test_default_chunk_size_round_trips_at_its_boundaries(size: int) -> None:
    plaintext = os.urandom(size)

    parts = list(encrypt_stream([plaintext], [READERS[2].recipient_key]))

    chunks = max(1, -(-size // STREAM_CHUNK_BYTES))
    assert len(parts) == 1 + chunks
    assert all(len(part) == STREAM_CHUNK_BYTES + TAG_BYTES for part in parts[1:-1])
    assert _decrypt(parts, READERS[2]) == plaintext


def _refilled(data: bytes, piece_bytes: int) -> Iterator[bytearray]:
    """`data` through one reused buffer, as a file read with `readinto` gives it."""
    buffer = bytearray(piece_bytes)
    for start in range(0, len(data), piece_bytes):
        piece = data[start : start + piece_bytes]
        if len(piece) < piece_bytes:
            yield bytearray(piece)
            return
        buffer[:] = piece
        yield buffer


@pytest.mark.parametrize("piece_bytes", [CHUNK, CHUNK + TAG_BYTES, 3 * CHUNK, 17])
def test_a_source_that_reuses_its_buffer_round_trips(piece_bytes: int) -> None:
    plaintext = os.urandom(9 * CHUNK)

    wire = b"".join(
        encrypt_stream(
            _refilled(plaintext, piece_bytes), [READERS[0].recipient_key], chunk_bytes=CHUNK
        )
    )

    assert b"".join(decrypt_stream(_refilled(wire, piece_bytes), READERS[0])) == plaintext


@pytest.mark.parametrize("aligned", [CHUNK, 2 * CHUNK])
def test_pieces_aligned_on_chunks_round_trip(aligned: int) -> None:
    plaintext = os.urandom(6 * CHUNK)
    pieces = [plaintext[i : i + aligned] for i in range(0, len(plaintext), aligned)]

    parts = list(encrypt_stream(pieces, [READERS[0].recipient_key], chunk_bytes=CHUNK))

    assert len(parts) == 1 + 6
    assert _decrypt(parts) == plaintext


def test_decryption_yields_one_plaintext_chunk_per_ciphertext_chunk() -> None:
    plaintext = os.urandom(5 * CHUNK + 10)
    header, chunks = _stream(plaintext)

    yielded = list(decrypt_stream([header, *chunks], READERS[0]))

    assert [len(piece) for piece in yielded] == [CHUNK] * 5 + [10]


@QUICK
@given(size=sizes, first=st.sampled_from(READERS), added=readers)
def test_rewrapped_header_lets_new_readers_decrypt_the_same_body(
    size: int, first: AgreementKey, added: list[AgreementKey]
) -> None:
    plaintext = os.urandom(size)
    wire = b"".join(encrypt_stream([plaintext], [first.recipient_key], chunk_bytes=CHUNK))
    header, body = read_stream_header([wire])

    shared = rewrap_stream_header(header, first, [reader.recipient_key for reader in added])

    body_bytes = b"".join(body)
    assert wire == header + body_bytes
    for reader in [first, *added]:
        assert _decrypt([shared, body_bytes], reader) == plaintext
    assert stream_recipients(shared)[0] == first.key_id
    assert set(stream_recipients(shared)) == {reader.key_id for reader in [first, *added]}


def test_only_a_reader_can_rewrap() -> None:
    header, _ = _stream(b"data")

    with pytest.raises(WrongKey):
        rewrap_stream_header(header, OUTSIDER, [OUTSIDER.recipient_key])


def test_a_non_reader_gets_wrong_key() -> None:
    header, chunks = _stream(b"data")

    with pytest.raises(WrongKey):
        _decrypt([header, *chunks], OUTSIDER)


def test_a_different_aad_is_refused() -> None:
    parts = list(encrypt_stream([b"data"], [READERS[0].recipient_key], aad=b"qdrive:file:1"))

    assert b"".join(decrypt_stream(parts, READERS[0], aad=b"qdrive:file:1")) == b"data"
    with pytest.raises(BadStream):
        b"".join(decrypt_stream(parts, READERS[0], aad=b"qdrive:file:2"))


def test_a_body_does_not_open_under_another_streams_header() -> None:
    _, chunks = _stream(b"a" * 300)
    other_header, _ = _stream(b"b" * 300)

    with pytest.raises(BadStream):
        _decrypt([other_header, *chunks])


# --- tampering ------------------------------------------------------------------------------

# 4 full chunks and a short final one: every position has neighbours on both sides.
PLAINTEXT = os.urandom(4 * CHUNK + 10)
HEADER, CHUNKS = _stream(PLAINTEXT)
BODY = b"".join(CHUNKS)
WIRE = HEADER + BODY


@settings(max_examples=200, deadline=None)
@given(bit=st.integers(0, 8 * len(BODY) - 1))
def test_any_bit_flip_in_any_chunk_is_refused(bit: int) -> None:
    flipped = bytearray(BODY)
    flipped[bit // 8] ^= 1 << (bit % 8)

    with pytest.raises(BadStream):
        _decrypt([HEADER, bytes(flipped)])


@settings(max_examples=200, deadline=None)
@given(bit=st.integers(0, 8 * len(HEADER) - 1))
def test_any_bit_flip_in_the_header_is_refused(bit: int) -> None:
    flipped = bytearray(HEADER)
    flipped[bit // 8] ^= 1 << (bit % 8)

    with pytest.raises((BadStream, WrongKey)):  # a flipped key id no longer names the reader
        _decrypt([bytes(flipped), BODY])


@pytest.mark.parametrize("kept", range(1, len(CHUNKS)))
def test_dropping_the_final_chunks_is_reported_as_truncation(kept: int) -> None:
    with pytest.raises(StreamTruncated):
        _decrypt([HEADER, *CHUNKS[:kept]])


def test_dropping_the_final_chunk_of_an_exact_multiple_is_reported_as_truncation() -> None:
    header, chunks = _stream(os.urandom(3 * CHUNK))

    with pytest.raises(StreamTruncated):
        _decrypt([header, *chunks[:-1]])


def test_a_header_without_chunks_is_truncated() -> None:
    with pytest.raises(StreamTruncated):
        _decrypt([HEADER])


def test_the_consumer_gets_the_chunks_before_a_truncation_then_the_error() -> None:
    received: list[bytes] = []

    with pytest.raises(StreamTruncated):
        received.extend(decrypt_stream([HEADER, *CHUNKS[:-1]], READERS[0]))

    assert received == [PLAINTEXT[i * CHUNK : (i + 1) * CHUNK] for i in range(3)]


@pytest.mark.parametrize("dropped", range(len(CHUNKS) - 1))
def test_dropping_a_middle_chunk_is_refused(dropped: int) -> None:
    with pytest.raises(BadStream):
        _decrypt([HEADER, *CHUNKS[:dropped], *CHUNKS[dropped + 1 :]])


@pytest.mark.parametrize(
    ("i", "j"), [(i, j) for i in range(len(CHUNKS)) for j in range(i + 1, len(CHUNKS))]
)
def test_swapping_two_chunks_is_refused(i: int, j: int) -> None:
    swapped = list(CHUNKS)
    swapped[i], swapped[j] = swapped[j], swapped[i]

    with pytest.raises(BadStream):
        _decrypt([HEADER, *swapped])


@pytest.mark.parametrize("repeated", range(len(CHUNKS)))
def test_duplicating_a_chunk_is_refused(repeated: int) -> None:
    doubled = [*CHUNKS[: repeated + 1], CHUNKS[repeated], *CHUNKS[repeated + 1 :]]

    with pytest.raises(BadStream):
        _decrypt([HEADER, *doubled])


@pytest.mark.parametrize(
    "extra",
    [CHUNKS[0], CHUNKS[-1], b"\x00", os.urandom(CHUNK + TAG_BYTES)],
    ids=["first chunk", "final chunk", "one byte", "random chunk"],
)
def test_appending_after_the_final_chunk_is_refused(extra: bytes) -> None:
    with pytest.raises(BadStream):
        _decrypt([HEADER, *CHUNKS, extra])


def test_appending_after_a_full_final_chunk_is_refused() -> None:
    header, chunks = _stream(os.urandom(2 * CHUNK))

    with pytest.raises(BadStream):
        _decrypt([header, *chunks, chunks[0]])


@pytest.mark.parametrize("length", range(len(BODY)))
def test_cutting_the_body_anywhere_is_refused(length: int) -> None:
    with pytest.raises(BadStream):
        _decrypt([HEADER, BODY[:length]])


@pytest.mark.parametrize("length", range(0, len(HEADER), 7))
def test_cutting_the_header_is_truncation(length: int) -> None:
    with pytest.raises(StreamTruncated):
        _decrypt([WIRE[:length]])


# --- limits and inputs ----------------------------------------------------------------------


@pytest.mark.parametrize("chunk_bytes", [0, STREAM_MIN_CHUNK_BYTES - 1, STREAM_MAX_CHUNK_BYTES + 1])
def test_chunk_sizes_out_of_range_are_refused(chunk_bytes: int) -> None:
    with pytest.raises(BadStream):
        encrypt_stream([b""], [READERS[0].recipient_key], chunk_bytes=chunk_bytes)


def test_a_stream_needs_a_recipient_and_says_so_at_once() -> None:
    with pytest.raises(BadStream):
        encrypt_stream([b"data"], [])


def test_pieces_must_be_bytes() -> None:
    with pytest.raises(TypeError):
        list(encrypt_stream(["text"], [READERS[0].recipient_key]))  # type: ignore[list-item]


def test_a_sealed_envelope_is_not_a_stream() -> None:
    with pytest.raises(BadStream):
        _decrypt([b"QLSE" + bytes(64)])


# --- constant memory ------------------------------------------------------------------------

FIFTY_MIB = 50 * 1024 * 1024


def _source(block: bytes, total_bytes: int, piece_bytes: int) -> Iterator[bytes]:
    """`total_bytes` of plaintext, as views into one preallocated block (no new memory)."""
    view = memoryview(block)
    sent = 0
    while sent < total_bytes:
        size = min(piece_bytes, total_bytes - sent, len(block))
        yield view[:size]  # type: ignore[misc]
        sent += size


@pytest.mark.parametrize("piece_bytes", [STREAM_CHUNK_BYTES, 100_003], ids=["aligned", "odd"])
def test_fifty_mib_round_trips_in_bounded_memory(piece_bytes: int) -> None:
    block = os.urandom(128 * 1024)
    reader = READERS[0]
    expected, actual = hashlib.sha256(), hashlib.sha256()
    for piece in _source(block, FIFTY_MIB, piece_bytes):
        expected.update(piece)

    tracemalloc.start()
    try:
        wire = encrypt_stream(_source(block, FIFTY_MIB, piece_bytes), [reader.recipient_key])
        for plaintext in decrypt_stream(wire, reader):
            actual.update(plaintext)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert actual.digest() == expected.digest()
    assert peak_bytes < 1024 * 1024, f"peak {peak_bytes} bytes"


@given(
    sizes=st.lists(st.integers(min_value=1, max_value=4), min_size=0, max_size=4),
    tail=st.integers(min_value=0, max_value=200),
)
@settings(max_examples=40, deadline=None)
def test_a_stream_written_in_parts_reads_as_one(sizes: list[int], tail: int) -> None:
    from anarq.qlock import encrypt_stream_part, start_stream

    reader = AgreementKey.generate(hybrid=False)
    chunk = 64
    header = start_stream([reader.recipient_key], chunk_bytes=chunk)
    plaintext = os.urandom(sum(sizes) * chunk + tail)
    if not plaintext and sizes:
        return
    parts: list[bytes] = []
    offset = 0
    for n in sizes:
        piece = plaintext[offset : offset + n * chunk]
        parts += encrypt_stream_part(
            header, reader, piece, first_chunk=offset // chunk, final=False
        )
        offset += len(piece)
    if offset < len(plaintext) or not parts:
        rest = plaintext[offset:]
        parts += encrypt_stream_part(header, reader, rest, first_chunk=offset // chunk, final=True)
    else:
        # Everything went in whole-chunk parts: the stream still needs its final part.
        return
    assert b"".join(decrypt_stream([header, *parts], reader)) == plaintext
    if len(parts) > 1:
        with pytest.raises(BadStream):
            b"".join(decrypt_stream([header, *parts[:-2], parts[-1]], reader))


def test_parts_must_be_whole_chunks_until_the_last() -> None:
    from anarq.qlock import encrypt_stream_part, start_stream

    reader = AgreementKey.generate(hybrid=False)
    header = start_stream([reader.recipient_key], chunk_bytes=64)
    with pytest.raises(BadStream, match="whole number"):
        list(encrypt_stream_part(header, reader, b"x" * 65, first_chunk=0, final=False))
    with pytest.raises(BadStream, match="empty"):
        list(encrypt_stream_part(header, reader, b"", first_chunk=3, final=True))
    stranger = AgreementKey.generate(hybrid=False)
    with pytest.raises(WrongKey):
        list(encrypt_stream_part(header, stranger, b"x", first_chunk=0, final=True))


# Chunk AEADs ---------------------------------------------------------------------------

BOTH_AEADS = pytest.mark.parametrize(
    "aead", [AEAD_CHACHA20_POLY1305, AEAD_AES_256_GCM], ids=["chacha20-poly1305", "aes-256-gcm"]
)


@BOTH_AEADS
@QUICK
@given(size=sizes, cuts=st.lists(st.integers(0, 50 * CHUNK), max_size=6))
def test_each_chunk_aead_round_trips_whatever_the_pieces(
    aead: int, size: int, cuts: list[int]
) -> None:
    plaintext = os.urandom(size)
    stream = b"".join(
        encrypt_stream([plaintext], [READERS[2].recipient_key], chunk_bytes=CHUNK, aead=aead)
    )
    assert stream[5:7] == aead.to_bytes(2, "big")  # the header says which AEAD
    assert _decrypt(_pieces(stream, cuts), READERS[2]) == plaintext


@BOTH_AEADS
def test_each_chunk_aead_refuses_a_flipped_bit(aead: int) -> None:
    header, *chunks = encrypt_stream(
        [os.urandom(3 * CHUNK)], [READERS[0].recipient_key], chunk_bytes=CHUNK, aead=aead
    )
    flipped = bytearray(chunks[1])
    flipped[5] ^= 1
    with pytest.raises(BadStream):
        _decrypt([header, chunks[0], bytes(flipped), *chunks[2:]])


@BOTH_AEADS
def test_each_chunk_aead_writes_parts_that_read_as_one(aead: int) -> None:
    plaintext = os.urandom(5 * CHUNK + 9)
    header = start_stream([READERS[0].recipient_key], chunk_bytes=CHUNK, aead=aead)
    body = [
        *encrypt_stream_part(
            header, READERS[0], plaintext[: 2 * CHUNK], first_chunk=0, final=False
        ),
        *encrypt_stream_part(header, READERS[0], plaintext[2 * CHUNK :], first_chunk=2, final=True),
    ]
    assert _decrypt([header, *body]) == plaintext


def test_switching_the_recorded_aead_fails_the_header() -> None:
    stream = bytearray(
        b"".join(
            encrypt_stream(
                [b"data"], [READERS[0].recipient_key], chunk_bytes=CHUNK, aead=AEAD_AES_256_GCM
            )
        )
    )
    stream[5:7] = AEAD_CHACHA20_POLY1305.to_bytes(2, "big")
    with pytest.raises(BadStream):
        _decrypt([bytes(stream)])


def test_an_unknown_chunk_aead_is_refused() -> None:
    with pytest.raises(BadStream, match="AEAD"):
        start_stream([READERS[0].recipient_key], aead=0x0001)  # AES-128-GCM: not offered


@pytest.mark.parametrize(
    ("has_aes", "expected"), [(True, AEAD_AES_256_GCM), (False, AEAD_CHACHA20_POLY1305)]
)
def test_new_streams_use_aes_gcm_only_where_the_cpu_has_aes(
    monkeypatch: pytest.MonkeyPatch, has_aes: bool, expected: int
) -> None:
    monkeypatch.setattr(stream_module, "_cpu_has_aes", lambda: has_aes)
    assert default_stream_aead() == expected
    header = start_stream([READERS[0].recipient_key])
    assert header[5:7] == expected.to_bytes(2, "big")


VECTORS = json.loads((Path(__file__).parent / "stream_vectors.json").read_text())


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
@pytest.mark.parametrize("reader", sorted(VECTORS["readers"]))
def test_streams_written_before_aes_gcm_still_read(vector: dict[str, str], reader: str) -> None:
    key = AgreementKey.from_bytes(bytes.fromhex(VECTORS["readers"][reader]))
    stream = bytes.fromhex(vector["stream"])
    assert stream[5:7] == AEAD_CHACHA20_POLY1305.to_bytes(2, "big")
    opened = b"".join(decrypt_stream([stream], key, aad=bytes.fromhex(vector["aad"])))
    assert opened == bytes.fromhex(vector["plaintext"])

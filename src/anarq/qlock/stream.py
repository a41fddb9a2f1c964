"""Streaming encryption: data of any size in constant memory, one data key per object.

A stream is a header, then chunks. The header holds a random 32-byte data key sealed
(`seal.seal`, HPKE per reader) to every reader; sharing re-wraps the header and never
touches the body. The body is STREAM (Hoang-Reyhanitabar-Rogaway-Vizár 2015), as in age
and Tink: each chunk is sealed with one AEAD under one key — AES-256-GCM where the CPU has
AES instructions (constant time, and several times faster), ChaCha20-Poly1305 elsewhere;
the header records which, and readers take either — with the nonce

    nonce prefix (7) | chunk counter (4, big-endian) | last-chunk flag (1)

so a chunk authenticates only at its own position, and only the final chunk carries the
flag: dropping, reordering, duplicating or appending chunks, and cutting the stream short,
all fail authentication. Layout (v1, integers big-endian; `docs/formats.md` has the table):

    "QLST" | 0x01 | chunk AEAD id (2) | chunk_bytes (4) | salt (16) | L (4) | envelope (L)
    chunk 0 | chunk 1 | ... | final chunk        (each chunk_bytes + 16; the final one shorter)

chunk key || nonce prefix = HKDF-SHA256(data key, salt, "anarq/qlock/stream/v1/chunks", 39).
The envelope authenticates the header prefix (and the caller's `aad`) as its own aad, so
no header field can change without opening failing.

Crypto-shredding: the data key exists only inside the header's wrapped entries. Delete
every copy of the header and the body is noise, backups included — which is why callers
should keep headers (small, in the database) apart from bodies (large, in blob storage).
A reader who opened the stream before may have kept the key or the plaintext; shredding
protects against everyone else.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from itertools import chain
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from anarq.qlock.conditions_errors import BadStream, StreamTruncated
from anarq.qlock.errors import BadEnvelope
from anarq.qlock.keys import AgreementKey, RecipientKey
from anarq.qlock.seal import (
    AEAD_AES_256_GCM,
    AEAD_CHACHA20_POLY1305,
    DATA_KEY_BYTES,
    ENVELOPE_MAX_BYTES,
    SALT_BYTES,
    SEAL_MAX_AAD_BYTES,
    SEAL_MAX_PLAINTEXT_BYTES,
    TAG_BYTES,
    open_sealed,
    recipients_of,
    rewrap,
    seal,
)

STREAM_MAGIC: Final = b"QLST"
STREAM_VERSION: Final = 0x01
STREAM_CHUNK_BYTES: Final = 64 * 1024
STREAM_MIN_CHUNK_BYTES: Final = 64
# The decoder buffers about one chunk; a hostile header cannot make that more than this.
STREAM_MAX_CHUNK_BYTES: Final = 4 * 1024 * 1024
NONCE_PREFIX_BYTES: Final = 7
# The counter is 32 bits: 2^32 chunks of 64 KiB is 256 TiB per stream.
STREAM_MAX_CHUNKS: Final = 2**32

_PREFIX = struct.Struct(f">4sBHI{SALT_BYTES}s")  # magic, version, AEAD id, chunk_bytes, salt
_LENGTH = struct.Struct(">I")
_COUNTER = struct.Struct(">IB")  # chunk counter, last-chunk flag
# The envelope wraps only the 32-byte data key, so it is small whatever the reader count.
STREAM_ENVELOPE_MAX_BYTES: Final = ENVELOPE_MAX_BYTES - SEAL_MAX_PLAINTEXT_BYTES + DATA_KEY_BYTES
STREAM_HEADER_MAX_BYTES: Final = _PREFIX.size + _LENGTH.size + STREAM_ENVELOPE_MAX_BYTES
STREAM_MAX_AAD_BYTES: Final = SEAL_MAX_AAD_BYTES - _PREFIX.size
_CHUNKS_INFO = b"anarq/qlock/stream/v1/chunks"
_ChunkAEAD = ChaCha20Poly1305 | AESGCM
# Chunk AEADs by their HPKE registry id. Both take a 32-byte key and a 12-byte nonce and
# add a 16-byte tag, so the layout is the same whichever the header names.
_CHUNK_AEADS: Final[dict[int, type[_ChunkAEAD]]] = {
    AEAD_CHACHA20_POLY1305: ChaCha20Poly1305,
    AEAD_AES_256_GCM: AESGCM,
}


@dataclass(frozen=True, slots=True)
class _Header:
    prefix: bytes  # magic .. salt: the envelope's aad, so every field here is authenticated
    chunk_bytes: int
    envelope: bytes

    @property
    def aead_id(self) -> int:
        return int(_PREFIX.unpack(self.prefix)[2])

    def encode(self) -> bytes:
        return self.prefix + _LENGTH.pack(len(self.envelope)) + self.envelope


def encrypt_stream(
    chunks: Iterable[bytes],
    recipients: Sequence[RecipientKey],
    *,
    chunk_bytes: int = STREAM_CHUNK_BYTES,
    aad: bytes = b"",
    aead: int | None = None,
) -> Iterator[bytes]:
    """The header, then one ciphertext chunk at a time, for plaintext given in any pieces.

    Recipients and sizes are checked now, not at the first `next()`. `aad` is
    authenticated, not stored: readers must pass the same bytes. `aead` picks the chunk
    AEAD (`default_stream_aead()` if not given).
    """
    header, data_key = _new_header(recipients, chunk_bytes, aad, aead)
    return chain((header.encode(),), _encrypt_body(chunks, header, data_key))


def start_stream(
    recipients: Sequence[RecipientKey],
    *,
    chunk_bytes: int = STREAM_CHUNK_BYTES,
    aad: bytes = b"",
    aead: int | None = None,
) -> bytes:
    """A new stream's header alone; its body is written later, part by part, with
    `encrypt_stream_part` (by any process holding one of the readers' keys)."""
    header, _ = _new_header(recipients, chunk_bytes, aad, aead)
    return header.encode()


def default_stream_aead() -> int:
    """The chunk AEAD new streams get: AES-256-GCM where this CPU has AES and carry-less
    multiply instructions (x86-64 AES-NI and PCLMULQDQ, ARMv8 AES and PMULL), so it runs
    in constant time in hardware; ChaCha20-Poly1305 everywhere else."""
    return AEAD_AES_256_GCM if _cpu_has_aes() else AEAD_CHACHA20_POLY1305


def encrypt_stream_part(
    header_bytes: bytes,
    opener: AgreementKey,
    plaintext: bytes,
    *,
    first_chunk: int,
    final: bool,
    aad: bytes = b"",
) -> Iterator[bytes]:
    """Chunks `first_chunk`, `first_chunk + 1`, … of the stream `header_bytes` starts.

    Parts joined in order are exactly the body `encrypt_stream` would have written for
    the same plaintext and key. Every part but the final one is a whole, non-zero number
    of chunks; the final part ends the stream (an empty final part only for an empty
    stream).
    """
    _check_aad(aad)
    header = _parse_header(header_bytes)
    size = header.chunk_bytes
    if not final and (not plaintext or len(plaintext) % size):
        raise BadStream(f"a part before the final one is a whole number of {size}-byte chunks")
    if final and not plaintext and first_chunk:
        raise BadStream("only an empty stream ends with an empty part")
    if first_chunk < 0 or first_chunk + -(-len(plaintext) // size) > STREAM_MAX_CHUNKS:
        raise BadStream(f"a stream has at most {STREAM_MAX_CHUNKS} chunks")
    with _as_stream_error("stream header fails authentication: altered, or the aad differs"):
        data_key = open_sealed(header.envelope, opener, aad=header.prefix + aad)
    aead, nonce_prefix = _chunk_cipher(data_key, header)
    view = memoryview(plaintext)
    count = max(1, -(-len(plaintext) // size))
    for n in range(count):
        last = final and n == count - 1
        block = view[n * size : (n + 1) * size]
        yield aead.encrypt(nonce_prefix + _COUNTER.pack(first_chunk + n, last), block, None)


def decrypt_stream(
    chunks: Iterable[bytes], key: AgreementKey, *, aad: bytes = b""
) -> Iterator[bytes]:
    """Plaintext chunk by chunk, from a stream given in any pieces.

    Raises `WrongKey` if the stream is not for `key`, `BadStream` on any alteration, and
    `StreamTruncated` when it provably stops early. Plaintext is released before the end
    is checked: act on it only once the iterator finishes without raising.
    """
    _check_aad(aad)
    header_bytes, rest, pieces = _split_header(chunks)
    header = _parse_header(header_bytes)
    with _as_stream_error("stream header fails authentication: altered, or the aad differs"):
        data_key = open_sealed(header.envelope, key, aad=header.prefix + aad)
    if len(data_key) != DATA_KEY_BYTES:
        raise BadStream("stream header does not hold a data key")
    yield from _decrypt_body(chain((rest,), pieces), header, data_key)


def read_stream_header(chunks: Iterable[bytes]) -> tuple[bytes, Iterator[bytes]]:
    """Split a stream into its header bytes and the rest, reading no further than needed.

    Checks the header's shape (magic, version, sizes), not its authenticity.
    """
    header, rest, pieces = _split_header(chunks)
    return header, chain((bytes(rest),) if rest else (), pieces)


def rewrap_stream_header(
    header_bytes: bytes, opener: AgreementKey, new_recipients: Iterable[RecipientKey]
) -> bytes:
    """The same header, readable also by `new_recipients`; the body stays as it is.

    Only a current reader can add readers; those already present are skipped.
    """
    header = _parse_header(header_bytes)
    with _as_stream_error():
        envelope = rewrap(header.envelope, opener, new_recipients)
    return _Header(header.prefix, header.chunk_bytes, envelope).encode()


def stream_recipients(header_bytes: bytes) -> list[str]:
    """Key ids the data key is wrapped to. A hint: only opening authenticates it."""
    with _as_stream_error():
        return recipients_of(_parse_header(header_bytes).envelope)


# --- internals ------------------------------------------------------------------------------


def _new_header(
    recipients: Sequence[RecipientKey], chunk_bytes: int, aad: bytes, aead: int | None
) -> tuple[_Header, bytes]:
    """A header for a fresh data key, and the key."""
    if not STREAM_MIN_CHUNK_BYTES <= chunk_bytes <= STREAM_MAX_CHUNK_BYTES:
        raise BadStream(f"chunk_bytes must be {STREAM_MIN_CHUNK_BYTES}..{STREAM_MAX_CHUNK_BYTES}")
    _check_aad(aad)
    aead_id = default_stream_aead() if aead is None else aead
    if aead_id not in _CHUNK_AEADS:
        raise BadStream(f"unsupported chunk AEAD id {aead_id:#06x}")
    data_key = os.urandom(DATA_KEY_BYTES)
    prefix = _PREFIX.pack(
        STREAM_MAGIC, STREAM_VERSION, aead_id, chunk_bytes, os.urandom(SALT_BYTES)
    )
    with _as_stream_error():
        envelope = seal(data_key, recipients, aad=prefix + aad)
    return _Header(prefix, chunk_bytes, envelope), data_key


@cache
def _cpu_has_aes() -> bool:
    """Whether the CPU has AES and GCM's carry-less multiply in hardware (Linux only:
    elsewhere, and if /proc cannot be read, the answer is no and streams use ChaCha20)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            for line in info:
                name, _, value = line.partition(":")
                if name.strip() in ("flags", "Features"):
                    found = set(value.split())
                    return "aes" in found and bool(found & {"pclmulqdq", "pmull"})
    except OSError:
        return False
    return False


def _encrypt_body(chunks: Iterable[bytes], header: _Header, data_key: bytes) -> Iterator[bytes]:
    aead, nonce_prefix = _chunk_cipher(data_key, header)
    for index, (block, last) in enumerate(_blocks(chunks, header.chunk_bytes)):
        if index >= STREAM_MAX_CHUNKS:
            raise BadStream(f"a stream has at most {STREAM_MAX_CHUNKS} chunks")
        yield aead.encrypt(nonce_prefix + _COUNTER.pack(index, last), block, None)


def _decrypt_body(
    body: Iterable[bytes | memoryview], header: _Header, data_key: bytes
) -> Iterator[bytes]:
    aead, nonce_prefix = _chunk_cipher(data_key, header)
    full = header.chunk_bytes + TAG_BYTES
    for index, (block, last) in enumerate(_blocks(body, full)):
        if index >= STREAM_MAX_CHUNKS:
            raise BadStream(f"a stream has at most {STREAM_MAX_CHUNKS} chunks")
        if last:
            yield _final_chunk(aead, nonce_prefix, index, block, full)
        else:
            yield _middle_chunk(aead, nonce_prefix, index, block)


def _middle_chunk(
    aead: _ChunkAEAD, nonce_prefix: bytes, index: int, block: bytes | memoryview
) -> bytes:
    try:
        return aead.decrypt(nonce_prefix + _COUNTER.pack(index, False), block, None)
    except InvalidTag:
        raise BadStream(
            f"chunk {index} fails authentication: altered, moved, or not the last"
        ) from None


def _final_chunk(
    aead: _ChunkAEAD, nonce_prefix: bytes, index: int, block: bytes | memoryview, full: int
) -> bytes:
    if len(block) < TAG_BYTES:
        if index == 0 and not block:
            raise StreamTruncated("stream has a header but no chunks")
        raise StreamTruncated(f"stream ends inside chunk {index}")
    try:
        plaintext = aead.decrypt(nonce_prefix + _COUNTER.pack(index, True), block, None)
    except InvalidTag:
        if len(block) == full and _authenticates(
            aead, nonce_prefix + _COUNTER.pack(index, False), block
        ):
            raise StreamTruncated(
                f"stream ends after chunk {index}; its final chunk is missing"
            ) from None
        raise BadStream(f"final chunk {index} fails authentication: truncated or altered") from None
    if not plaintext and index > 0:
        # The writer never ends on an empty chunk after data, so there is one encoding only.
        raise BadStream(f"final chunk {index} is empty")
    return plaintext


def _authenticates(aead: _ChunkAEAD, nonce: bytes, block: bytes | memoryview) -> bool:
    try:
        aead.decrypt(nonce, block, None)
    except InvalidTag:
        return False
    return True


def _blocks(
    pieces: Iterable[bytes | memoryview], size: int
) -> Iterator[tuple[bytes | memoryview, bool]]:
    """Blocks of exactly `size` bytes from the pieces joined, each with "is it the last?".

    A block is known not to be last only once a byte after it has arrived, so one block
    is held back. The last block is 0..size bytes (0 only if there was no data at all).
    Bytes are copied only to join a block across pieces, or to hold one back from a piece
    the caller may reuse (a `bytearray` refilled by `readinto`); the rest are views.
    """
    partial = bytearray()  # a block still being assembled across pieces
    held: bytes | memoryview | None = None  # a whole block, waiting to learn if it is last
    for piece in pieces:
        view = _view(piece)
        start = 0
        if partial:
            start = min(size - len(partial), len(view))
            partial += view[:start]
            if len(partial) < size:
                continue
            held = bytes(partial)
            partial.clear()
        if start == len(view):
            continue
        if held is not None:
            yield held, False
            held = None
        while len(view) - start > size:
            yield view[start : start + size], False
            start += size
        tail = view[start:]
        if len(tail) < size:
            partial += tail
        else:
            held = tail if isinstance(piece, bytes) else bytes(tail)
    assert held is None or not partial
    yield (held if held is not None else bytes(partial)), True


def _chunk_cipher(data_key: bytes, header: _Header) -> tuple[_ChunkAEAD, bytes]:
    """The chunk AEAD the header names, keyed, and the nonce prefix. The derivation is the
    same for every AEAD: a data key is random per stream and serves one AEAD only."""
    salt = header.prefix[-SALT_BYTES:]
    okm = HKDF(hashes.SHA256(), DATA_KEY_BYTES + NONCE_PREFIX_BYTES, salt, _CHUNKS_INFO).derive(
        data_key
    )
    return _CHUNK_AEADS[header.aead_id](okm[:DATA_KEY_BYTES]), okm[DATA_KEY_BYTES:]


def _parse_header(header_bytes: bytes) -> _Header:
    """A header given whole (as `read_stream_header` returns it), refusing trailing bytes."""
    data = bytes(_view(header_bytes))
    if len(data) < _PREFIX.size + _LENGTH.size:
        raise BadStream("stream header is truncated")
    chunk_bytes = _check_prefix(data[: _PREFIX.size])
    (envelope_bytes,) = _LENGTH.unpack_from(data, _PREFIX.size)
    start = _PREFIX.size + _LENGTH.size
    if len(data) != start + envelope_bytes:
        raise BadStream("stream header length does not match its envelope length")
    return _Header(data[: _PREFIX.size], chunk_bytes, data[start:])


def _check_prefix(prefix: bytes) -> int:
    """The chunk size, if the fixed header fields are ones this version writes."""
    magic, version, aead_id, chunk_bytes, _salt = _PREFIX.unpack(prefix)
    if magic != STREAM_MAGIC:
        raise BadStream("not a qlock stream (bad magic)")
    if version != STREAM_VERSION:
        raise BadStream(f"unsupported stream version {version}")
    if aead_id not in _CHUNK_AEADS:
        raise BadStream(f"unsupported chunk AEAD id {aead_id:#06x}")
    if not STREAM_MIN_CHUNK_BYTES <= chunk_bytes <= STREAM_MAX_CHUNK_BYTES:
        raise BadStream(f"chunk size {chunk_bytes} is outside the accepted range")
    return int(chunk_bytes)


def _check_aad(aad: bytes) -> None:
    if len(aad) > STREAM_MAX_AAD_BYTES:
        raise BadStream(f"aad over {STREAM_MAX_AAD_BYTES} bytes")


def _split_header(chunks: Iterable[bytes]) -> tuple[bytes, memoryview, Iterator[bytes]]:
    """Header bytes, what is left of the piece it ended in, and the pieces after that."""
    pieces = iter(chunks)
    pending = bytearray()
    rest = _fill(pending, memoryview(b""), pieces, _PREFIX.size + _LENGTH.size)
    _check_prefix(bytes(pending[: _PREFIX.size]))
    (envelope_bytes,) = _LENGTH.unpack_from(pending, _PREFIX.size)
    if envelope_bytes > STREAM_ENVELOPE_MAX_BYTES:
        raise BadStream(f"stream header over {STREAM_HEADER_MAX_BYTES} bytes")
    rest = _fill(pending, rest, pieces, _PREFIX.size + _LENGTH.size + envelope_bytes)
    return bytes(pending), rest, pieces


def _fill(pending: bytearray, rest: memoryview, pieces: Iterator[bytes], size: int) -> memoryview:
    """Move bytes into `pending` until it holds `size`; only what is needed is copied."""
    while len(pending) < size:
        if not rest:
            piece = next(pieces, None)
            if piece is None:
                raise StreamTruncated("stream ends inside its header")
            rest = _view(piece)
        taken = size - len(pending)
        pending += rest[:taken]
        rest = rest[taken:]
    return rest


def _view(piece: bytes | memoryview) -> memoryview:
    """A byte view of one piece; other objects are refused rather than guessed at."""
    if not isinstance(piece, bytes | bytearray | memoryview):
        raise TypeError(f"stream pieces are bytes, not {type(piece).__name__}")
    return memoryview(piece).cast("B")


@contextmanager
def _as_stream_error(detail: str | None = None) -> Iterator[None]:
    """Envelope refusals surface as `BadStream` (a `BadEnvelope`); `WrongKey` stays itself."""
    try:
        yield
    except BadStream:
        raise
    except BadEnvelope as exc:
        raise BadStream(detail or exc.detail) from None

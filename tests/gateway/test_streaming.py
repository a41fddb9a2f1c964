"""Streamed bodies from blocking iterators: every chunk, in order, a batch per thread hop."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from anarq.gateway.streaming import in_batches


async def collect(chunks: Iterator[bytes], batch_bytes: int) -> list[bytes]:
    return [chunk async for chunk in in_batches(chunks, batch_bytes=batch_bytes)]


async def test_every_chunk_comes_through_in_order() -> None:
    chunks = [bytes([n]) * (n + 1) for n in range(50)]
    assert await collect(iter(chunks), batch_bytes=64) == chunks


async def test_an_empty_iterator_is_an_empty_body() -> None:
    assert await collect(iter([]), batch_bytes=64) == []


async def test_a_batch_stops_at_its_byte_budget() -> None:
    pulled: list[int] = []

    def source() -> Iterator[bytes]:
        for n in range(10):
            pulled.append(n)
            yield b"x" * 10

    stream = in_batches(source(), batch_bytes=25)
    assert await anext(stream) == b"x" * 10
    assert pulled == [0, 1, 2]  # one hop fetched 30 bytes, then stopped


async def test_an_error_ends_the_stream_without_the_rest_of_its_batch() -> None:
    def failing() -> Iterator[bytes]:
        yield b"first"
        raise ValueError("does not match its content identifier")

    received: list[bytes] = []
    with pytest.raises(ValueError, match="content identifier"):
        async for chunk in in_batches(failing(), batch_bytes=1024):
            received.append(chunk)
    assert received == []

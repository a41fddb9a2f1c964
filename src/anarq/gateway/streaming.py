"""Response bodies made by blocking code (blob reads, decryption), a batch per thread hop.

Starlette runs a plain iterator on the thread pool one item per hop; a file streamed in
256 KiB chunks then costs a hop per chunk, and the hops, not the bytes, set the pace.
`in_batches` fetches up to `STREAM_BATCH_BYTES` per hop and hands the chunks to the
event loop, which sends them as they are.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from starlette.concurrency import run_in_threadpool

# Bytes fetched per thread hop; also about what one streamed response holds in memory.
STREAM_BATCH_BYTES = 4 * 1024 * 1024


async def in_batches(
    chunks: Iterator[bytes], *, batch_bytes: int = STREAM_BATCH_BYTES
) -> AsyncIterator[bytes]:
    """The chunks of a blocking iterator, fetched on a worker thread a batch at a time.

    An error the iterator raises (a blob failing its CID check) ends the stream before
    the rest of that batch is sent.
    """
    assert batch_bytes > 0
    while batch := await run_in_threadpool(_take, chunks, batch_bytes):
        for chunk in batch:
            yield chunk


def _take(chunks: Iterator[bytes], batch_bytes: int) -> list[bytes]:
    batch: list[bytes] = []
    size = 0
    for chunk in chunks:
        batch.append(chunk)
        size += len(chunk)
        if size >= batch_bytes:
            break
    return batch

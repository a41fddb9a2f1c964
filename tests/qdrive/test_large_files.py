"""A file larger than 1 GiB goes up and comes back through a real node in constant memory."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from anarq.qdrive.cli import upload_stream
from anarq.qlock import SigningKey
from anarq.sdk import Client
from anarq.sdk.signing import RequestSigner
from tests.conftest import free_port
from tests.support.process import NodeProcess

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
GIB = 1024 * MIB
# Between a 128 MiB and a 1 GiB transfer the node's peak moves only by allocator
# high-water noise (measured: 10-40 MiB), not by anything proportional to the file
# (that would be 900 MiB more).
GROWTH_CEILING_MIB = 96
PEAK_CEILING_MIB = 384


def pseudo_random(size: int) -> Iterator[bytes]:
    """`size` bytes of a SHAKE-256 stream, 4 MiB at a time, never all in memory."""
    shake = hashlib.shake_256(b"anarq large file")
    block = shake.digest(4 * MIB)
    left = size
    counter = 0
    while left:
        # Vary each block cheaply so no two parts are alike (dedup must not help).
        counter += 1
        piece = (counter.to_bytes(8, "big") + block[8:])[:left]
        yield piece
        left -= len(piece)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def transfer(client: Client, path: str, size: int) -> None:
    """Upload `size` bytes to `path` and read them back, checking every byte."""
    stored = upload_stream(client, path, size, pseudo_random(size))
    assert stored["size"] == size
    expected = hashlib.sha256()
    for piece in pseudo_random(size):
        expected.update(piece)
    received = hashlib.sha256()
    count = 0
    with client.stream("GET", f"/qdrive/files/{stored['id']}/content") as response:
        for chunk in response.iter_bytes():
            received.update(chunk)
            count += len(chunk)
    assert count == size and received.digest() == expected.digest()


def test_more_than_a_gibibyte_in_constant_memory(tmp_path: Path) -> None:
    node = NodeProcess(
        free_port(),
        {"ANARQ_DATA_DIR": str(tmp_path / "data")},
        tmp_path / "node.log",
    )
    try:
        signer = RequestSigner.for_key(SigningKey.generate(hybrid=False))
        with Client(node.url, signer=signer, timeout_seconds=600) as client:
            public = base64.b64encode(signer.key.verify_key.to_bytes()).decode()
            client.request("POST", "/squid/identities", json={"name": "big", "public_key": public})
            # Warm every code path up with a smaller file, then take the peak so far.
            transfer(client, "/warm.bin", 128 * MIB + 5)
            warm_peak = peak_rss_mib(node.process.pid)
            transfer(client, "/huge.bin", GIB + 17)
        peak = peak_rss_mib(node.process.pid)
        print(f"node peak memory: {warm_peak:.0f} MiB after 128 MiB, {peak:.0f} MiB after 1 GiB")
        # Memory that grew with the data would show here as hundreds of MiB.
        assert peak - warm_peak < GROWTH_CEILING_MIB, (
            f"the node's peak grew from {warm_peak:.0f} MiB to {peak:.0f} MiB"
        )
        assert peak < PEAK_CEILING_MIB
    finally:
        node.stop()

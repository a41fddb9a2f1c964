"""Blobs in an S3 bucket as `<prefix><cid>`: spooled to local disk while hashed, then sent whole.

An S3 object appears only once its PUT (or multipart upload) completes, so readers never see half
a blob, and the CID is known before the upload starts, so duplicates are never sent.
"""

from __future__ import annotations

import functools
import hashlib
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from boto3.session import Session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from botocore.response import StreamingBody

from anarq.kernel.blobs import CHUNK_BYTES, BlobInfo
from anarq.kernel.blobs.cid import cid_for_digest, digest_of
from anarq.kernel.blobs.local import STALE_UPLOAD_SECONDS
from anarq.kernel.blobs.spool import TMP_SUFFIX, SpooledWriter
from anarq.kernel.errors import BackendUnavailable, BlobCorrupted, BlobNotFound, SettingsError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

URL_PARAMS = frozenset({"endpoint", "region", "access_key", "secret_key", "prefix"})

# Bounded parts and threads keep a multipart upload's memory at ~4 x 16 MiB whatever the blob size.
TRANSFER = TransferConfig(
    multipart_threshold=16 * 2**20, multipart_chunksize=16 * 2**20, max_concurrency=4
)


class S3Writer(SpooledWriter):
    def __init__(self, store: S3BlobStore, max_bytes: int | None) -> None:
        super().__init__(store.spool_dir, max_bytes)
        self._store = store

    def commit(self) -> BlobInfo:
        cid = cid_for_digest(self._spool.finish())
        try:
            if not self._store.exists(cid):  # same bytes already stored: dedup
                self._store.upload(self._spool.path, cid)
        finally:
            self._spool.discard()
        return BlobInfo(cid=cid, size_bytes=self._spool.size_bytes)


# One boto3 session per process: a new session loads the S3 service model again (about
# 0.1 s a store); clients made from a shared one take a few milliseconds. Credentials and
# region are each client's own.
_SESSION_LOCK = threading.Lock()


@functools.cache
def _session() -> Session:
    return Session()


class S3BlobStore:
    kind = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        endpoint: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        prefix: str = "",
        spool_dir: Path | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.where = f"S3 bucket {bucket!r}" + (f" at {endpoint}" if endpoint else "")
        self.spool_dir = spool_dir or Path(tempfile.gettempdir()) / "anarq-s3-spool"
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self._sweep_stale_spools()
        # Custom endpoints (SeaweedFS, MinIO) route path-style only; AWS prefers virtual hosts.
        config = Config(
            connect_timeout=5,
            read_timeout=60,
            retries={"mode": "standard", "total_max_attempts": 3},
            s3={"addressing_style": "path" if endpoint else "auto"},
            tcp_keepalive=True,
        )
        # A health check must answer fast, so no retries and a short connect wait.
        quick = Config(connect_timeout=2, read_timeout=5, retries={"total_max_attempts": 1})
        # Credentials left None fall through to boto3's chain: env, profile, instance role.
        with _SESSION_LOCK:  # making clients from one session is not thread-safe
            session = _session()
            self._client: S3Client = session.client(
                "s3",
                endpoint_url=endpoint,
                config=config,
                region_name=region,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
            )
            self._ping_client: S3Client = session.client(
                "s3",
                endpoint_url=endpoint,
                config=config.merge(quick),
                region_name=region,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
            )

    @classmethod
    def from_url(cls, url: str, spool_dir: str | None = None) -> S3BlobStore:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.hostname:
            raise SettingsError(f"S3 blob store URL needs the form s3://BUCKET?…, got {url!r}")
        params: dict[str, str] = {}
        # Split by hand rather than parse_qs: secret keys hold '+', which must not turn into ' '.
        for pair in filter(None, parts.query.split("&")):
            name, _, value = pair.partition("=")
            if name not in URL_PARAMS:
                raise SettingsError(f"unknown S3 blob store URL parameter {name!r}")
            params[name] = unquote(value)
        return cls(
            parts.netloc,
            endpoint=params.get("endpoint"),
            region=params.get("region"),
            access_key=params.get("access_key"),
            secret_key=params.get("secret_key"),
            prefix=params.get("prefix", ""),
            spool_dir=Path(spool_dir) if spool_dir else None,
        )

    def key_for(self, cid: str) -> str:
        digest_of(cid)  # rejects anything that is not a CID before it reaches a key
        return self.prefix + cid

    def writer(self, *, max_bytes: int | None = None) -> S3Writer:
        return S3Writer(self, max_bytes)

    def upload(self, path: Path, cid: str) -> None:
        with self._errors(cid):
            self._client.upload_file(str(path), self.bucket, self.key_for(cid), Config=TRANSFER)

    def open(self, cid: str) -> Iterator[bytes]:
        expected = digest_of(cid)
        with self._errors(cid):  # fetched now, so a missing blob fails here, not mid-stream
            body = self._client.get_object(Bucket=self.bucket, Key=self.key_for(cid))["Body"]
        return self._verified_chunks(body, expected, cid)

    def stat(self, cid: str) -> BlobInfo:
        with self._errors(cid):
            head = self._client.head_object(Bucket=self.bucket, Key=self.key_for(cid))
        return BlobInfo(cid=cid, size_bytes=head["ContentLength"])

    def exists(self, cid: str) -> bool:
        try:
            self.stat(cid)
        except BlobNotFound:
            return False
        return True

    def delete(self, cid: str) -> None:
        with self._errors(cid):
            self._client.delete_object(Bucket=self.bucket, Key=self.key_for(cid))

    def iter_cids(self) -> Iterator[str]:
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix, Delimiter="/"
        )
        with self._errors():
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"][len(self.prefix) :]

    def ping(self) -> None:
        with self._errors():
            self._ping_client.head_bucket(Bucket=self.bucket)

    def close(self) -> None:
        self._client.close()
        self._ping_client.close()

    @contextmanager
    def _errors(self, cid: str | None = None) -> Iterator[None]:
        """Turn botocore's failures into the node's: a missing blob, or an unusable backend."""
        try:
            yield
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            # HEAD answers carry no error code, so a 404 there cannot tell key from bucket.
            if status == 404 and cid is not None and code != "NoSuchBucket":
                raise BlobNotFound(f"no blob {cid}") from None
            if status == 404:
                raise BackendUnavailable(f"{self.where} does not exist") from exc
            named = f" {code}" if code and code != str(status) else ""
            raise BackendUnavailable(f"{self.where} refused: HTTP {status}{named}") from exc
        except S3UploadFailedError as exc:  # boto3 wraps the ClientError of a failed upload
            raise BackendUnavailable(f"{self.where}: upload failed: {exc}") from exc
        except NoCredentialsError as exc:
            raise BackendUnavailable(f"{self.where}: no S3 credentials configured") from exc
        except BotoCoreError as exc:
            raise BackendUnavailable(f"{self.where} is unreachable: {exc}") from exc

    def _verified_chunks(self, body: StreamingBody, expected: bytes, cid: str) -> Iterator[bytes]:
        digest = hashlib.sha256()
        try:
            with self._errors(cid):
                for chunk in body.iter_chunks(CHUNK_BYTES):
                    digest.update(chunk)
                    yield chunk
        finally:
            body.close()  # also when the reader stops early: the connection goes back to the pool
        if digest.digest() != expected:
            raise BlobCorrupted(f"blob {cid} does not match its content identifier")

    def _sweep_stale_spools(self) -> None:
        cutoff = time.time() - STALE_UPLOAD_SECONDS
        for leftover in self.spool_dir.glob(f"*{TMP_SUFFIX}"):
            with suppress(FileNotFoundError):  # another process may sweep the same folder
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()

"""Data-subject requests (GDPR art. 15, 17, 20 in spirit): export and erasure.

Export: every module that holds data about the caller (see `kernel.subject`) streams it
into one ZIP — JSON records and the caller's files, decrypted — with a manifest listing
each entry's SHA-256, signed by the node, so the archive can be checked later.

Erasure: every such module erases or crypto-shreds what it holds (files: their keys are
deleted, so every copy of their ciphertext, backups included, is noise), the identity
last. The node signs a receipt saying what was erased, and the receipt's digest goes into
the audit log. The audit log itself keeps its entries: it is append-only and its Merkle
proofs depend on every entry; entries name a DID (a pseudonym) and never content.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from anarq.kernel import Kernel
from anarq.kernel.clock import rfc3339
from anarq.kernel.errors import BadRequest, Forbidden
from anarq.kernel.guard import Actor, Context
from anarq.kernel.subject import SubjectData
from anarq.node.service import NodeService
from anarq.qlock import sign_detached

EXPORT_FORMAT = "anarq/privacy/export/v1"
RECEIPT_FORMAT = "anarq/privacy/erasure/v1"
READ_BYTES = 1024 * 1024


def subject_resource(did: str) -> str:
    return f"privacy:subject:{did}"


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class PrivacyService:
    def __init__(self, kernel: Kernel, node: NodeService) -> None:
        self.k = kernel
        self.node = node

    def policy(self, ctx: Context, action: str, resource: str) -> bool:
        """A person makes requests about themselves, and only about themselves."""
        return ctx.actor.kind == "identity" and resource == subject_resource(ctx.actor.id)

    def _subject(self, ctx: Context) -> str:
        if ctx.actor.kind != "identity":
            raise Forbidden("data-subject requests are made by the identity itself, signed")
        return ctx.actor.id

    @staticmethod
    def _holders(services: Mapping[str, Any]) -> list[tuple[str, SubjectData]]:
        found = [(name, svc) for name, svc in services.items() if isinstance(svc, SubjectData)]
        return sorted(found, key=lambda pair: (pair[1].erase_order, pair[0]))

    # Export --------------------------------------------------------------------------

    def export(self, ctx: Context, services: Mapping[str, Any]) -> Path:
        """Write the caller's archive to a temporary file and return its path.

        The caller streams it out and deletes it. Files are written entry by entry, so
        memory stays flat whatever the drive holds.
        """
        did = self._subject(ctx)
        self.k.check(ctx, "read", subject_resource(did))
        spool = self.k.settings.data_dir / "spool"
        spool.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=spool, suffix=".zip.part")
        os.close(fd)
        path = Path(name)
        try:
            entries: list[dict[str, Any]] = []
            with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for module, holder in self._holders(services):
                    for item in holder.export_subject(ctx, did):
                        entries.append(_write_entry(archive, module, item.name, item.chunks))
                manifest = {
                    "format": EXPORT_FORMAT,
                    "subject": did,
                    "node": self.node.identity.did,
                    "exported_at": rfc3339(self.k.clock.now()),
                    "entries": entries,
                }
                signature = sign_detached(self.node.identity.signing_key(), canonical(manifest))
                archive.writestr("manifest.json", json.dumps(manifest, indent=2))
                archive.writestr("manifest.sig.json", json.dumps(signature, indent=2))
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        self.k.guard.record(ctx, "read", subject_resource(did), "allow")
        return path

    # Erasure -------------------------------------------------------------------------

    def erase(self, ctx: Context, services: Mapping[str, Any], confirm: str) -> dict[str, Any]:
        """Erase everything about the caller; return the node-signed receipt."""
        did = self._subject(ctx)
        if confirm != did:
            raise BadRequest("confirm must repeat your own DID: erasure cannot be undone")
        self.k.check(ctx, "delete", subject_resource(did))
        # Modules act as the node on the subject's behalf, tied to this request.
        acting = replace(
            ctx,
            actor=Actor(id="system", kind="node"),
            correlation_id=ctx.correlation_id or ctx.request_id,
        )
        erased: dict[str, dict[str, int]] = {}
        for module, holder in self._holders(services):
            erased[module] = holder.erase_subject(acting, did)
        receipt_body = {
            "format": RECEIPT_FORMAT,
            "subject": did,
            "node": self.node.identity.did,
            "erased_at": rfc3339(self.k.clock.now()),
            "request_id": ctx.request_id,
            "erased": erased,
            "kept": {
                "qerberos": "audit entries naming the DID (append-only, no content); "
                "needed to prove this erasure and every earlier decision"
            },
        }
        signature = sign_detached(self.node.identity.signing_key(), canonical(receipt_body))
        receipt = {**receipt_body, "signature": signature}
        digest = hashlib.sha256(canonical(receipt)).hexdigest()
        self.k.guard.record(acting, "delete", f"privacy:erasure:{digest}", "allow")
        return receipt


def _write_entry(archive: zipfile.ZipFile, module: str, name: str, chunks: Any) -> dict[str, Any]:
    path = f"{module}/{name.lstrip('/')}"
    digest = hashlib.sha256()
    size = 0
    with archive.open(path, "w", force_zip64=True) as handle:
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            handle.write(chunk)
    return {"path": path, "size": size, "sha256": digest.hexdigest()}


def stream_and_delete(path: Path) -> Iterator[bytes]:
    """The file's bytes, then the file is gone."""
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(READ_BYTES):
                yield chunk
    finally:
        path.unlink(missing_ok=True)

"""Offline verification of an exported audit log: no node, no network, only the file.

Checks that every leaf hashes into every signed tree head, that the heads grow
append-only, and that each head is signed by the key the signer's DID names.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from anarq.qerberos import merkle
from anarq.qerberos.service import tree_head_bytes
from anarq.qlock import VerifyKey, decode_signature, verify
from anarq.squid.didkey import did_from_ed25519

EXPORT_FORMAT = "anarq-audit-export/v1"


class AuditVerificationFailed(Exception):
    """The export does not prove what it claims; the message says where it breaks."""


@dataclass(frozen=True)
class Report:
    leaves: int
    tree_heads: int
    latest_size: int
    latest_root: str
    signer: str


def verify_export(document: dict[str, Any]) -> Report:
    if document.get("format") != EXPORT_FORMAT:
        raise AuditVerificationFailed(f"not an {EXPORT_FORMAT} document")
    try:
        signer = str(document["signer"])
        key = VerifyKey.from_bytes(base64.b64decode(document["signer_public_key"], validate=True))
        leaves = [str(leaf) for leaf in document["leaves"]]
        heads = list(document["tree_heads"])
    except (KeyError, TypeError, ValueError) as exc:
        raise AuditVerificationFailed(f"malformed export: {exc}") from None
    if did_from_ed25519(key.ed25519_bytes()) != signer:
        raise AuditVerificationFailed("the signer's public key is not the key its DID names")
    store = merkle.MemoryNodeStore()
    for start in range(0, len(leaves), merkle.MAX_APPEND_LEAVES):
        batch = leaves[start : start + merkle.MAX_APPEND_LEAVES]
        merkle.append(store, [merkle.leaf_hash(leaf.encode()) for leaf in batch])
    previous = 0
    for head in heads:
        size = int(head["size"])
        if size <= previous:
            raise AuditVerificationFailed(f"tree head sizes do not grow at size {size}")
        if size > len(leaves):
            raise AuditVerificationFailed(f"tree head at size {size} but only {len(leaves)} leaves")
        root = merkle.root(store, size)
        if base64.b64encode(root).decode() != head["root"]:
            raise AuditVerificationFailed(f"leaves do not hash to the signed root at size {size}")
        if head["signer"] != signer:
            raise AuditVerificationFailed(f"tree head at size {size} names another signer")
        time = datetime.fromisoformat(str(head["time"]).replace("Z", "+00:00"))
        try:
            verify(
                key, tree_head_bytes(signer, size, root, time), decode_signature(head["signature"])
            )
        except Exception:
            raise AuditVerificationFailed(
                f"bad signature on the tree head at size {size}"
            ) from None
        previous = size
    latest: dict[str, Any] = (
        heads[-1] if heads else {"size": 0, "root": base64.b64encode(merkle.EMPTY_ROOT).decode()}
    )
    return Report(
        leaves=len(leaves),
        tree_heads=len(heads),
        latest_size=int(latest["size"]),
        latest_root=str(latest["root"]),
        signer=signer,
    )

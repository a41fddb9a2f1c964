"""The audit log: every change and every refusal is recorded, provably, verifiable offline."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from sqlalchemy import func, select

from anarq.kernel.errors import Forbidden, NotFound, Unauthenticated
from anarq.kernel.guard import ANONYMOUS, OPERATOR, Actor, Context
from anarq.kernel.node import Node
from anarq.node.models import ProfileUpdate
from anarq.qerberos import merkle, tables
from anarq.qerberos.service import QerberosService
from anarq.qerberos.verify import AuditVerificationFailed, verify_export

BOB = Context(actor=Actor(id="did:key:z6MkBob", kind="identity"))


@pytest.fixture
def audit(node: Node) -> QerberosService:
    svc: QerberosService = node.service("qerberos")
    return svc


def entry_count(node: Node) -> int:
    with node.kernel.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(tables.entries)).scalar_one())


def test_a_change_and_a_refusal_are_both_recorded(node: Node, audit: QerberosService) -> None:
    node.service("node").update_profile(Context(actor=OPERATOR), ProfileUpdate(name="Audited"))
    with pytest.raises(Forbidden):
        node.service("node").update_profile(BOB, ProfileUpdate(name="Nope"))
    audit.integrate()
    rows = audit.entries(Context(actor=OPERATOR), limit=10)
    verdicts = [(row.actor, row.action, row.resource, row.verdict) for row in rows]
    assert ("operator", "write", "node:profile:self", "allow") in verdicts
    assert ("did:key:z6MkBob", "write", "node:profile:self", "deny") in verdicts


def test_failed_change_leaves_no_allow_record(node: Node, audit: QerberosService) -> None:
    before = entry_count(node)
    with pytest.raises(RuntimeError), node.kernel.change(Context(actor=OPERATOR), "write", "x:y:z"):
        raise RuntimeError("the change failed")
    assert entry_count(node) == before


def test_entries_never_hold_content(node: Node, audit: QerberosService) -> None:
    node.service("node").update_profile(
        Context(actor=OPERATOR), ProfileUpdate(description="secret plans")
    )
    audit.integrate()
    for row in audit.entries(Context(actor=OPERATOR), limit=100):
        assert "secret plans" not in row.leaf


def test_every_entry_has_a_valid_inclusion_proof(node: Node, audit: QerberosService) -> None:
    for i in range(13):
        node.service("node").update_profile(Context(actor=OPERATOR), ProfileUpdate(name=f"n{i}"))
    head = audit.integrate()
    assert head is not None
    for row in audit.entries(Context(actor=OPERATOR), limit=100):
        proof = audit.inclusion(Context(actor=OPERATOR), row.seq)
        assert merkle.verify_inclusion(
            base64.b64decode(proof.leaf_hash),
            proof.leaf_index,
            proof.tree_size,
            [base64.b64decode(p) for p in proof.proof],
            base64.b64decode(proof.tree_head.root),
        )


def test_later_heads_are_consistent_with_earlier_ones(node: Node, audit: QerberosService) -> None:
    node.service("node").update_profile(Context(actor=OPERATOR), ProfileUpdate(name="a"))
    first = audit.integrate()
    for i in range(5):
        node.service("node").update_profile(Context(actor=OPERATOR), ProfileUpdate(name=f"b{i}"))
    second = audit.integrate()
    assert first is not None and second is not None
    proof = audit.consistency(first.size, second.size)
    assert merkle.verify_consistency(
        first.size,
        second.size,
        base64.b64decode(first.root),
        base64.b64decode(second.root),
        [base64.b64decode(p) for p in proof.proof],
    )


def test_export_verifies_offline_and_tampering_is_caught(
    node: Node, audit: QerberosService
) -> None:
    for i in range(4):
        node.service("node").update_profile(Context(actor=OPERATOR), ProfileUpdate(name=f"n{i}"))
        audit.integrate()
    document = audit.export(Context(actor=OPERATOR))
    report = verify_export(json.loads(json.dumps(document)))
    assert report.tree_heads == 4
    assert report.latest_size == len(document["leaves"])

    edited = json.loads(json.dumps(document))
    edited["leaves"][0] = edited["leaves"][0].replace('"allow"', '"deny"')
    with pytest.raises(AuditVerificationFailed, match="do not hash"):
        verify_export(edited)
    dropped = json.loads(json.dumps(document))
    dropped["leaves"].pop(1)
    with pytest.raises(AuditVerificationFailed):
        verify_export(dropped)
    resigned = json.loads(json.dumps(document))
    resigned["tree_heads"][-1]["signature"] = resigned["tree_heads"][0]["signature"]
    with pytest.raises(AuditVerificationFailed, match="signature"):
        verify_export(resigned)


def test_entries_are_private_to_operator_and_actor(node: Node, audit: QerberosService) -> None:
    with pytest.raises(Forbidden):
        node.service("node").update_profile(BOB, ProfileUpdate(name="x"))
    audit.integrate()
    [mine] = audit.my_entries(BOB)
    assert audit.entry(BOB, mine.seq).verdict == "deny"
    stranger = Context(actor=Actor(id="did:key:z6MkEve", kind="identity"))
    with pytest.raises(NotFound):
        audit.entry(stranger, mine.seq)
    with pytest.raises(Forbidden):
        audit.entries(stranger)
    with pytest.raises(Unauthenticated):
        audit.export(Context(actor=ANONYMOUS))


async def test_http_head_and_proof(
    http: httpx.AsyncClient, operator: dict[str, str], audit: QerberosService
) -> None:
    await http.patch("/node/profile", json={"name": "Proven"}, headers=operator)
    audit.integrate()
    head = (await http.get("/qerberos/tree-head")).json()
    assert head["size"] >= 1
    entries = (await http.get("/qerberos/entries", headers=operator)).json()
    proof = await http.get(f"/qerberos/entries/{entries[-1]['seq']}/proof", headers=operator)
    assert proof.status_code == 200, proof.text
    assert (await http.get("/qerberos/export")).status_code == 401

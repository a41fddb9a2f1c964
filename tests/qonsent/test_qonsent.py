"""Qonsent: deny by default, owners hold admin, grants allow exactly what they say."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anarq.kernel.clock import ManualClock
from anarq.kernel.errors import Forbidden, NotFound, Unauthenticated
from anarq.kernel.guard import ANONYMOUS, OPERATOR, Actor, Context
from anarq.kernel.node import Node
from anarq.qonsent.models import GrantRequest
from anarq.qonsent.service import QonsentService, covering_patterns

ALICE = "did:key:z6MkAlice"
BOB = "did:key:z6MkBob"
CAROL = "did:key:z6MkCarol"
FILE = "qdrive:file:bafyfile"


def as_(did: str) -> Context:
    return Context(actor=Actor(id=did, kind="identity"))


@pytest.fixture
def qonsent(node: Node) -> QonsentService:
    svc: QonsentService = node.service("qonsent")
    with node.kernel.db.write() as tx:
        svc.register_owner(tx, FILE, ALICE)
    return svc


def grant(svc: QonsentService, by: str, to: str, actions: list[str], **extra: object) -> str:
    request = GrantRequest(
        grantee=to, resource=extra.pop("resource", FILE), actions=actions, purpose="test", **extra
    )  # type: ignore[arg-type]
    return svc.grant(as_(by), request).id


def test_patterns_cover_from_specific_to_general() -> None:
    assert covering_patterns("qdrive:file:abc") == [
        "qdrive:file:abc",
        "qdrive:file:*",
        "qdrive:*",
        "*",
    ]
    assert covering_patterns("qdrive:*") == ["qdrive:*", "*"]


def test_nothing_is_allowed_by_default(qonsent: QonsentService) -> None:
    decision = qonsent.check(BOB, "read", FILE)
    assert not decision.allowed
    assert decision.grant_id is None


def test_owner_holds_admin(qonsent: QonsentService) -> None:
    for action in ("read", "write", "delete", "share", "admin"):
        assert qonsent.check(ALICE, action, FILE).reason == "owner"


def test_grant_allows_exactly_its_actions(qonsent: QonsentService) -> None:
    grant_id = grant(qonsent, ALICE, BOB, ["read"])
    decision = qonsent.check(BOB, "read", FILE)
    assert decision.allowed and decision.grant_id == grant_id
    assert not qonsent.check(BOB, "write", FILE).allowed
    assert not qonsent.check(CAROL, "read", FILE).allowed


def test_revoked_grant_denies_at_once(qonsent: QonsentService) -> None:
    grant_id = grant(qonsent, ALICE, BOB, ["read"])
    qonsent.revoke(as_(ALICE), grant_id)
    assert not qonsent.check(BOB, "read", FILE).allowed


def test_expired_grant_denies(node: Node, qonsent: QonsentService) -> None:
    clock = ManualClock()
    node.kernel.clock = clock
    qonsent.k.clock = clock
    grant(qonsent, ALICE, BOB, ["read"], expires_at=clock.now() + timedelta(hours=1))
    assert qonsent.check(BOB, "read", FILE).allowed
    clock.advance(timedelta(hours=2))
    assert not qonsent.check(BOB, "read", FILE).allowed


def test_limited_uses_run_out(qonsent: QonsentService) -> None:
    grant(qonsent, ALICE, BOB, ["read"], max_uses=2)
    assert qonsent.check(BOB, "read", FILE, consume=True).allowed
    assert qonsent.check(BOB, "read", FILE, consume=True).allowed
    assert not qonsent.check(BOB, "read", FILE, consume=True).allowed


def test_public_grant_allows_everyone(qonsent: QonsentService) -> None:
    grant(qonsent, ALICE, "public", ["read"])
    assert qonsent.check(CAROL, "read", FILE).allowed
    assert qonsent.check("public", "read", FILE).allowed


def test_pattern_grant_covers_every_matching_resource(qonsent: QonsentService) -> None:
    qonsent.grant(
        Context(actor=OPERATOR),
        GrantRequest(grantee=BOB, resource="qdrive:file:*", actions=["read"], purpose="backup"),
    )
    assert qonsent.check(BOB, "read", "qdrive:file:another").allowed
    assert not qonsent.check(BOB, "read", "qpic:photo:x").allowed


def test_stranger_cannot_grant(qonsent: QonsentService) -> None:
    with pytest.raises(Forbidden):
        grant(qonsent, BOB, CAROL, ["read"])
    with pytest.raises(Unauthenticated):
        qonsent.grant(
            Context(actor=ANONYMOUS),
            GrantRequest(grantee=CAROL, resource=FILE, actions=["read"], purpose="x"),
        )


def test_share_holder_passes_on_only_what_they_hold(qonsent: QonsentService) -> None:
    grant(qonsent, ALICE, BOB, ["read", "share"])
    grant(qonsent, BOB, CAROL, ["read"])
    assert qonsent.check(CAROL, "read", FILE).allowed
    with pytest.raises(Forbidden):
        grant(qonsent, BOB, CAROL, ["write"])
    with pytest.raises(Forbidden):
        grant(qonsent, BOB, CAROL, ["admin"])


def test_listings_are_for_admins_and_the_actor(qonsent: QonsentService) -> None:
    grant(qonsent, ALICE, BOB, ["read"])
    assert [g.grantee for g in qonsent.who_can(as_(ALICE), FILE)] == [BOB]
    assert [g.resource for g in qonsent.what_can(as_(BOB), BOB)] == [FILE]
    with pytest.raises(Forbidden):
        qonsent.who_can(as_(BOB), FILE)
    with pytest.raises(Forbidden):
        qonsent.what_can(as_(CAROL), BOB)


def test_guard_lets_grantees_change_what_they_may(node: Node, qonsent: QonsentService) -> None:
    grant(qonsent, ALICE, BOB, ["write"])
    with node.kernel.change(as_(BOB), "write", FILE):
        pass
    with pytest.raises(Forbidden), node.kernel.change(as_(CAROL), "write", FILE):
        pass


@pytest.fixture(scope="module")
def shared_qonsent(tmp_path_factory: pytest.TempPathFactory) -> QonsentService:
    """One embedded node for the property test's many examples (keys are costly to make)."""
    from anarq.kernel.db import Database
    from anarq.kernel.settings import Settings

    settings_ = Settings(data_dir=tmp_path_factory.mktemp("delegation"))
    database = Database(settings_.effective_database_url)
    database.upgrade()
    database.close()
    svc: QonsentService = Node.open(settings_).service("qonsent")
    return svc


@settings(max_examples=60, deadline=None)
@given(
    held=st.sets(st.sampled_from(["read", "write", "delete", "share", "execute"]), min_size=1),
    asked=st.sets(
        st.sampled_from(["read", "write", "delete", "share", "execute", "admin"]), min_size=1
    ),
)
def test_delegation_never_exceeds_the_parent(
    shared_qonsent: QonsentService, held: set[str], asked: set[str]
) -> None:
    import secrets

    svc = shared_qonsent
    resource = f"qdrive:file:{secrets.token_hex(8)}"
    with svc.k.db.write() as tx:
        svc.register_owner(tx, resource, ALICE)
    grant(svc, ALICE, BOB, sorted(held | {"share"}), resource=resource)
    try:
        grant(svc, BOB, CAROL, sorted(asked), resource=resource)
    except Forbidden:
        return
    for action in ("read", "write", "delete", "share", "execute", "admin"):
        if svc.check(CAROL, action, resource).allowed:
            assert action in held | {"share"}


async def test_http_grant_check_revoke(http: httpx.AsyncClient, operator: dict[str, str]) -> None:
    body = {"grantee": BOB, "resource": "qdrive:file:*", "actions": ["read"], "purpose": "audit"}
    created = await http.post("/qonsent/grants", json=body, headers=operator)
    assert created.status_code == 201, created.text
    grant_id = created.json()["id"]
    checked = await http.get(
        "/qonsent/check",
        params={"actor": BOB, "action": "read", "resource": "qdrive:file:x"},
        headers=operator,
    )
    assert checked.json()["allowed"] is True
    assert checked.json()["grant_id"] == grant_id
    revoked = await http.delete(f"/qonsent/grants/{grant_id}", headers=operator)
    assert revoked.status_code == 200
    checked = await http.get(
        "/qonsent/check",
        params={"actor": BOB, "action": "read", "resource": "qdrive:file:x"},
        headers=operator,
    )
    assert checked.json()["allowed"] is False


async def test_http_refuses_bad_grants(http: httpx.AsyncClient, operator: dict[str, str]) -> None:
    for body in (
        {"grantee": "bob", "resource": FILE, "actions": ["read"], "purpose": "x"},
        {"grantee": BOB, "resource": "not a resource", "actions": ["read"], "purpose": "x"},
        {"grantee": BOB, "resource": FILE, "actions": ["fly"], "purpose": "x"},
        {"grantee": BOB, "resource": FILE, "actions": [], "purpose": "x"},
    ):
        response = await http.post("/qonsent/grants", json=body, headers=operator)
        assert response.status_code == 422, body
    anonymous = await http.post(
        "/qonsent/grants",
        json={"grantee": BOB, "resource": FILE, "actions": ["read"], "purpose": "x"},
    )
    assert anonymous.status_code == 401


def test_grant_comes_with_a_signed_receipt_verifiable_offline(
    node: Node, qonsent: QonsentService
) -> None:
    import json as jsonlib

    from anarq.qonsent.receipts import ReceiptInvalid, digest, verify

    grant_id = grant(qonsent, ALICE, BOB, ["read"])
    receipt = qonsent.receipt(as_(BOB), grant_id)
    check = verify(jsonlib.loads(jsonlib.dumps(receipt)))
    assert (check.principal, check.recipients) == (ALICE, [BOB])
    assert receipt["services"][0]["purposes"][0]["actions"] == ["read"]
    for field, value in (("recipients", [CAROL]), ("pii_principal_id", CAROL)):
        forged = jsonlib.loads(jsonlib.dumps(receipt))
        forged[field] = value
        with pytest.raises(ReceiptInvalid):
            verify(forged)
    with pytest.raises(NotFound):
        qonsent.receipt(as_(CAROL), grant_id)
    # The receipt's digest is in the audit log, so its inclusion can be proven.
    audit = node.service("qerberos")
    audit.integrate()
    resources = [e.resource for e in audit.entries(Context(actor=OPERATOR), limit=100)]
    assert f"qonsent:receipt:{digest(receipt)}" in resources

"""Capability tokens: delegation chains that only ever narrow, and die when a link is revoked."""

from __future__ import annotations

import base64
from datetime import timedelta

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anarq.kernel.guard import Actor, Context
from anarq.kernel.node import Node
from anarq.qlock import SigningKey
from anarq.qonsent.capabilities import CapabilityInvalid, delegate, encode_chain
from anarq.qonsent.models import GrantRequest
from anarq.qonsent.service import QonsentService
from anarq.sdk.signing import RequestSigner

FILE = "qdrive:file:shared"
ACTIONS = ["read", "write", "delete", "share", "execute"]


class Person:
    def __init__(self, node: Node) -> None:
        self.key = SigningKey.generate(hybrid=False)
        self.signer = RequestSigner.for_key(self.key)
        self.did = self.signer.did
        self.ctx = Context(actor=Actor(id=self.did, kind="identity"))


@pytest.fixture
def people(node: Node) -> tuple[QonsentService, Person, Person, Person]:
    svc: QonsentService = node.service("qonsent")
    alice, bob, carol = Person(node), Person(node), Person(node)
    with node.kernel.db.write() as tx:
        svc.register_owner(tx, FILE, alice.did)
    return svc, alice, bob, carol


def link(
    by: Person,
    parent: str,
    to: Person,
    actions: list[str],
    svc: QonsentService,
    hours: float = 1,
    resource: str = FILE,
) -> dict:
    return delegate(
        by.key,
        by.did,
        parent=parent,
        audience=to.did,
        resource=resource,
        actions=actions,
        expires_at=svc.k.clock.now() + timedelta(hours=hours),
    )


def granted(svc: QonsentService, alice: Person, bob: Person, actions: list[str]) -> str:
    request = GrantRequest(
        grantee=bob.did,
        resource=FILE,
        actions=actions,
        purpose="sharing",
        expires_at=svc.k.clock.now() + timedelta(days=1),
    )
    return svc.grant(alice.ctx, request).id


def test_a_chain_gives_its_holder_the_narrowed_rights(people) -> None:
    svc, alice, bob, carol = people
    grant_id = granted(svc, alice, bob, ["read", "write", "share"])
    chain = [link(bob, f"grant:{grant_id}", carol, ["read"], svc)]
    capability = svc.verify_capability(chain, carol.did)
    assert capability.actions == frozenset({"read"})
    assert svc.policy(Context(actor=carol.ctx.actor, capabilities=(capability,)), "read", FILE)
    assert not svc.policy(Context(actor=carol.ctx.actor, capabilities=(capability,)), "write", FILE)


def test_widening_any_field_is_refused(people) -> None:
    svc, alice, bob, carol = people
    grant_id = granted(svc, alice, bob, ["read", "share"])
    parent = f"grant:{grant_id}"
    for bad in (
        link(bob, parent, carol, ["write"], svc),
        link(bob, parent, carol, ["read"], svc, hours=48),
        link(bob, parent, carol, ["read"], svc, resource="qdrive:file:*"),
    ):
        with pytest.raises(CapabilityInvalid):
            svc.verify_capability([bad], carol.did)


def test_only_the_audience_may_use_it_and_only_signed_by_the_issuer(people) -> None:
    svc, alice, bob, carol = people
    grant_id = granted(svc, alice, bob, ["read", "share"])
    chain = [link(bob, f"grant:{grant_id}", carol, ["read"], svc)]
    with pytest.raises(CapabilityInvalid):
        svc.verify_capability(chain, alice.did)
    forged = [link(carol, f"grant:{grant_id}", carol, ["read"], svc)]
    forged[0]["iss"] = bob.did
    with pytest.raises(CapabilityInvalid):
        svc.verify_capability(forged, carol.did)


def test_revoking_a_link_kills_everything_below(people, node: Node) -> None:
    svc, alice, bob, carol = people
    dave = Person(node)
    grant_id = granted(svc, alice, bob, ["read", "share"])
    first = link(bob, f"grant:{grant_id}", carol, ["read", "share"], svc)
    from anarq.qonsent.capabilities import digest

    second = link(carol, f"token:{digest(first)}", dave, ["read"], svc, hours=0.5)
    assert svc.verify_capability([first, second], dave.did).actions == frozenset({"read"})
    svc.revoke_capability(bob.ctx, [first, second], 0)
    with pytest.raises(CapabilityInvalid, match="revoked"):
        svc.verify_capability([first, second], dave.did)


def test_revoking_the_grant_kills_the_chain(people) -> None:
    svc, alice, bob, carol = people
    grant_id = granted(svc, alice, bob, ["read", "share"])
    chain = [link(bob, f"grant:{grant_id}", carol, ["read"], svc)]
    svc.revoke(alice.ctx, grant_id)
    with pytest.raises(CapabilityInvalid):
        svc.verify_capability(chain, carol.did)


@settings(max_examples=40, deadline=None)
@given(
    parent_actions=st.sets(st.sampled_from(ACTIONS), min_size=1),
    child_actions=st.sets(st.sampled_from([*ACTIONS, "admin"]), min_size=1),
    grandchild_actions=st.sets(st.sampled_from([*ACTIONS, "admin"]), min_size=1),
    child_hours=st.integers(1, 48),
)
def test_delegated_tokens_never_exceed_their_parent(
    shared_people, parent_actions, child_actions, grandchild_actions, child_hours
) -> None:
    from anarq.qonsent.capabilities import digest

    svc, alice, bob, carol, dave = shared_people
    grant_id = granted(svc, alice, bob, sorted(parent_actions | {"share"}))
    first = link(bob, f"grant:{grant_id}", carol, sorted(child_actions), svc, hours=child_hours)
    second = link(carol, f"token:{digest(first)}", dave, sorted(grandchild_actions), svc, hours=0.5)
    try:
        capability = svc.verify_capability([first, second], dave.did)
    except CapabilityInvalid:
        return
    assert capability.actions <= parent_actions | {"share"}
    assert capability.actions <= child_actions
    assert capability.expires_at <= svc.k.clock.now() + timedelta(days=1)


@pytest.fixture(scope="module")
def shared_people(tmp_path_factory: pytest.TempPathFactory):
    from anarq.kernel.db import Database
    from anarq.kernel.settings import Settings

    settings_ = Settings(data_dir=tmp_path_factory.mktemp("capabilities"))
    database = Database(settings_.effective_database_url)
    database.upgrade()
    database.close()
    node = Node.open(settings_)
    svc: QonsentService = node.service("qonsent")
    alice, bob, carol, dave = (Person(node) for _ in range(4))
    with node.kernel.db.write() as tx:
        svc.register_owner(tx, FILE, alice.did)
    return svc, alice, bob, carol, dave


async def test_a_request_carrying_a_capability_is_allowed(
    people, http: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    svc, _alice, bob, carol = people
    grant = {
        "grantee": bob.did,
        "resource": "node:profile:self",
        "actions": ["write", "share"],
        "purpose": "bob runs the profile",
    }
    grant_id = (await http.post("/qonsent/grants", json=grant, headers=operator)).json()["id"]
    chain = [link(bob, f"grant:{grant_id}", carol, ["write"], svc, resource="node:profile:self")]
    request = httpx.Request(
        "PATCH",
        "http://node.test/node/profile",
        json={"description": "by carol, via bob"},
        headers={"X-Anarq-Capability": encode_chain(chain)},
    )
    carol.signer.sign(request)
    response = await http.send(request)
    assert response.status_code == 200, response.text
    bare = httpx.Request("PATCH", "http://node.test/node/profile", json={"description": "x"})
    carol.signer.sign(bare)
    assert (await http.send(bare)).status_code == 403
    garbage = httpx.Request(
        "PATCH",
        "http://node.test/node/profile",
        json={"description": "x"},
        headers={"X-Anarq-Capability": base64.urlsafe_b64encode(b"[1]").decode()},
    )
    carol.signer.sign(garbage)
    refused = await http.send(garbage)
    assert refused.status_code == 403
    assert refused.json()["code"] == "qonsent.capability_invalid"

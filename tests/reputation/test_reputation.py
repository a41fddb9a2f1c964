"""Reputation from checked facts, with its reasons, signed; sub-identities share only
when their root links them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from anarq.kernel.node import Node
from anarq.kernel.settings import Settings
from anarq.vc import credentials as vcs
from tests.qmarket.test_market import buy, fund, list_it
from tests.squid.test_identities import sub_request
from tests.support.money import later
from tests.vc.test_vc import Holder, issue_as


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"public_url": "http://node.test"})


@pytest.fixture
async def alice(http: httpx.AsyncClient) -> Holder:
    person = Holder(http, "alice")
    await person.register()
    return person


@pytest.fixture
async def bob(http: httpx.AsyncClient) -> Holder:
    person = Holder(http, "bob")
    await person.register()
    return person


async def scored(person: Holder) -> dict[str, Any]:
    response = await person.send("GET", "/reputation/me")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def points(result: dict[str, Any]) -> dict[str, int]:
    return {f["factor"]: f["points"] for f in result["factors"]}


async def test_a_new_identity_starts_at_zero_and_facts_raise_it_with_reasons(
    http: httpx.AsyncClient, node: Node, operator: dict[str, str], alice: Holder, bob: Holder
) -> None:
    fresh = await scored(bob)
    assert fresh["score"] == 0 and points(fresh) == {"age": 0}

    stored = await alice.put("/music/dawn.flac", b"a recording " * 50)
    listing = await list_it(alice, kind="file", item=stored["id"])
    await fund(http, operator, bob, 25)
    order = await buy(bob, listing["id"])
    review = await bob.send(
        "POST", f"/qmarket/orders/{order['id']}/review", json={"rating": 5, "text": "lovely"}
    )
    assert review.status_code == 201, review.text
    dao = await alice.send(
        "POST", "/dao/daos", json={"name": "Allotment", "members": [{"did": bob.did}]}
    )
    assert dao.status_code == 201, dao.text
    licence = await issue_as(alice, bob.did, licence="GAS-1234")
    handed = await alice.send("POST", "/vc/credentials", json={"credential": licence})
    assert handed.status_code == 201

    node.service("reputation")._cache.clear()
    bobs = await scored(bob)
    assert points(bobs) == {"age": 0, "purchases": 10, "memberships": 10, "credentials": 10}
    assert bobs["score"] == 30
    alices = points(await scored(alice))
    # One five-star review moves a fifth of what five would.
    assert alices["sales"] == 15 and alices["reviews"] == 20 and alices["memberships"] == 10

    # The same facts a year on: age counts.
    with later(node, timedelta(days=366)):
        node.service("reputation")._cache.clear()
        older = await scored(bob)
    assert points(older)["age"] == 100 and older["score"] == 130


async def test_the_score_is_a_credential_the_node_signs(
    http: httpx.AsyncClient, node: Node, operator: dict[str, str], alice: Holder, bob: Holder
) -> None:
    result = await scored(alice)
    credential = result["credential"]
    assert credential["type"] == ["VerifiableCredential", "ReputationCredential"]
    assert credential["issuer"] == node.service("node").identity.did
    assert credential["credentialSubject"]["score"] == result["score"]
    report = vcs.verify_credential(credential, now=datetime.now(UTC))
    assert report.verified, report.errors
    inflated = {
        **credential,
        "credentialSubject": {**credential["credentialSubject"], "score": 999},
    }
    assert not vcs.verify_credential(inflated, now=datetime.now(UTC)).verified

    # Someone else's score is theirs to present, not for others to look up.
    assert (await bob.send("GET", f"/reputation/identities/{alice.did}")).status_code == 403
    as_operator = await http.get(f"/reputation/identities/{alice.did}", headers=operator)
    assert as_operator.status_code == 200 and as_operator.json()["did"] == alice.did


async def test_a_sub_identity_shares_its_roots_score_only_when_linked(
    http: httpx.AsyncClient, node: Node, alice: Holder, bob: Holder
) -> None:
    body, _ = sub_request(alice.signer, "ENTERPRISE", "alice at work")
    made = await alice.send("POST", f"/squid/identities/{alice.did}/subs", json=body)
    assert made.status_code == 201, made.text
    sub = body["did"]
    with later(node, timedelta(days=365)):
        svc = node.service("reputation")
        svc._cache.clear()
        assert svc.score(sub).score == 100, "its own age only"
        foreign = await bob.send("PUT", f"/reputation/links/{sub}", json={"share_pct": 50})
        assert foreign.status_code == 404, foreign.text
        linked = await alice.send("PUT", f"/reputation/links/{sub}", json={"share_pct": 50})
        assert linked.status_code == 200, linked.text
        shared = svc.score(sub)
        root = svc.score(alice.did).score
        assert shared.score == 100 + root // 2
        assert any(f.factor == "root" for f in shared.factors)
        bad = await alice.send("PUT", f"/reputation/links/{sub}", json={"share_pct": 150})
        assert bad.status_code == 422
        assert (await alice.send("DELETE", f"/reputation/links/{sub}")).status_code == 204
        assert svc.score(sub).score == 100
        assert (await alice.send("DELETE", f"/reputation/links/{sub}")).status_code == 404

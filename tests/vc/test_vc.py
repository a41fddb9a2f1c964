"""Verifiable credentials on both backends: the node attests facts it holds, identities
issue on their devices, holders present, anyone verifies offline, issuers revoke."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from anarq.kernel.node import Node
from anarq.kernel.settings import Settings
from anarq.qlock import SigningKey
from anarq.squid.didkey import did_from_ed25519
from anarq.vc import credentials as vcs
from anarq.vc import dataintegrity, statuslist, tables
from tests.qdrive.test_drive import Person
from tests.qmarket.test_market import buy, fund, list_it
from tests.support.money import later

ISSUER_URL = "http://node.test"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"public_url": ISSUER_URL})


class Holder(Person):
    """A person whose key also signs credentials and presentations (as their device does)."""

    def __init__(self, http: httpx.AsyncClient, name: str) -> None:
        super().__init__(http, name)
        self.key: SigningKey = self.signer.key
        self.seed = self.key.ed25519_seed()


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


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def now() -> datetime:
    return datetime.now(UTC)


def count(node: Node, table: Any) -> int:
    with node.kernel.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


async def fetch_list(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    return await ok(await http.get(url.removeprefix(ISSUER_URL)))


async def offline_report(http: httpx.AsyncClient, credential: dict[str, Any]) -> vcs.Report:
    """Verify as a relying party with no node: the status list fetched beforehand."""
    status = credential.get("credentialStatus")
    lists = {}
    if status:
        url = status["statusListCredential"]
        lists[url] = await fetch_list(http, url)
    return vcs.verify_credential(credential, now=now(), status_lookup=lists.get)


async def issue_as(issuer: Holder, subject: str, **claims: Any) -> dict[str, Any]:
    """What `anarq vc issue --to` does: a status entry, the list signed once, the
    credential signed on the device, handed to the node."""
    allocation = await ok(await issuer.send("POST", "/vc/status"), 201)
    if allocation["list_to_sign"] is not None:
        signed_list = vcs.issue(allocation["list_to_sign"], issuer.seed, created=now())
        list_id = allocation["list_url"].rsplit("/", 1)[-1]
        await ok(
            await issuer.send("PUT", f"/vc/status/{list_id}", json={"credential": signed_list})
        )
    document = vcs.build(
        issuer.did,
        {"id": subject, **claims},
        ["PlumberLicence"],
        valid_from=now(),
        status=allocation["credential_status"],
    )
    return vcs.issue(document, issuer.seed, created=now())


async def revoke_as(
    issuer: Holder, http: httpx.AsyncClient, credential: dict[str, Any]
) -> httpx.Response:
    """What `anarq vc revoke` does for an identity: its list, bit set, signed again."""
    status = credential["credentialStatus"]
    url = status["statusListCredential"]
    current = await fetch_list(http, url)
    bits = bytearray(statuslist.decode(current["credentialSubject"]["encodedList"]))
    statuslist.set_bit(bits, int(status["statusListIndex"]))
    unsigned = statuslist.credential(url, issuer.did, bytes(bits))
    signed = vcs.issue(unsigned, issuer.seed, created=now())
    return await issuer.send(
        "PUT", f"/vc/status/{url.rsplit('/', 1)[-1]}", json={"credential": signed}
    )


async def test_the_node_attests_control_of_a_did_and_anyone_verifies_it_offline(
    http: httpx.AsyncClient, node: Node, alice: Holder
) -> None:
    held = await ok(await alice.send("POST", "/vc/issue", json={"kind": "did-control"}), 201)
    credential = held["credential"]
    assert credential["issuer"] == node.service("node").identity.did
    assert credential["credentialSubject"] == {"id": alice.did, "controls": alice.did}
    assert credential["proof"]["cryptosuite"] == "eddsa-jcs-2022"
    assert credential["type"] == ["VerifiableCredential", "DidControlCredential"]

    report = await offline_report(http, credential)
    assert report.verified and report.status == "active", report.errors
    online = await ok(await http.post("/vc/verify", json={"credential": credential}))
    assert online["verified"] and online["status"] == "active"

    tampered = copy.deepcopy(credential)
    tampered["credentialSubject"]["controls"] = "did:key:z6MkSomeoneElse"
    assert not (await offline_report(http, tampered)).verified

    listed = await ok(await alice.send("GET", "/vc/credentials"))
    assert [c["id"] for c in listed] == [credential["id"]]

    revoked = await ok(await alice.send("POST", f"/vc/credentials/{credential['id']}/revoke"))
    assert revoked["revoked_at"] is not None
    report = await offline_report(http, credential)
    assert not report.verified and report.status == "revoked"
    again = await alice.send("POST", f"/vc/credentials/{credential['id']}/revoke")
    assert again.status_code == 409


async def test_dao_membership_and_purchase_credentials_need_the_fact(
    http: httpx.AsyncClient, operator: dict[str, str], alice: Holder, bob: Holder
) -> None:
    dao = await ok(
        await alice.send(
            "POST", "/dao/daos", json={"name": "Allotment", "members": [{"did": bob.did}]}
        ),
        201,
    )
    member = await ok(
        await bob.send("POST", "/vc/issue", json={"kind": "dao-member", "dao": dao["did"]}), 201
    )
    assert member["credential"]["credentialSubject"]["memberOf"] == {
        "id": dao["did"],
        "name": "Allotment",
    }
    carol = await Holder(http, "carol").register()
    refused = await carol.send("POST", "/vc/issue", json={"kind": "dao-member", "dao": dao["did"]})
    assert refused.status_code == 403

    stored = await alice.put("/music/dawn.flac", b"a recording " * 50)
    listing = await list_it(alice, kind="file", item=stored["id"])
    await fund(http, operator, bob, 25)
    order = await buy(bob, listing["id"])
    bought = await ok(
        await bob.send("POST", "/vc/issue", json={"kind": "purchase", "order": order["id"]}), 201
    )
    assert bought["credential"]["credentialSubject"]["purchased"]["order"] == order["id"]
    not_mine = await carol.send(
        "POST", "/vc/issue", json={"kind": "purchase", "order": order["id"]}
    )
    assert not_mine.status_code == 403
    missing = await bob.send("POST", "/vc/issue", json={"kind": "purchase"})
    assert missing.status_code == 422


async def test_an_identity_issues_on_its_device_and_revokes_by_publishing_its_list(
    http: httpx.AsyncClient, node: Node, alice: Holder, bob: Holder
) -> None:
    credential = await issue_as(alice, bob.did, licence="GAS-1234")
    held = await ok(
        await alice.send("POST", "/vc/credentials", json={"credential": credential}), 201
    )
    assert held["holder"] == bob.did and held["kind"] == "PlumberLicence"
    bobs = await ok(await bob.send("GET", "/vc/credentials"))
    assert [c["id"] for c in bobs] == [credential["id"]]
    issued = await ok(await alice.send("GET", "/vc/credentials", params={"role": "issuer"}))
    assert [c["id"] for c in issued] == [credential["id"]]
    assert (await offline_report(http, credential)).status == "active"

    # Only the issuer hands over its credentials, once, and only if they verify.
    stored_before = count(node, tables.credentials)
    assert (
        await bob.send("POST", "/vc/credentials", json={"credential": credential})
    ).status_code == 403
    assert (
        await alice.send("POST", "/vc/credentials", json={"credential": credential})
    ).status_code == 409
    forged = copy.deepcopy(credential)
    forged["credentialSubject"]["licence"] = "ANY-0000"
    refused = await alice.send("POST", "/vc/credentials", json={"credential": forged})
    assert refused.status_code == 400 and "signature" in refused.json()["detail"]
    assert count(node, tables.credentials) == stored_before

    # Bob cannot publish Alice's list, and nobody can clear a bit once set.
    assert (await revoke_as(bob, http, credential)).status_code == 403
    published = await ok(await revoke_as(alice, http, credential))
    assert published["revoked"] == 1
    report = await offline_report(http, credential)
    assert report.status == "revoked" and not report.verified
    bobs = await ok(await bob.send("GET", "/vc/credentials"))
    assert bobs[0]["revoked_at"] is not None
    url = credential["credentialStatus"]["statusListCredential"]
    cleared = vcs.issue(
        statuslist.credential(url, alice.did, bytes(statuslist.empty())), alice.seed, created=now()
    )
    unrevoke = await alice.send(
        "PUT", f"/vc/status/{url.rsplit('/', 1)[-1]}", json={"credential": cleared}
    )
    assert unrevoke.status_code == 400 and "never clear" in unrevoke.json()["detail"]


async def test_presentations_are_bound_to_one_challenge_and_their_holder(
    http: httpx.AsyncClient, alice: Holder, bob: Holder
) -> None:
    credential = await issue_as(alice, bob.did, licence="GAS-1234")
    await ok(await alice.send("POST", "/vc/credentials", json={"credential": credential}), 201)
    shop = Holder(http, "shop")
    await shop.register()
    assert (await http.post("/vc/challenges", json={})).status_code == 401
    given = await ok(
        await shop.send("POST", "/vc/challenges", json={"domain": "shop.example"}), 201
    )
    presentation = vcs.present(
        [credential],
        bob.did,
        bob.seed,
        challenge=given["challenge"],
        domain="shop.example",
        created=now(),
    )
    body = {"presentation": presentation, "challenge": given["challenge"], "domain": "shop.example"}
    report = await ok(await shop.send("POST", "/vc/verify", json=body))
    assert report["verified"] and report["holder"] == bob.did, report["errors"]
    assert report["credentials"][0]["status"] == "active"

    replay = await shop.send("POST", "/vc/verify", json=body)
    fourth = await ok(await shop.send("POST", "/vc/challenges", json={}), 201)
    not_theirs = await bob.send(
        "POST", "/vc/verify", json={"presentation": presentation, "challenge": fourth["challenge"]}
    )
    assert not_theirs.status_code == 400, "only the verifier who asked spends its challenge"
    assert replay.status_code == 400 and "already used" in replay.json()["detail"]

    second = await ok(
        await shop.send("POST", "/vc/challenges", json={"domain": "shop.example"}), 201
    )
    elsewhere = await shop.send(
        "POST",
        "/vc/verify",
        json={
            "presentation": presentation,
            "challenge": second["challenge"],
            "domain": "evil.example",
        },
    )
    assert elsewhere.status_code == 400, "a challenge is good for its own domain"
    # Offline: the proof is bound to the challenge it was made for.
    offline = vcs.verify_presentation(
        presentation, challenge="another", domain="shop.example", now=now()
    )
    assert not offline.verified and "challenge" in offline.errors[0]

    # Alice holds a copy of the credential, but she is not its subject.
    third = await ok(await shop.send("POST", "/vc/challenges", json={}), 201)
    stolen = vcs.present(
        [credential],
        alice.did,
        alice.seed,
        challenge=third["challenge"],
        domain=None,
        created=now(),
    )
    report = await ok(
        await shop.send(
            "POST", "/vc/verify", json={"presentation": stolen, "challenge": third["challenge"]}
        )
    )
    assert not report["verified"] and "not the holder" in " ".join(report["errors"])


async def test_verification_reports_what_is_wrong(
    http: httpx.AsyncClient, node: Node, alice: Holder, bob: Holder
) -> None:
    credential = await issue_as(alice, bob.did)

    async def errors_of(document: Any) -> list[str]:
        report = await ok(await http.post("/vc/verify", json={"credential": document}))
        assert not report["verified"]
        return report["errors"]

    v1 = {**credential, "@context": ["https://www.w3.org/2018/credentials/v1"]}
    assert "@context" in (await errors_of(v1))[0]
    assert "type" in (await errors_of({**credential, "type": ["Thing"]}))[0]
    no_proof = {k: v for k, v in credential.items() if k != "proof"}
    assert "no proof" in (await errors_of(no_proof))[0]
    other_suite = copy.deepcopy(credential)
    other_suite["proof"]["cryptosuite"] = "eddsa-rdfc-2022"
    assert "cryptosuite" in (await errors_of(other_suite))[0]
    stranger = SigningKey.generate(hybrid=False)
    stranger_did = did_from_ed25519(stranger.verify_key.ed25519_bytes())
    claims_alice = vcs.build(alice.did, {"id": bob.did}, ["T"], valid_from=now())
    impostor = dataintegrity.sign(
        claims_alice,
        stranger.ed25519_seed(),
        dataintegrity.did_key_method(stranger_did),
        created=now(),
    )
    assert "not by the issuer" in " ".join(await errors_of(impostor))
    expired = vcs.issue(
        vcs.build(
            alice.did,
            {"id": bob.did},
            ["T"],
            valid_from=now() - timedelta(days=2),
            valid_until=now() - timedelta(days=1),
        ),
        alice.seed,
        created=now(),
    )
    assert "expired" in (await errors_of(expired))[0]
    future = vcs.issue(
        vcs.build(alice.did, {"id": bob.did}, ["T"], valid_from=now() + timedelta(days=1)),
        alice.seed,
        created=now(),
    )
    assert "not valid before" in (await errors_of(future))[0]
    # A list not yet published here is reported unchecked, not passed as active.
    report = vcs.verify_credential(credential, now=now(), status_lookup=lambda url: None)
    assert report.verified and report.status == "unchecked"
    too_big = {**credential, "padding": "x" * 70_000}
    assert (await http.post("/vc/verify", json={"credential": too_big})).status_code == 400
    not_json_dates = {**credential, "validFrom": "yesterday"}
    assert "RFC 3339" in (await errors_of(not_json_dates))[0]


async def test_challenges_expire(node: Node, bob: Holder) -> None:
    from anarq.kernel.errors import BadRequest
    from anarq.kernel.guard import Actor, Context
    from anarq.vc.models import VerifyRequest

    shop = Context(actor=Actor(id=bob.did, kind="identity"))
    svc = node.service("vc")
    given = svc.challenge(shop, None)
    presentation = vcs.present(
        [], bob.did, bob.seed, challenge=given.challenge, domain=None, created=now()
    )
    request = VerifyRequest(presentation=presentation, challenge=given.challenge)
    with later(node, timedelta(minutes=11)), pytest.raises(BadRequest, match="expired"):
        svc.verify(shop, request)


def test_status_lists_hold_131072_entries_and_round_trip() -> None:
    bits = statuslist.empty()
    for index in (0, 7, 8, 131_071):
        statuslist.set_bit(bits, index)
    encoded = statuslist.encode(bytes(bits))
    assert encoded.startswith("u") and len(encoded) < 200, "a sparse list compresses small"
    decoded = statuslist.decode(encoded)
    assert [i for i in (0, 1, 7, 8, 9, 131_071) if statuslist.is_set(decoded, i)] == [
        0,
        7,
        8,
        131_071,
    ]
    with pytest.raises(statuslist.StatusListInvalid):
        statuslist.decode("u" + "A" * 10)
    with pytest.raises(statuslist.StatusListInvalid):
        statuslist.decode(statuslist.encode(bytes(100)))  # fewer than 131,072 entries
    with pytest.raises(statuslist.StatusListInvalid):
        statuslist.decode(json.dumps("not multibase"))


async def test_a_list_published_from_an_old_version_cannot_undo_a_revocation(
    http: httpx.AsyncClient, alice: Holder, bob: Holder
) -> None:
    first = await issue_as(alice, bob.did, licence="A")
    second = await issue_as(alice, bob.did, licence="B")
    for credential in (first, second):
        await ok(await alice.send("POST", "/vc/credentials", json={"credential": credential}), 201)
    url = first["credentialStatus"]["statusListCredential"]
    assert second["credentialStatus"]["statusListCredential"] == url
    base = statuslist.decode((await fetch_list(http, url))["credentialSubject"]["encodedList"])

    def publication(index: str) -> dict[str, Any]:
        bits = bytearray(base)
        statuslist.set_bit(bits, int(index))
        unsigned = statuslist.credential(url, alice.did, bytes(bits))
        return vcs.issue(unsigned, alice.seed, created=now())

    path = f"/vc/status/{url.rsplit('/', 1)[-1]}"
    one = publication(first["credentialStatus"]["statusListIndex"])
    other = publication(second["credentialStatus"]["statusListIndex"])
    assert (await alice.send("PUT", path, json={"credential": one})).status_code == 200
    stale = await alice.send("PUT", path, json={"credential": other})
    assert stale.status_code == 400 and "never clear" in stale.json()["detail"]
    assert (await offline_report(http, first)).status == "revoked"
    assert (await offline_report(http, second)).status == "active"

"""sQuid: did:key identities, registration, and RFC 9421 signed requests."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageSigner, HTTPSignatureKeyResolver, algorithms

from anarq.kernel.guard import Context
from anarq.kernel.node import Node
from anarq.qerberos.service import QerberosService
from anarq.qlock import SigningKey
from anarq.sdk.signing import RequestSigner, _View
from anarq.squid.httpsig import COVERED, content_digest, sign_request


def signed(signer: RequestSigner, method: str, path: str, **kwargs: object) -> httpx.Request:
    request = httpx.Request(method, f"http://node.test{path}", **kwargs)  # type: ignore[arg-type]
    signer.sign(request)
    return request


async def register(
    http: httpx.AsyncClient, signer: RequestSigner, name: str = "alice"
) -> httpx.Response:
    body = {"name": name, "public_key": base64.b64encode(signer.key.verify_key.to_bytes()).decode()}
    return await http.send(signed(signer, "POST", "/squid/identities", json=body))


@pytest.fixture
def alice() -> RequestSigner:
    return RequestSigner.for_key(SigningKey.generate(hybrid=True))


async def test_identity_registers_itself_and_resolves(
    http: httpx.AsyncClient, alice: RequestSigner
) -> None:
    response = await register(http, alice)
    assert response.status_code == 201, response.text
    assert response.json()["did"] == alice.did
    assert response.json()["hybrid"] is True
    resolved = (await http.get(f"/squid/identities/{alice.did}")).json()
    assert resolved["registered"] is True
    assert resolved["did_document"]["id"] == alice.did
    assert resolved["did_document"]["keyAgreement"]
    me = await http.send(signed(alice, "GET", "/squid/me"))
    assert me.json()["name"] == "alice"


async def test_registering_twice_conflicts(http: httpx.AsyncClient, alice: RequestSigner) -> None:
    await register(http, alice)
    assert (await register(http, alice)).status_code == 409


async def test_hybrid_key_must_match_the_did(http: httpx.AsyncClient, alice: RequestSigner) -> None:
    other = SigningKey.generate(hybrid=True)
    body = {"name": "alice", "public_key": base64.b64encode(other.verify_key.to_bytes()).decode()}
    response = await http.send(signed(alice, "POST", "/squid/identities", json=body))
    assert response.status_code == 400


async def test_unsigned_request_to_protected_route_is_401(http: httpx.AsyncClient) -> None:
    assert (await http.get("/squid/me")).status_code == 401


async def test_replayed_request_is_refused(http: httpx.AsyncClient, alice: RequestSigner) -> None:
    await register(http, alice)
    request = signed(alice, "GET", "/squid/me")
    assert (await http.send(request)).status_code == 200
    replay = await http.send(request)
    assert replay.status_code == 401
    assert "replay" in replay.json()["detail"]


async def test_tampered_body_is_refused(http: httpx.AsyncClient, alice: RequestSigner) -> None:
    request = signed(alice, "POST", "/squid/identities", json={"name": "alice"})
    forged = httpx.Request(
        "POST", request.url, headers=request.headers, content=b'{"name": "mallory"}'
    )
    response = await http.send(forged)
    assert response.status_code == 401
    assert "Content-Digest" in response.json()["detail"]


async def test_a_digest_computed_ahead_is_signed_and_checked(
    http: httpx.AsyncClient, alice: RequestSigner
) -> None:
    await register(http, alice)
    body = b'{"name": "x"}'
    ahead = httpx.Request(
        "POST",
        "http://node.test/squid/identities",
        content=body,
        headers={"Content-Type": "application/json", "Content-Digest": content_digest(body)},
    )
    alice.sign(ahead)
    assert ahead.headers["Content-Digest"] == content_digest(body)
    assert (await http.send(ahead)).status_code != 401

    wrong = httpx.Request(
        "POST",
        "http://node.test/squid/identities",
        content=body,
        headers={"Content-Type": "application/json", "Content-Digest": content_digest(b"{}")},
    )
    alice.sign(wrong)
    response = await http.send(wrong)
    assert response.status_code == 401
    assert "Content-Digest" in response.json()["detail"]


async def test_stale_signature_is_refused(http: httpx.AsyncClient, alice: RequestSigner) -> None:
    await register(http, alice)
    request = httpx.Request("GET", "http://node.test/squid/me")
    sign_request(
        _View(request),
        did=alice.did,
        key=alice.key,
        body=None,
        created=datetime.now(UTC) - timedelta(minutes=10),
    )
    assert (await http.send(request)).status_code == 401


def ed25519_only(request: httpx.Request, did: str, key: SigningKey, **overrides: object) -> None:
    """Sign as a classical client would: one Ed25519 signature, no ML-DSA-65 beside it."""
    private = Ed25519PrivateKey.from_private_bytes(key.ed25519_seed())
    options: dict[str, object] = {
        "key_id": did,
        "created": datetime.now(UTC),
        "nonce": secrets.token_urlsafe(18),
        "label": "anarq",
        "covered_component_ids": COVERED,
    }
    options.update(overrides)
    HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=_Key(private)).sign(
        _View(request),
        **options,  # type: ignore[arg-type]
    )


class _Key(HTTPSignatureKeyResolver):
    def __init__(self, private: Ed25519PrivateKey) -> None:
        self.private = private

    def resolve_private_key(self, key_id: str) -> Ed25519PrivateKey:
        return self.private

    def resolve_public_key(self, key_id: str) -> object:
        return self.private.public_key()


async def test_classical_identity_signs_once(http: httpx.AsyncClient) -> None:
    bob = RequestSigner.for_key(SigningKey.generate(hybrid=False))
    assert (await register(http, bob, "bob")).status_code == 201
    request = httpx.Request("GET", "http://node.test/squid/me")
    ed25519_only(request, bob.did, bob.key)
    assert "anarq-pq" not in request.headers["Signature-Input"]
    response = await http.send(request)
    assert response.status_code == 200, response.text
    assert response.json()["hybrid"] is False


async def test_hybrid_identity_signs_with_both_halves(
    http: httpx.AsyncClient, alice: RequestSigner
) -> None:
    await register(http, alice)
    request = signed(alice, "POST", "/squid/identities", json={"name": "x"})
    labels = request.headers["Signature-Input"]
    assert 'anarq=("@method"' in labels and 'anarq-pq=("@method"' in labels
    assert 'alg="ml-dsa-65"' in labels
    me = await http.send(signed(alice, "GET", "/squid/me"))
    assert me.status_code == 200, me.text


async def test_hybrid_identity_cannot_be_downgraded_to_ed25519(
    http: httpx.AsyncClient, alice: RequestSigner
) -> None:
    await register(http, alice)
    request = httpx.Request("GET", "http://node.test/squid/me")
    ed25519_only(request, alice.did, alice.key)
    response = await http.send(request)
    assert response.status_code == 401
    assert "hybrid" in response.json()["detail"]

    # The full request with its ML-DSA-65 half removed is refused too.
    stripped = signed(alice, "GET", "/squid/me")
    for header in ("Signature-Input", "Signature"):
        value = stripped.headers[header]
        stripped.headers[header] = ", ".join(
            part for part in value.split(", ") if not part.startswith("anarq-pq=")
        )
    assert (await http.send(stripped)).status_code == 401


async def test_hybrid_halves_must_agree_and_both_verify(
    http: httpx.AsyncClient, alice: RequestSigner
) -> None:
    await register(http, alice)
    # The ML-DSA-65 half from another key.
    impostor = RequestSigner(did=alice.did, key=SigningKey.generate(hybrid=True))
    mixed = httpx.Request("GET", "http://node.test/squid/me")
    ed25519_only(mixed, alice.did, alice.key, tag="anarq", nonce="n" * 24)
    other = httpx.Request("GET", "http://node.test/squid/me")
    impostor.sign(other)
    pq_input = [
        part
        for part in other.headers["Signature-Input"].split(", ")
        if part.startswith("anarq-pq=")
    ]
    pq_sig = [
        part for part in other.headers["Signature"].split(", ") if part.startswith("anarq-pq=")
    ]
    mixed.headers["Signature-Input"] += ", " + pq_input[0]
    mixed.headers["Signature"] += ", " + pq_sig[0]
    response = await http.send(mixed)
    assert response.status_code == 401, response.text

    # Both halves valid but over different nonces: not the same request.
    nonce_a = httpx.Request("GET", "http://node.test/squid/me")
    sign_request(_View(nonce_a), did=alice.did, key=alice.key, body=None, nonce="a" * 24)
    nonce_b = httpx.Request("GET", "http://node.test/squid/me")
    sign_request(_View(nonce_b), did=alice.did, key=alice.key, body=None, nonce="b" * 24)
    spliced = httpx.Request("GET", "http://node.test/squid/me")
    for header in ("Signature-Input", "Signature"):
        ed = [p for p in nonce_a.headers[header].split(", ") if p.startswith("anarq=")]
        pq = [p for p in nonce_b.headers[header].split(", ") if p.startswith("anarq-pq=")]
        spliced.headers[header] = f"{ed[0]}, {pq[0]}"
    response = await http.send(spliced)
    assert response.status_code == 401
    assert "nonce" in response.json()["detail"]


async def test_signature_by_another_key_is_refused(
    http: httpx.AsyncClient, alice: RequestSigner
) -> None:
    await register(http, alice)
    impostor = RequestSigner(did=alice.did, key=SigningKey.generate(hybrid=False))
    assert (await http.send(signed(impostor, "GET", "/squid/me"))).status_code == 401


async def test_signature_must_cover_the_body(http: httpx.AsyncClient) -> None:
    bob = RequestSigner.for_key(SigningKey.generate(hybrid=False))
    request = httpx.Request("POST", "http://node.test/squid/identities", json={"name": "bob"})
    ed25519_only(request, bob.did, bob.key)
    response = await http.send(request)
    assert response.status_code == 401
    assert "content-digest" in response.json()["detail"].lower()


async def test_refused_authentication_is_audited(node: Node, http: httpx.AsyncClient) -> None:
    await http.get("/squid/me", headers={"Authorization": "Bearer anq_op_wrong"})
    audit: QerberosService = node.service("qerberos")
    audit.integrate()
    entries = audit.entries(Context.system(), limit=50)
    assert any(e.resource == "gateway:authentication:*" and e.verdict == "deny" for e in entries)


async def test_identity_acts_only_with_a_grant(
    http: httpx.AsyncClient, alice: RequestSigner, operator: dict[str, str]
) -> None:
    await register(http, alice)
    change = {"description": "written by alice"}
    refused = await http.send(signed(alice, "PATCH", "/node/profile", json=change))
    assert refused.status_code == 403
    grant = {
        "grantee": alice.did,
        "resource": "node:profile:self",
        "actions": ["write"],
        "purpose": "alice maintains the profile",
    }
    assert (await http.post("/qonsent/grants", json=grant, headers=operator)).status_code == 201
    allowed = await http.send(signed(alice, "PATCH", "/node/profile", json=change))
    assert allowed.status_code == 200, allowed.text


@pytest.mark.parametrize(
    "did",
    [
        "did:key:zzz",
        "did:web:example.org",
        "not-a-did-at-all",
        "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2do",
    ],
)
async def test_malformed_dids_are_4xx(http: httpx.AsyncClient, did: str) -> None:
    response = await http.get(f"/squid/identities/{did}")
    assert response.status_code in (400, 404, 422)
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_rotation_moves_to_the_committed_key_and_revocation_ends_it(
    http: httpx.AsyncClient,
) -> None:
    import hashlib

    current, upcoming, after = (SigningKey.generate(hybrid=False) for _ in range(3))
    alice = RequestSigner.for_key(current)

    def commitment(key: SigningKey) -> str:
        return hashlib.sha256(key.verify_key.to_bytes()).hexdigest()

    body = {"name": "alice", "next_key_hash": commitment(upcoming)}
    assert (
        await http.send(signed(alice, "POST", "/squid/identities", json=body))
    ).status_code == 201

    impostor_key = SigningKey.generate(hybrid=False)
    wrong = {
        "new_public_key": base64.b64encode(impostor_key.verify_key.to_bytes()).decode(),
        "next_key_hash": commitment(after),
    }
    refused = await http.send(
        signed(alice, "POST", f"/squid/identities/{alice.did}/rotate", json=wrong)
    )
    assert refused.status_code == 403

    right = {
        "new_public_key": base64.b64encode(upcoming.verify_key.to_bytes()).decode(),
        "next_key_hash": commitment(after),
    }
    rotated = await http.send(
        signed(alice, "POST", f"/squid/identities/{alice.did}/rotate", json=right)
    )
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["rotations"] == 1
    old = await http.send(signed(alice, "GET", "/squid/me"))
    assert old.status_code == 401, "the old key no longer signs for alice"
    alice_now = RequestSigner(did=alice.did, key=upcoming)
    assert (await http.send(signed(alice_now, "GET", "/squid/me"))).status_code == 200

    revoked = await http.send(signed(alice_now, "POST", f"/squid/identities/{alice.did}/revoke"))
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    after_revoke = await http.send(signed(alice_now, "GET", "/squid/me"))
    assert after_revoke.status_code == 401


def sub_request(
    root: RequestSigner, kind: str, name: str, **extra: object
) -> tuple[dict, SigningKey]:
    from anarq.qlock import encode_signature
    from anarq.qlock import sign as qsign
    from anarq.squid.didkey import did_from_ed25519
    from anarq.squid.service import sub_statement

    key = SigningKey.generate(hybrid=False)
    did = did_from_ed25519(key.verify_key.ed25519_bytes())
    proof = encode_signature(qsign(key, sub_statement(root.did, did)))
    return {"did": did, "type": kind, "name": name, "proof": proof, **extra}, key


async def test_root_creates_typed_sub_identities(
    http: httpx.AsyncClient, alice: RequestSigner
) -> None:
    await register(http, alice)
    body, _ = sub_request(alice, "DAO", "garden club")
    created = await http.send(
        signed(alice, "POST", f"/squid/identities/{alice.did}/subs", json=body)
    )
    assert created.status_code == 201, created.text
    dao = created.json()
    assert (dao["type"], dao["parent_did"], dao["governance"], dao["privacy"]) == (
        "DAO",
        alice.did,
        "dao",
        "dao",
    )
    minor, _ = sub_request(alice, "CONSENTIDA", "kid")
    kid = (
        await http.send(signed(alice, "POST", f"/squid/identities/{alice.did}/subs", json=minor))
    ).json()
    assert (kid["governance"], kid["privacy"]) == ("parent", "private")
    listed = await http.send(signed(alice, "GET", f"/squid/identities/{alice.did}/subs"))
    assert sorted(i["type"] for i in listed.json()) == ["CONSENTIDA", "DAO"]


async def test_sub_identity_needs_its_own_consent(
    http: httpx.AsyncClient, alice: RequestSigner
) -> None:
    await register(http, alice)
    body, _ = sub_request(alice, "DAO", "club")
    body["proof"] = sub_request(alice, "DAO", "other")[0]["proof"]  # signed by another key
    response = await http.send(
        signed(alice, "POST", f"/squid/identities/{alice.did}/subs", json=body)
    )
    assert response.status_code == 400


async def test_aid_link_is_hidden_but_provable(
    http: httpx.AsyncClient, alice: RequestSigner
) -> None:
    import hashlib
    import secrets

    await register(http, alice)
    salt = secrets.token_hex(16)
    commitment = hashlib.sha256(f"{alice.did}\n{salt}".encode()).hexdigest()
    body, _ = sub_request(alice, "AID", "nobody", link_commitment=commitment)
    created = await http.send(
        signed(alice, "POST", f"/squid/identities/{alice.did}/subs", json=body)
    )
    assert created.status_code == 201, created.text
    aid = created.json()
    assert aid["parent_did"] is None and aid["privacy"] == "anonymous"
    resolved = (await http.get(f"/squid/identities/{aid['did']}")).json()
    assert alice.did not in str(resolved)
    listed = await http.send(signed(alice, "GET", f"/squid/identities/{alice.did}/subs"))
    assert listed.json() == []
    proven = await http.post(
        "/squid/aid-links/verify", json={"aid": aid["did"], "root": alice.did, "salt": salt}
    )
    assert proven.json() == {"linked": True}
    wrong = await http.post(
        "/squid/aid-links/verify", json={"aid": aid["did"], "root": alice.did, "salt": "00" * 16}
    )
    assert wrong.json() == {"linked": False}


async def test_sub_identities_are_capped(
    node: Node, http: httpx.AsyncClient, alice: RequestSigner
) -> None:
    await register(http, alice)
    limit = node.kernel.settings.max_sub_identities
    for n in range(limit):
        body, _ = sub_request(alice, "ENTERPRISE", f"shop {n}")
        response = await http.send(
            signed(alice, "POST", f"/squid/identities/{alice.did}/subs", json=body)
        )
        assert response.status_code == 201, response.text
    body, _ = sub_request(alice, "ENTERPRISE", "one too many")
    refused = await http.send(
        signed(alice, "POST", f"/squid/identities/{alice.did}/subs", json=body)
    )
    assert refused.status_code == 409


async def test_browser_signs_in_with_a_challenge_and_logs_out(
    http: httpx.AsyncClient, alice: RequestSigner
) -> None:
    from anarq.qlock import encode_signature
    from anarq.qlock import sign as qsign

    await register(http, alice)
    challenge = (await http.get("/squid/sessions/challenge")).json()
    signature = encode_signature(qsign(alice.key, challenge["sign"].encode()))
    body = {"did": alice.did, "challenge": challenge["challenge"], "signature": signature}
    opened = await http.post("/squid/sessions", json=body)
    assert opened.status_code == 201, opened.text
    session = {"Authorization": f"Bearer {opened.json()['token']}"}
    assert (await http.get("/squid/me", headers=session)).json()["did"] == alice.did
    reused = await http.post("/squid/sessions", json=body)
    assert reused.status_code == 401, "a challenge is spent once"
    assert (await http.delete("/squid/sessions/current", headers=session)).status_code == 204
    assert (await http.get("/squid/me", headers=session)).status_code == 401


async def test_challenge_signed_by_another_key_is_refused(
    http: httpx.AsyncClient, alice: RequestSigner
) -> None:
    from anarq.qlock import encode_signature
    from anarq.qlock import sign as qsign

    await register(http, alice)
    challenge = (await http.get("/squid/sessions/challenge")).json()
    other = SigningKey.generate(hybrid=False)
    body = {
        "did": alice.did,
        "challenge": challenge["challenge"],
        "signature": encode_signature(qsign(other, challenge["sign"].encode())),
    }
    assert (await http.post("/squid/sessions", json=body)).status_code == 401


@pytest.mark.parametrize(
    ("signature_input", "signature"),
    [
        ("!!!", "anarq=:AAAA:"),
        ('anarq=("@method");keyid="x", anarq-pq=("@method")', "anarq=:AAAA:"),
        ('anarq=("@method");keyid="did:key:z6Mk";tag="anarq"', "anarq=:AAAA:, anarq-pq=:AA:"),
    ],
)
async def test_malformed_signature_headers_are_401(
    http: httpx.AsyncClient, signature_input: str, signature: str
) -> None:
    response = await http.get(
        "/squid/me", headers={"Signature-Input": signature_input, "Signature": signature}
    )
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")

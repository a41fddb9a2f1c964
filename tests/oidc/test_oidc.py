"""Sign in with sQuid: a real OpenID Connect relying party (Authlib's client) through the
whole browser-less code flow, on both backends; consent as a Qonsent grant; bad input."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
import pytest
from authlib.integrations.base_client.errors import OAuthError as RelyingPartyError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import func, select

from anarq.kernel.node import Node
from anarq.kernel.settings import Settings
from anarq.oidc import tables
from anarq.qerberos import tables as audit_tables
from tests.qdrive.test_drive import Person
from tests.squid.test_identities import sub_request
from tests.support.money import later

ISSUER = "http://node.test"
APP = "https://app.example/callback"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"public_url": ISSUER})


@pytest.fixture
async def alice(http: httpx.AsyncClient) -> Person:
    return await Person(http, "alice").register()


@pytest.fixture
async def dev(http: httpx.AsyncClient) -> Person:
    return await Person(http, "app developer").register()


async def register_client(dev: Person, **fields: Any) -> dict[str, Any]:
    body = {"name": "Example App", "redirect_uris": [APP], **fields}
    response = await dev.send("POST", "/oidc/clients", json=body)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def relying_party(http: httpx.AsyncClient, client: dict[str, Any], **kwargs: Any) -> Any:
    """Authlib's OAuth 2 / OpenID client, talking to the node's ASGI app."""
    method = client["auth_method"]
    app = http._transport.app  # type: ignore[attr-defined]
    return AsyncOAuth2Client(
        client_id=client["client_id"],
        client_secret=client["client_secret"],
        token_endpoint_auth_method=method,
        redirect_uri=client["redirect_uris"][0],
        code_challenge_method="S256",
        transport=httpx2.ASGITransport(app=app),
        base_url=ISSUER,
        **kwargs,
    )


async def sign_in(
    http: httpx.AsyncClient,
    person: Person,
    client: dict[str, Any],
    scope: str = "openid profile offline_access",
    *,
    as_identity: str | None = None,
    approve: bool = True,
) -> tuple[Any, dict[str, Any], str]:
    """The full flow: the app's authorization URL, the person's consent, the app's token
    request. The relying party, its token and the nonce."""
    config = (await http.get("/.well-known/openid-configuration")).json()
    rp = relying_party(http, client, scope=scope)
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    url, state = rp.create_authorization_url(
        config["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    landed = await person.send("GET", url.removeprefix(ISSUER))
    if landed.status_code == 200:
        pending = landed.json()
        body: dict[str, Any] = {"request_id": pending["request_id"], "approve": approve}
        if as_identity:
            body["identity"] = as_identity
        landed = await person.send("POST", "/oidc/authorize/consent", json=body)
    assert landed.status_code == 303, landed.text
    back = landed.headers["location"]
    assert back.startswith(APP) or back.startswith(client["redirect_uris"][0])
    query = parse_qs(urlsplit(back).query)
    assert query["state"] == [state] and query["iss"] == [ISSUER]
    if not approve:
        return rp, {"error": query["error"][0]}, nonce
    token = await rp.fetch_token(
        config["token_endpoint"], authorization_response=back, code_verifier=verifier
    )
    return rp, token, nonce


async def id_claims(http: httpx.AsyncClient, id_token: str) -> dict[str, Any]:
    """Verify an ID token as a relying party does: signature against the JWKS, then the
    claims OpenID Connect Core §3.1.3.7 requires."""
    keys = KeySet.import_key_set((await http.get("/oidc/jwks")).json())
    header_alg = jwt.decode(id_token, keys, algorithms=["EdDSA", "Ed25519", "RS256"]).header["alg"]
    decoded = jwt.decode(id_token, keys, algorithms=[header_alg])
    return dict(decoded.claims)


def count(node: Node, table: Any, *where: Any) -> int:
    with node.kernel.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def denials(node: Node) -> int:
    a = audit_tables.entries
    return count(node, a, a.c.verdict == "deny")


async def test_discovery_and_jwks_describe_the_provider(http: httpx.AsyncClient) -> None:
    config = (await http.get("/.well-known/openid-configuration")).json()
    assert config["issuer"] == ISSUER
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert config["subject_types_supported"] == ["pairwise"]
    assert {"EdDSA", "RS256"} <= set(config["id_token_signing_alg_values_supported"])
    assert config["token_endpoint"] == f"{ISSUER}/oidc/token"
    keys = (await http.get("/oidc/jwks")).json()["keys"]
    assert sorted(key["kty"] for key in keys) == ["OKP", "RSA"]
    assert all("d" not in key and "p" not in key for key in keys), "no private parts published"


async def test_a_relying_party_signs_a_person_in_with_the_code_flow_and_pkce(
    http: httpx.AsyncClient, node: Node, alice: Person, dev: Person
) -> None:
    client = await register_client(dev)
    rp, token, nonce = await sign_in(http, alice, client)
    assert token["token_type"] == "Bearer" and token["refresh_token"]
    claims = await id_claims(http, token["id_token"])
    assert claims["iss"] == ISSUER and claims["aud"] == client["client_id"]
    assert claims["nonce"] == nonce and claims["name"] == "alice"
    assert claims["exp"] > claims["iat"] and claims["amr"] == ["swk"]
    assert alice.did not in str(claims), "the DID is released only with the did scope"

    info = (await rp.get("/oidc/userinfo")).json()
    assert info == {"sub": claims["sub"], "name": "alice"}

    # The consent is a Qonsent grant to the client's DID, with a signed receipt.
    grants = (await alice.send("GET", "/qonsent/granted")).json()
    consent = [g for g in grants if g["grantee"] == client["grantee"]]
    assert consent and consent[0]["resource"] == f"oidc:claims:{alice.did}"

    # Signing in again skips the consent screen and gives the same subject.
    _, again, _ = await sign_in(http, alice, client)
    assert (await id_claims(http, again["id_token"]))["sub"] == claims["sub"]

    # Refresh tokens rotate; presenting a used one revokes its whole family.
    refreshed = await rp.refresh_token(f"{ISSUER}/oidc/token", refresh_token=token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    assert (await rp.get("/oidc/userinfo")).status_code == 200
    with pytest.raises(RelyingPartyError, match="already used"):
        await rp.refresh_token(f"{ISSUER}/oidc/token", refresh_token=token["refresh_token"])
    refused = await rp.get("/oidc/userinfo")
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"


async def test_revoking_the_grant_in_qonsent_ends_the_apps_access(
    http: httpx.AsyncClient, alice: Person, dev: Person
) -> None:
    client = await register_client(dev)
    rp, token, _ = await sign_in(http, alice, client)
    grants = (await alice.send("GET", "/qonsent/granted")).json()
    grant = next(g for g in grants if g["grantee"] == client["grantee"])
    assert (await alice.send("DELETE", f"/qonsent/grants/{grant['id']}")).status_code in (200, 204)

    assert (await rp.get("/oidc/userinfo")).status_code == 401
    with pytest.raises(RelyingPartyError, match="consent was revoked"):
        await rp.refresh_token(f"{ISSUER}/oidc/token", refresh_token=token["refresh_token"])
    assert (await alice.send("GET", "/oidc/consents")).json() == []
    # Signing in again asks for consent again.
    config = (await http.get("/.well-known/openid-configuration")).json()
    url, _ = relying_party(http, client, scope="openid").create_authorization_url(
        config["authorization_endpoint"], code_verifier=secrets.token_urlsafe(48)
    )
    assert (await alice.send("GET", url.removeprefix(ISSUER))).status_code == 200


async def test_withdrawing_a_consent_revokes_tokens(
    http: httpx.AsyncClient, alice: Person, dev: Person
) -> None:
    client = await register_client(dev)
    rp, _, _ = await sign_in(http, alice, client)
    listed = (await alice.send("GET", "/oidc/consents")).json()
    assert [c["client_id"] for c in listed] == [client["client_id"]]
    gone = await alice.send("DELETE", f"/oidc/consents/{client['client_id']}")
    assert gone.status_code == 204
    assert (await rp.get("/oidc/userinfo")).status_code == 401


async def test_subjects_are_pairwise_and_the_did_is_released_only_on_request(
    http: httpx.AsyncClient, alice: Person, dev: Person
) -> None:
    one = await register_client(dev, name="One")
    two = await register_client(dev, name="Two")
    _, first, _ = await sign_in(http, alice, one, "openid")
    _, second, _ = await sign_in(http, alice, two, "openid did")
    sub_one = (await id_claims(http, first["id_token"]))["sub"]
    two_claims = await id_claims(http, second["id_token"])
    assert sub_one != two_claims["sub"], "two apps cannot correlate the person by subject"
    assert two_claims["did"] == alice.did
    assert "refresh_token" not in first, "no offline_access, no refresh token"


async def test_a_person_signs_in_as_one_of_their_sub_identities(
    http: httpx.AsyncClient, alice: Person, dev: Person
) -> None:
    body, _ = sub_request(alice.signer, "ENTERPRISE", "alice at work")
    made = await alice.send("POST", f"/squid/identities/{alice.did}/subs", json=body)
    assert made.status_code == 201, made.text
    client = await register_client(dev)
    rp, token, _ = await sign_in(http, alice, client, "openid profile did", as_identity=body["did"])
    info = (await rp.get("/oidc/userinfo")).json()
    assert info["did"] == body["did"] and info["name"] == "alice at work"
    assert (await id_claims(http, token["id_token"]))["sub"] == info["sub"]
    mallory = await Person(http, "mallory").register()
    config = (await http.get("/.well-known/openid-configuration")).json()
    url, _ = relying_party(http, client, scope="openid").create_authorization_url(
        config["authorization_endpoint"], code_verifier=secrets.token_urlsafe(48)
    )
    pending = (await mallory.send("GET", url.removeprefix(ISSUER))).json()
    stolen = await mallory.send(
        "POST",
        "/oidc/authorize/consent",
        json={"request_id": pending["request_id"], "approve": True, "identity": body["did"]},
    )
    assert stolen.status_code == 403, "nobody signs in as someone else's sub-identity"

    # Nor answers (or spends) someone else's consent request.
    alices = (await alice.send("GET", url.removeprefix(ISSUER))).json()
    hijack = await mallory.send(
        "POST",
        "/oidc/authorize/consent",
        json={"request_id": alices["request_id"], "approve": True},
    )
    assert hijack.status_code == 404
    answered = await alice.send(
        "POST",
        "/oidc/authorize/consent",
        json={"request_id": alices["request_id"], "approve": True},
    )
    assert answered.status_code == 303, "alice's request is still hers to answer"


async def test_a_public_client_with_rs256_and_a_refusal(
    http: httpx.AsyncClient, node: Node, alice: Person, dev: Person
) -> None:
    client = await register_client(dev, auth_method="none", id_token_alg="RS256")
    assert client["client_secret"] is None
    _, token, _ = await sign_in(http, alice, client, "openid")
    keys = KeySet.import_key_set((await http.get("/oidc/jwks")).json())
    decoded = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
    assert decoded.header["alg"] == "RS256" and decoded.claims["aud"] == client["client_id"]

    other = await register_client(dev, name="Other")
    before = count(node, tables.codes)
    _, refused, _ = await sign_in(http, alice, other, "openid", approve=False)
    assert refused == {"error": "access_denied"}
    assert count(node, tables.codes) == before, "a refusal issues no code"


# Bad input -------------------------------------------------------------------------------


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return verifier, challenge.decode()


def authorization(client: dict[str, Any], challenge: str, **extra: str) -> dict[str, str]:
    """An authorization request's parameters, as a relying party sends them."""
    return {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": APP,
        "scope": "openid",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


async def code_for(person: Person, client: dict[str, Any], challenge: str) -> str:
    params = authorization(client, challenge, state="s1")
    landed = await person.send("GET", "/oidc/authorize", params=params)
    if landed.status_code == 200:
        landed = await person.send(
            "POST",
            "/oidc/authorize/consent",
            json={"request_id": landed.json()["request_id"], "approve": True},
        )
    assert landed.status_code == 303, landed.text
    return parse_qs(urlsplit(landed.headers["location"]).query)["code"][0]


async def exchange(
    http: httpx.AsyncClient, client: dict[str, Any], code: str, verifier: str, **extra: str
) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": APP,
        "code_verifier": verifier,
        **extra,
    }
    auth = (client["client_id"], client["client_secret"])
    return await http.post("/oidc/token", data=form, auth=auth)


async def test_codes_are_bound_to_pkce_the_client_the_redirect_and_one_use(
    http: httpx.AsyncClient, node: Node, alice: Person, dev: Person
) -> None:
    client = await register_client(dev)
    other = await register_client(dev, name="Other")
    verifier, challenge = pkce()
    code = await code_for(alice, client, challenge)
    denied_before = denials(node)

    wrong_verifier = await exchange(http, client, code, pkce()[0])
    assert wrong_verifier.status_code == 400
    assert wrong_verifier.json()["error"] == "invalid_grant"
    assert "PKCE" in wrong_verifier.json()["error_description"]
    assert wrong_verifier.headers["content-type"].startswith("application/problem+json")
    assert count(node, tables.tokens) == 0, "nothing issued"
    assert denials(node) > denied_before, "the refusal is audited"

    # The code was spent by that attempt: an attacker's failed try burns it.
    code = await code_for(alice, client, challenge)
    stolen = await exchange(http, other, code, verifier)
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    redirect = await exchange(http, client, code, verifier, redirect_uri="https://evil.example/")
    assert redirect.status_code == 400 and "redirect_uri" in redirect.json()["error_description"]

    code = await code_for(alice, client, challenge)
    issued = await exchange(http, client, code, verifier)
    assert issued.status_code == 200, issued.text
    assert issued.headers["cache-control"] == "no-store"
    access = issued.json()["access_token"]
    replay = await exchange(http, client, code, verifier)
    assert replay.status_code == 400 and "already used" in replay.json()["error_description"]
    userinfo = await http.get("/oidc/userinfo", headers={"Authorization": f"Bearer {access}"})
    assert userinfo.status_code == 401, "a replayed code revokes what it gave"

    code = await code_for(alice, client, challenge)
    with later(node, timedelta(minutes=2)):
        expired = await exchange(http, client, code, verifier)
    assert expired.status_code == 400 and "expired" in expired.json()["error_description"]


async def test_client_authentication_and_malformed_token_requests(
    http: httpx.AsyncClient, node: Node, alice: Person, dev: Person
) -> None:
    client = await register_client(dev)
    verifier, challenge = pkce()
    code = await code_for(alice, client, challenge)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": APP,
        "code_verifier": verifier,
    }
    before = denials(node)
    wrong = await http.post("/oidc/token", data=form, auth=(client["client_id"], "not-it"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert denials(node) > before, "a failed client authentication is audited"
    unknown = await http.post("/oidc/token", data=form, auth=("c_nobody", "x"))
    assert unknown.status_code == 401
    posted = await http.post("/oidc/token", data={**form, "client_id": client["client_id"]})
    assert posted.status_code == 401, "a confidential client must authenticate"
    as_json = await http.post("/oidc/token", json=form, auth=(client["client_id"], "x"))
    assert as_json.status_code == 415
    doubled = await http.post(
        "/oidc/token",
        content=f"grant_type=authorization_code&code={code}&code=again",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=(client["client_id"], client["client_secret"]),
    )
    assert doubled.status_code == 400 and "more than once" in doubled.json()["detail"]
    grant_type = await http.post(
        "/oidc/token",
        data={**form, "grant_type": "password"},
        auth=(client["client_id"], client["client_secret"]),
    )
    assert grant_type.json()["error"] == "unsupported_grant_type"
    no_verifier = await http.post(
        "/oidc/token",
        data={k: v for k, v in form.items() if k != "code_verifier"},
        auth=(client["client_id"], client["client_secret"]),
    )
    assert no_verifier.status_code == 400 and "PKCE" in no_verifier.json()["error_description"]
    before = denials(node)
    garbage = await http.get("/oidc/userinfo", headers={"Authorization": "Bearer eyJ.not.a.token"})
    assert garbage.status_code == 401 and garbage.json()["error"] == "invalid_token"
    assert denials(node) == before + 1, "a refused access token is audited"
    assert (await http.get("/oidc/userinfo")).status_code == 401
    assert count(node, tables.tokens) == 0


async def test_authorization_requests_that_are_refused(
    http: httpx.AsyncClient, node: Node, alice: Person, dev: Person
) -> None:
    client = await register_client(dev)
    _, challenge = pkce()
    base = authorization(client, challenge, state="xyz")

    async def authorize(**changes: str | None) -> httpx.Response:
        params = {k: v for k, v in {**base, **changes}.items() if v is not None}
        return await alice.send("GET", "/oidc/authorize", params=params)

    # Not redirected: the client or its redirect URI cannot be trusted.
    before = denials(node)
    unknown = await authorize(client_id="c_nobody")
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_client"
    assert denials(node) == before + 1, "a refused authorization is audited"
    elsewhere = await authorize(redirect_uri="https://evil.example/cb")
    assert elsewhere.status_code == 400 and "redirect_uri" in elsewhere.json()["detail"]

    # Sent back to the client, with the state and the reason.
    async def sent_back(**changes: str | None) -> str:
        response = await authorize(**changes)
        assert response.status_code == 303, response.text
        query = parse_qs(urlsplit(response.headers["location"]).query)
        assert query["state"] == ["xyz"]
        return query["error"][0]

    assert await sent_back(code_challenge=None) == "invalid_request"
    assert await sent_back(code_challenge_method="plain") == "invalid_request"
    assert await sent_back(response_type="token") == "unsupported_response_type"
    assert await sent_back(scope="profile") == "invalid_scope"
    assert await sent_back(scope="openid email") == "invalid_scope"
    assert await sent_back(prompt="none") == "consent_required"
    anonymous = await http.get("/oidc/authorize", params={**base, "prompt": "none"})
    assert parse_qs(urlsplit(anonymous.headers["location"]).query)["error"] == ["login_required"]
    assert (await http.get("/oidc/authorize", params=base)).status_code == 401


async def test_client_registration_is_validated_and_owned(
    http: httpx.AsyncClient, alice: Person, dev: Person
) -> None:
    async def refused(**fields: Any) -> httpx.Response:
        body = {"name": "X", "redirect_uris": [APP], **fields}
        return await dev.send("POST", "/oidc/clients", json=body)

    assert (await refused(redirect_uris=["http://example.com/cb"])).status_code == 422
    assert (await refused(redirect_uris=["https://a.example/cb#frag"])).status_code == 422
    assert (await refused(redirect_uris=["javascript:alert(1)"])).status_code == 422
    assert (await refused(id_token_alg="HS256")).status_code == 422
    assert (await refused(scopes=["profile"])).status_code == 422
    assert (
        await http.post("/oidc/clients", json={"name": "X", "redirect_uris": [APP]})
    ).status_code == 401
    native = await register_client(dev, redirect_uris=["http://127.0.0.1:8765/cb"])
    assert native["redirect_uris"] == ["http://127.0.0.1:8765/cb"]

    client = await register_client(dev)
    assert client["grantee"].startswith("did:web:node.test:oidc:clients:")
    document = (await http.get(f"/oidc/clients/{client['client_id']}/did.json")).json()
    assert document["id"] == client["grantee"] and document["controller"] == dev.did
    assert [c["client_id"] for c in (await alice.send("GET", "/oidc/clients")).json()] == []
    assert (await alice.send("DELETE", f"/oidc/clients/{client['client_id']}")).status_code == 403
    assert (await dev.send("DELETE", f"/oidc/clients/{client['client_id']}")).status_code == 204
    assert (await http.get(f"/oidc/clients/{client['client_id']}/did.json")).status_code == 404


async def test_rotated_keys_still_verify_earlier_tokens(
    http: httpx.AsyncClient, operator: dict[str, str], alice: Person, dev: Person
) -> None:
    client = await register_client(dev)
    _, token, _ = await sign_in(http, alice, client, "openid")
    assert len((await http.get("/oidc/jwks")).json()["keys"]) == 2
    rotated = await http.post("/oidc/keys/rotate", headers=operator)
    assert rotated.status_code == 200, rotated.text
    assert (await alice.send("POST", "/oidc/keys/rotate")).status_code == 403
    keys = (await http.get("/oidc/jwks")).json()["keys"]
    assert len(keys) == 4, "the retired keys stay published"
    assert (await id_claims(http, token["id_token"]))["aud"] == client["client_id"]
    _, fresh, _ = await sign_in(http, alice, client, "openid")
    kid = jwt.decode(
        fresh["id_token"], KeySet.import_key_set({"keys": keys}), algorithms=["EdDSA"]
    ).header["kid"]
    assert kid in rotated.json()["kids"]


async def test_id_token_hints_are_checked(
    http: httpx.AsyncClient, alice: Person, dev: Person
) -> None:
    client = await register_client(dev)
    other = await register_client(dev, name="Other")
    _, token, _ = await sign_in(http, alice, client, "openid")
    _, other_token, _ = await sign_in(http, alice, other, "openid")
    _, challenge = pkce()
    base = authorization(client, challenge, prompt="none")

    async def error_for(person: Person, hint: str) -> str | None:
        response = await person.send(
            "GET", "/oidc/authorize", params={**base, "id_token_hint": hint}
        )
        assert response.status_code == 303, response.text
        query = parse_qs(urlsplit(response.headers["location"]).query)
        return query["error"][0] if "error" in query else None

    assert await error_for(alice, token["id_token"]) is None, "silent sign-in with a good hint"
    header, _payload, signature = token["id_token"].split(".")
    forged = ".".join(
        [header, base64.urlsafe_b64encode(b'{"sub":"x"}').decode().rstrip("="), signature]
    )
    assert await error_for(alice, forged) == "invalid_request"
    assert await error_for(alice, "not-a-jwt") == "invalid_request"
    assert await error_for(alice, other_token["id_token"]) == "invalid_request", "wrong audience"
    bob = await Person(http, "bob").register()
    assert await error_for(bob, token["id_token"]) == "login_required"

"""Qwallet through the HTTP API: native assets, paying by DID, issuing, batches, bad input."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from anarq.kernel.node import Node
from anarq.qwallet import tables
from tests.qdrive.test_drive import Person

PI = 10**8  # PI has 8 decimals


@pytest.fixture
async def alice(http: httpx.AsyncClient) -> Person:
    return await Person(http, "alice").register()


@pytest.fixture
async def bob(http: httpx.AsyncClient) -> Person:
    return await Person(http, "bob").register()


async def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def funded(http: httpx.AsyncClient, operator: dict[str, str], who: Person, pi: int) -> None:
    minted = await http.post(
        "/qwallet/assets/PI/mint",
        json={"id": f"mint-{who.name}", "to": who.did, "amount": str(pi * PI)},
        headers=operator,
    )
    await ok(minted, 201)


def counts(node: Node) -> dict[str, int]:
    with node.kernel.db.read() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in tables.TABLES
        }


async def test_native_assets_exist_with_the_platform_fee(http: httpx.AsyncClient) -> None:
    assets = {a["code"]: a for a in await ok(await http.get("/qwallet/assets"))}
    assert assets["QTOKEN"]["scale"] == 18 and assets["PI"]["scale"] == 8
    assert assets["PI"]["fee_bps"] == 50 and assets["PI"]["supply"] == "0"


async def test_pay_by_did_with_fee_history_and_idempotency(
    http: httpx.AsyncClient, operator: dict[str, str], alice: Person, bob: Person, node: Node
) -> None:
    await funded(http, operator, alice, 10)
    pay = {"id": "rent-2026-11", "to": bob.did, "asset": "PI", "amount": str(2 * PI)}
    made = await ok(await alice.send("POST", "/qwallet/pay", json=pay), 201)
    assert made["amount"] == str(2 * PI) and made["result"] == "ok"
    again = await ok(await alice.send("POST", "/qwallet/pay", json=pay), 200)
    assert again["result"] == "exists" and again["timestamp"] == made["timestamp"]

    [mine] = await ok(await alice.send("GET", "/qwallet/accounts"))
    [theirs] = await ok(await bob.send("GET", "/qwallet/accounts"))
    assert int(mine["balance"]) == 8 * PI
    assert int(theirs["balance"]) == 2 * PI - 2 * PI // 200  # 0.5 % paid by the payee

    page = await ok(await bob.send("GET", f"/qwallet/accounts/{theirs['id']}/transfers"))
    assert [t["id"] for t in page["transfers"]] == ["rent-2026-11.fee", "rent-2026-11"]
    # Bob sees his transfer; a third party does not.
    assert (await bob.send("GET", "/qwallet/transfers/rent-2026-11")).status_code == 200
    carol = await Person(http, "carol").register()
    assert (await carol.send("GET", "/qwallet/transfers/rent-2026-11")).status_code == 404
    assert (await carol.send("GET", f"/qwallet/accounts/{mine['id']}")).status_code == 403
    books = await ok(await http.get("/qwallet/books", headers=operator))
    assert books["ok"], books["problems"]


async def test_refusals_are_problems_and_change_nothing(
    http: httpx.AsyncClient, operator: dict[str, str], alice: Person, bob: Person, node: Node
) -> None:
    await funded(http, operator, alice, 1)
    before = counts(node)
    too_much = {"id": "big", "to": bob.did, "asset": "PI", "amount": str(2 * PI)}
    response = await alice.send("POST", "/qwallet/pay", json=too_much)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem["result"] == "exceeds_credits"
    unknown = {"id": "x", "to": "did:key:z6MkNobodyHere", "asset": "PI", "amount": "1"}
    assert (await alice.send("POST", "/qwallet/pay", json=unknown)).status_code == 404
    for bad in (
        {"id": "has.dot", "to": bob.did, "asset": "PI", "amount": "1"},
        {"id": "neg", "to": bob.did, "asset": "PI", "amount": "-1"},
        {"id": "float", "to": bob.did, "asset": "PI", "amount": 1.5},
        {"id": "huge", "to": bob.did, "asset": "PI", "amount": str(2**128)},
        {"id": "asset", "to": bob.did, "asset": "pi", "amount": "1"},
    ):
        response = await alice.send("POST", "/qwallet/pay", json=bad)
        assert response.status_code == 422, (bad, response.text)
    # Someone else's mint is refused: PI is the node's.
    stolen = {"id": "m", "to": alice.did, "amount": "5"}
    response = await alice.send("POST", "/qwallet/assets/PI/mint", json=stolen)
    assert (
        response.status_code == 403 and response.json()["result"] == "debit_account_not_authorized"
    )
    # Not even Bob's account, which a payment that went through would have opened.
    assert counts(node) == before


async def test_identity_issues_a_capped_asset_and_mints_it(
    http: httpx.AsyncClient, alice: Person, bob: Person
) -> None:
    issued = await ok(
        await alice.send(
            "POST",
            "/qwallet/assets",
            json={"code": "ACORN", "name": "Acorns", "scale": 0, "supply_cap": "100"},
        ),
        201,
    )
    assert issued["issuer"] == alice.did and issued["supply_cap"] == "100"
    mint = {"id": "m1", "to": bob.did, "amount": "100"}
    await ok(await alice.send("POST", "/qwallet/assets/ACORN/mint", json=mint), 201)
    over = await alice.send(
        "POST", "/qwallet/assets/ACORN/mint", json={"id": "m2", "to": bob.did, "amount": "1"}
    )
    assert over.status_code == 422 and over.json()["result"] == "exceeds_supply_cap"
    assert (await ok(await http.get("/qwallet/assets/ACORN")))["supply"] == "100"
    taken = await bob.send("POST", "/qwallet/assets/ACORN/mint", json={**mint, "id": "m3"})
    assert taken.status_code == 403
    again = await alice.send(
        "POST", "/qwallet/assets", json={"code": "ACORN", "name": "x", "scale": 0}
    )
    assert again.status_code == 409


async def test_batch_reports_only_what_was_not_created(
    http: httpx.AsyncClient, operator: dict[str, str], alice: Person, bob: Person
) -> None:
    await funded(http, operator, alice, 5)
    src = (await ok(await alice.send("POST", "/qwallet/accounts", json={"asset": "PI"}), 201))["id"]
    dst = (await ok(await bob.send("POST", "/qwallet/accounts", json={"asset": "PI"}), 201))["id"]
    secret = b"s3cret"
    transfers = [
        {"id": "b1", "debit_account": src, "credit_account": dst, "amount": "100"},
        {"id": "b2", "debit_account": dst, "credit_account": src, "amount": "1"},  # bob's
        {
            "id": "h1",
            "debit_account": src,
            "credit_account": dst,
            "amount": "500",
            "flags": ["pending"],
            "timeout": 600,
            "hashlock": hashlib.sha256(secret).hexdigest(),
        },
    ]
    result = await ok(await alice.send("POST", "/qwallet/batches", json={"transfers": transfers}))
    assert result == {
        "created": 2,
        "results": [{"index": 1, "id": "b2", "result": "debit_account_not_authorized"}],
    }
    # Bob claims the hash-locked hold with the secret.
    claim = {
        "id": "h1-claim",
        "pending_id": "h1",
        "flags": ["post_pending_transfer"],
        "preimage": secret.hex(),
    }
    await ok(await bob.send("POST", "/qwallet/transfers", json=claim), 201)
    held = await ok(await alice.send("GET", "/qwallet/transfers/h1"))
    assert held["pending_state"] == "posted"
    # An account opened without the no-overdraft flag gets it all the same: an identity
    # cannot make money by going below zero.
    loose = await ok(
        await alice.send(
            "POST", "/qwallet/accounts", json={"asset": "PI", "name": "x", "flags": []}
        ),
        201,
    )
    assert loose["flags"] == ["debits_must_not_exceed_credits"]
    overdraw = {"id": "o1", "debit_account": loose["id"], "credit_account": dst, "amount": "1"}
    refused = await alice.send("POST", "/qwallet/transfers", json=overdraw)
    assert refused.status_code == 422 and refused.json()["result"] == "exceeds_credits"
    too_big = {"transfers": [transfers[0]] * 8191}
    assert (await alice.send("POST", "/qwallet/batches", json=too_big)).status_code == 422


async def test_nft_mint_send_and_provenance(
    http: httpx.AsyncClient, alice: Person, bob: Person
) -> None:
    token = await ok(
        await alice.send(
            "POST", "/qwallet/nfts", json={"name": "Sunrise #1", "metadata": {"cid": "bafy"}}
        ),
        201,
    )
    sent = await ok(
        await alice.send("POST", f"/qwallet/nfts/{token['id']}/send", json={"to": bob.did})
    )
    assert sent["owner"] == bob.did
    assert [(e["kind"], e["to_did"]) for e in sent["provenance"]] == [
        ("mint", alice.did),
        ("transfer", bob.did),
    ]
    # Alice no longer holds it: she cannot send it again.
    response = await alice.send("POST", f"/qwallet/nfts/{token['id']}/send", json={"to": alice.did})
    assert response.status_code == 403
    assert [t["id"] for t in await ok(await bob.send("GET", "/qwallet/nfts"))] == [token["id"]]

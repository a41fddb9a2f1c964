"""Qmarket through the HTTP API, on both backends: escrowed purchases of files, tokens and
services; delivery and settlement together; fees, royalties, refunds, disputes, deadlines,
licences, reviews, search, and bad input that changes nothing."""

from __future__ import annotations

import copy
import io
import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select

from anarq.kernel.node import Node
from anarq.qmarket import licence, tables
from anarq.qmarket.service import MarketService
from anarq.qonsent import tables as qonsent_tables
from anarq.qwallet import tables as wallet_tables
from tests.qdrive.test_drive import Person
from tests.qpic.conftest import Photographer
from tests.qpic.images import jpeg
from tests.qpic.test_library import album, listed
from tests.support.money import after_fee, holds, later
from tests.support.money import fund as fund_did

PI = 10**8  # PI has 8 decimals
FEE_BPS = 100  # the market's default fee
ASSET_FEE_BPS = 50  # PI's own fee, paid by every payee


@pytest.fixture
async def alice(http: httpx.AsyncClient) -> Photographer:
    seller = Photographer(http, "alice")
    await seller.register()
    return seller


@pytest.fixture
async def bob(http: httpx.AsyncClient) -> Person:
    return await Person(http, "bob").register()


@pytest.fixture
async def carol(http: httpx.AsyncClient) -> Person:
    return await Person(http, "carol").register()


@pytest.fixture
def market(node: Node) -> MarketService:
    svc: MarketService = node.service("qmarket")
    return svc


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def fund(http: httpx.AsyncClient, operator: dict[str, str], who: Person, pi: int) -> None:
    await fund_did(http, operator, who.did, pi)


balance = holds
after_asset_fee = after_fee


async def list_it(seller: Person, **fields: Any) -> dict[str, Any]:
    body = {"title": "Field recordings", "price": str(10 * PI), "asset": "PI", **fields}
    return await ok(await seller.send("POST", "/qmarket/listings", json=body), 201)


async def buy(buyer: Person, listing_id: str, status: int = 201, **body: Any) -> Any:
    return await ok(
        await buyer.send("POST", f"/qmarket/listings/{listing_id}/orders", json=body), status
    )


async def books_ok(http: httpx.AsyncClient, operator: dict[str, str]) -> None:
    books = await ok(await http.get("/qwallet/books", headers=operator))
    assert books["ok"], books["problems"]


def count(node: Node, table: Any) -> int:
    with node.kernel.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


# Goods: delivered and settled in the purchase's own transaction ----------------------------


async def test_a_file_sale_hands_over_the_key_pays_everyone_and_licenses_the_buyer(
    http: httpx.AsyncClient, operator: dict[str, str], alice: Person, bob: Person, carol: Person
) -> None:
    song = b"a private recording, never sent in the clear " * 100
    stored = await alice.put("/music/dawn.flac", song)
    assert (await bob.read(stored["id"])).status_code in (403, 404)
    listing = await list_it(alice, kind="file", item=stored["id"], description="Dawn chorus")
    await fund(http, operator, bob, 25)

    order = await buy(bob, listing["id"])

    assert order["status"] == "settled" and order["paid"] == str(10 * PI)
    assert order["outcome"] == "delivered" and order["licensed"]
    got = await bob.read(stored["id"])
    assert got.status_code == 200 and got.content == song
    assert (await carol.read(stored["id"])).status_code in (403, 404)
    fee = 10 * PI * FEE_BPS // 10_000
    assert await balance(bob) == 15 * PI
    assert await balance(alice) == after_asset_fee(10 * PI - fee)
    hold = await ok(await bob.send("GET", f"/qwallet/transfers/{order['hold_id']}"))
    assert hold["pending_state"] == "posted"
    await books_ok(http, operator)

    document = await ok(await bob.send("GET", f"/qmarket/orders/{order['id']}/licence"))
    checked = licence.check(document, licensee=bob.did)
    assert checked.licensor == alice.did and checked.item["id"] == stored["id"]
    assert document["price"] == {"amount": str(10 * PI), "asset": "PI"}
    tampered = copy.deepcopy(document)
    tampered["licensee"] = carol.did
    with pytest.raises(licence.LicenceInvalid):
        licence.check(tampered)
    with pytest.raises(licence.LicenceInvalid, match="issued to"):
        licence.check(document, licensee=carol.did)
    refused = await http.post("/qmarket/licences/verify", json=tampered)
    assert refused.status_code == 422 and refused.json()["code"] == "qmarket.licence_invalid"
    assert (await carol.send("GET", f"/qmarket/orders/{order['id']}/licence")).status_code == 404

    mine = await ok(await bob.send("GET", "/qmarket/orders"))
    assert [o["id"] for o in mine["orders"]] == [order["id"]]
    sold = await ok(await alice.send("GET", "/qmarket/orders", params={"role": "seller"}))
    assert [o["id"] for o in sold["orders"]] == [order["id"]]
    assert (await carol.send("GET", f"/qmarket/orders/{order['id']}")).status_code == 404


async def test_a_payment_the_buyer_cannot_make_changes_nothing(
    http: httpx.AsyncClient, operator: dict[str, str], node: Node, alice: Person, bob: Person
) -> None:
    stored = await alice.put("/notes.txt", b"notes")
    listing = await list_it(alice, kind="file", item=stored["id"], stock=3)
    await fund(http, operator, bob, 4)
    grants = count(node, qonsent_tables.grants)
    transfers = count(node, wallet_tables.transfers)

    refused = await bob.send("POST", f"/qmarket/listings/{listing['id']}/orders", json={})

    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["code"] == "qmarket.payment_refused" and problem["result"] == "exceeds_credits"
    assert count(node, tables.orders) == 0
    assert count(node, qonsent_tables.grants) == grants
    assert count(node, wallet_tables.transfers) == transfers
    assert (await bob.read(stored["id"])).status_code in (403, 404)
    again = await ok(await http.get(f"/qmarket/listings/{listing['id']}"))
    assert again["stock"] == 3 and again["sales"] == 0
    assert await balance(bob) == 4 * PI
    await books_ok(http, operator)


async def test_resending_an_order_id_buys_once(
    http: httpx.AsyncClient, operator: dict[str, str], alice: Person, bob: Person, carol: Person
) -> None:
    stored = await alice.put("/album.zip", b"zip")
    listing = await list_it(alice, kind="file", item=stored["id"])
    await fund(http, operator, bob, 30)

    first = await buy(bob, listing["id"], id="bob-order-0001")
    again = await buy(bob, listing["id"], 200, id="bob-order-0001")

    assert first["id"] == again["id"] == "bob-order-0001"
    assert await balance(bob) == 20 * PI
    twice = await bob.send("POST", f"/qmarket/listings/{listing['id']}/orders", json={})
    assert twice.status_code == 409 and twice.json()["code"] == "qmarket.already_bought"
    assert twice.json()["order"] == "bob-order-0001"
    assert await balance(bob) == 20 * PI
    await fund(http, operator, carol, 30)
    taken = await carol.send(
        "POST", f"/qmarket/listings/{listing['id']}/orders", json={"id": "bob-order-0001"}
    )
    assert taken.status_code == 409 and taken.json()["code"] == "qmarket.order_id_taken"
    assert await balance(carol) == 30 * PI


async def test_a_token_sells_once_and_its_creator_earns_a_royalty_on_every_resale(
    http: httpx.AsyncClient, operator: dict[str, str], alice: Person, bob: Person, carol: Person
) -> None:
    token = await ok(
        await alice.send(
            "POST",
            "/qwallet/nfts",
            json={"name": "Sunrise #1", "metadata": {"cid": "bafy-sunrise"}, "royalty_bps": 1000},
        ),
        201,
    )
    listing = await list_it(alice, kind="nft", item=token["id"], title="Sunrise #1")
    assert listing["stock"] == 1
    given = await alice.send("POST", f"/qwallet/nfts/{token['id']}/send", json={"to": carol.did})
    assert given.status_code == 409 and given.json()["code"] == "qwallet.nft_listed"
    await fund(http, operator, bob, 50)
    await fund(http, operator, carol, 50)

    first = await buy(bob, listing["id"])
    assert first["status"] == "settled" and first["creator"] is None  # the creator sold it
    held = await ok(await bob.send("GET", f"/qwallet/nfts/{token['id']}"))
    assert held["owner"] == bob.did and held["listed_in"] is None
    assert [e["kind"] for e in held["provenance"]] == ["mint", "sale"]
    sold_out = await carol.send("POST", f"/qmarket/listings/{listing['id']}/orders", json={})
    assert sold_out.status_code == 409 and sold_out.json()["code"] == "qmarket.not_for_sale"
    alice_after_first = await balance(alice)

    resale = await list_it(bob, kind="nft", item=token["id"], price=str(20 * PI))
    second = await buy(carol, resale["id"])

    assert second["creator"] == alice.did and second["royalty_bps"] == 1000
    royalty, fee = 2 * PI, 20 * PI * FEE_BPS // 10_000
    assert await balance(alice) == alice_after_first + after_asset_fee(royalty)
    assert await balance(bob) == 40 * PI + after_asset_fee(20 * PI - fee - royalty)
    assert await balance(carol) == 30 * PI
    owner = await ok(await carol.send("GET", f"/qwallet/nfts/{token['id']}"))
    assert owner["owner"] == carol.did
    # A gift would let a resale paid on the side skip the royalty: it moves by sale only.
    gift = await carol.send("POST", f"/qwallet/nfts/{token['id']}/send", json={"to": bob.did})
    assert gift.status_code == 409 and gift.json()["code"] == "qwallet.nft_royalty_bound"
    await books_ok(http, operator)


async def test_an_album_sale_shares_its_photos_without_their_metadata(
    http: httpx.AsyncClient, operator: dict[str, str], alice: Photographer, bob: Person
) -> None:
    first = await alice.upload("first.jpg", jpeg(31, gps=True))
    second = await alice.upload("second.jpg", jpeg(32))
    trip = await album(alice, "Brittany")
    both = {"photo_ids": [first["id"], second["id"]]}
    await ok(await alice.send("POST", f"/qpic/albums/{trip['id']}/photos", json=both))
    listing = await list_it(alice, kind="album", item=trip["id"], title="Brittany, 24 photos")
    await fund(http, operator, bob, 10)

    order = await buy(bob, listing["id"])

    assert order["status"] == "settled"
    assert set(await listed(bob, album=trip["id"])) == {first["id"], second["id"]}
    shared = await bob.send("GET", f"/qpic/photos/{first['id']}/content")
    assert shared.status_code == 200
    assert Image.open(io.BytesIO(shared.content)).getexif().get_ifd(0x8825) == {}
    document = await ok(await bob.send("GET", f"/qmarket/orders/{order['id']}/licence"))
    assert licence.check(document).item == {
        "kind": "album",
        "title": "Brittany, 24 photos",
        "id": trip["id"],
        "photos": 2,
    }
    await books_ok(http, operator)


async def test_racing_buyers_of_one_token_leave_one_sale(
    http: httpx.AsyncClient,
    operator: dict[str, str],
    node: Node,
    market: MarketService,
    alice: Person,
    bob: Person,
    carol: Person,
) -> None:
    import asyncio

    from anarq.kernel.guard import Actor, Context
    from anarq.qmarket.models import OrderCreate

    token = await ok(await alice.send("POST", "/qwallet/nfts", json={"name": "One"}), 201)
    listing = await list_it(alice, kind="nft", item=token["id"])
    await fund(http, operator, bob, 20)
    await fund(http, operator, carol, 20)

    def attempt(who: Person) -> str:
        ctx = Context(actor=Actor(id=who.did, kind="identity"))
        try:
            order, _created = market.buy(ctx, listing["id"], OrderCreate())
            return order.status
        except Exception as exc:
            return type(exc).__name__

    outcomes = await asyncio.gather(
        asyncio.to_thread(attempt, bob), asyncio.to_thread(attempt, carol)
    )

    assert sorted(outcomes) == ["NotForSale", "settled"], outcomes
    assert count(node, tables.orders) == 1
    assert sorted([await balance(bob), await balance(carol)]) == [10 * PI, 20 * PI]
    await books_ok(http, operator)


# Services: held until delivered and accepted, refunded if nobody acts --------------------


async def test_a_service_is_paid_when_the_buyer_accepts_its_delivery(
    http: httpx.AsyncClient, operator: dict[str, str], alice: Person, bob: Person
) -> None:
    listing = await list_it(alice, kind="service", title="Mixing one track", delivery_hours=48)
    await fund(http, operator, bob, 12)

    order = await buy(bob, listing["id"])
    assert order["status"] == "held" and order["deadline"] is not None
    assert await balance(bob) == 2 * PI  # held, not paid
    assert await balance(alice) == 0
    early = await alice.send("POST", f"/qmarket/orders/{order['id']}/accept")
    assert early.status_code == 409  # only the buyer accepts
    mix = await alice.put("/work/mix.wav", b"mixed audio")
    delivered = await ok(
        await alice.send(
            "POST",
            f"/qmarket/orders/{order['id']}/deliver",
            json={"note": "Mixed and mastered", "file": mix["id"]},
        )
    )
    assert delivered["status"] == "delivered" and delivered["delivery_file"] == mix["id"]
    assert (await bob.read(mix["id"])).content == b"mixed audio"

    accepted = await ok(await bob.send("POST", f"/qmarket/orders/{order['id']}/accept"))

    assert accepted["status"] == "settled" and accepted["outcome"] == "accepted"
    assert await balance(alice) == after_asset_fee(10 * PI - 10 * PI * FEE_BPS // 10_000)
    again = await bob.send("POST", f"/qmarket/orders/{order['id']}/accept")
    assert again.status_code == 409 and again.json()["code"] == "qmarket.order_state"
    document = await ok(await bob.send("GET", f"/qmarket/orders/{order['id']}/licence"))
    assert licence.check(document).item["delivery"] == "Mixed and mastered"
    await books_ok(http, operator)


async def test_an_undelivered_service_is_refunded_at_its_deadline(
    http: httpx.AsyncClient,
    operator: dict[str, str],
    node: Node,
    market: MarketService,
    alice: Person,
    bob: Person,
) -> None:
    listing = await list_it(alice, kind="service", delivery_hours=24, stock=1)
    await fund(http, operator, bob, 10)
    order = await buy(bob, listing["id"])
    assert (await ok(await http.get(f"/qmarket/listings/{listing['id']}")))["status"] == "sold_out"
    assert market.act_on_deadlines() == 0  # not yet

    with later(node, timedelta(hours=25)):
        assert market.act_on_deadlines() == 1

    refunded = await ok(await bob.send("GET", f"/qmarket/orders/{order['id']}"))
    assert refunded["status"] == "refunded" and refunded["outcome"] == "not_delivered"
    assert await balance(bob) == 10 * PI
    back = await ok(await http.get(f"/qmarket/listings/{listing['id']}"))
    assert back["status"] == "active" and back["stock"] == 1 and back["sales"] == 0
    late = await alice.send(
        "POST", f"/qmarket/orders/{order['id']}/deliver", json={"note": "too late"}
    )
    assert late.status_code == 409
    await books_ok(http, operator)


async def test_a_delivered_service_settles_once_the_acceptance_window_ends(
    http: httpx.AsyncClient,
    operator: dict[str, str],
    node: Node,
    market: MarketService,
    alice: Person,
    bob: Person,
) -> None:
    listing = await list_it(alice, kind="service")
    await fund(http, operator, bob, 10)
    order = await buy(bob, listing["id"])
    await ok(
        await alice.send("POST", f"/qmarket/orders/{order['id']}/deliver", json={"note": "done"})
    )

    with later(node, timedelta(hours=node.kernel.settings.market_acceptance_hours + 1)):
        assert market.act_on_deadlines() == 1

    settled = await ok(await bob.send("GET", f"/qmarket/orders/{order['id']}"))
    assert settled["status"] == "settled" and settled["outcome"] == "accepted_by_default"
    assert await balance(bob) == 0
    await books_ok(http, operator)


async def test_the_seller_may_refund_a_held_order_and_the_buyer_may_not(
    http: httpx.AsyncClient, operator: dict[str, str], alice: Person, bob: Person
) -> None:
    listing = await list_it(alice, kind="service")
    await fund(http, operator, bob, 10)
    order = await buy(bob, listing["id"])
    by_buyer = await bob.send("POST", f"/qmarket/orders/{order['id']}/refund")
    assert by_buyer.status_code == 409 and "disput" in by_buyer.json()["detail"]

    refunded = await ok(await alice.send("POST", f"/qmarket/orders/{order['id']}/refund"))

    assert refunded["status"] == "refunded" and refunded["outcome"] == "refunded_by_seller"
    assert await balance(bob) == 10 * PI
    review = await bob.send("POST", f"/qmarket/orders/{order['id']}/review", json={"rating": 1})
    assert review.status_code == 409
    await books_ok(http, operator)


async def test_a_ledger_timeout_on_the_hold_refunds_the_order(
    http: httpx.AsyncClient, operator: dict[str, str], node: Node, alice: Person, bob: Person
) -> None:
    listing = await list_it(alice, kind="service")
    await fund(http, operator, bob, 10)
    order = await buy(bob, listing["id"])
    wallet = node.service("qwallet")

    with later(node, timedelta(days=60)):
        assert wallet.expire() == 1  # as if the market had stopped acting on its deadlines
    await node.kernel.bus.run_pending()

    refunded = await ok(await bob.send("GET", f"/qmarket/orders/{order['id']}"))
    assert refunded["status"] == "refunded" and refunded["outcome"] == "expired"
    assert await balance(bob) == 10 * PI
    await books_ok(http, operator)


# Disputes -----------------------------------------------------------------------------


async def test_a_moderator_splits_a_disputed_order(
    http: httpx.AsyncClient,
    operator: dict[str, str],
    node: Node,
    market: MarketService,
    alice: Person,
    bob: Person,
    carol: Person,
) -> None:
    listing = await list_it(alice, kind="service")
    await fund(http, operator, bob, 10)
    order = await buy(bob, listing["id"])
    stranger = await carol.send(
        "POST", f"/qmarket/orders/{order['id']}/dispute", json={"reason": "x"}
    )
    assert stranger.status_code == 404
    disputed = await ok(
        await bob.send(
            "POST", f"/qmarket/orders/{order['id']}/dispute", json={"reason": "half done"}
        )
    )
    assert disputed["status"] == "disputed" and disputed["disputed_by"] == bob.did
    split = {"paid": str(6 * PI), "note": "half the work, and then some"}
    assert (
        await carol.send("POST", f"/qmarket/orders/{order['id']}/resolve", json=split)
    ).status_code == 403
    await ok(await http.put(f"/qmarket/moderators/{carol.did}", headers=operator), 201)
    [named] = await ok(await http.get("/qmarket/moderators", headers=operator))
    assert named["did"] == carol.did
    queue = await ok(await carol.send("GET", "/qmarket/orders", params={"role": "moderator"}))
    assert [o["id"] for o in queue["orders"]] == [order["id"]]
    too_much = {"paid": str(11 * PI), "note": "more than the price"}
    bad = await carol.send("POST", f"/qmarket/orders/{order['id']}/resolve", json=too_much)
    assert bad.status_code == 400

    resolved = await ok(
        await carol.send("POST", f"/qmarket/orders/{order['id']}/resolve", json=split)
    )

    assert resolved["status"] == "settled" and resolved["paid"] == str(6 * PI)
    assert resolved["outcome"] == "resolved" and resolved["resolution"] == split["note"]
    assert await balance(bob) == 4 * PI
    assert await balance(alice) == after_asset_fee(6 * PI - 6 * PI * FEE_BPS // 10_000)
    with later(node, timedelta(days=30)):
        assert market.act_on_deadlines() == 0  # settled: no deadline is left
    await books_ok(http, operator)


async def test_a_dispute_nobody_resolves_refunds_the_buyer(
    http: httpx.AsyncClient,
    operator: dict[str, str],
    node: Node,
    market: MarketService,
    alice: Person,
    bob: Person,
) -> None:
    listing = await list_it(alice, kind="service")
    await fund(http, operator, bob, 10)
    order = await buy(bob, listing["id"])
    await ok(
        await alice.send(
            "POST", f"/qmarket/orders/{order['id']}/dispute", json={"reason": "no reply"}
        )
    )

    with later(node, timedelta(hours=node.kernel.settings.market_dispute_hours + 1)):
        assert market.act_on_deadlines() == 1

    done = await ok(await bob.send("GET", f"/qmarket/orders/{order['id']}"))
    assert done["status"] == "refunded" and done["outcome"] == "unresolved"
    assert await balance(bob) == 10 * PI
    await books_ok(http, operator)


# Reviews, search, listings -------------------------------------------------------------


async def test_only_a_settled_purchase_is_reviewed_and_only_once(
    http: httpx.AsyncClient, operator: dict[str, str], alice: Person, bob: Person, carol: Person
) -> None:
    listing = await list_it(alice, kind="service")
    await fund(http, operator, bob, 10)
    order = await buy(bob, listing["id"])
    path = f"/qmarket/orders/{order['id']}/review"
    assert (await bob.send("POST", path, json={"rating": 5})).status_code == 409
    await ok(await bob.send("POST", f"/qmarket/orders/{order['id']}/accept"))
    assert (await alice.send("POST", path, json={"rating": 5})).status_code == 409
    assert (await carol.send("POST", path, json={"rating": 5})).status_code == 404
    assert (await bob.send("POST", path, json={"rating": 6})).status_code == 422

    made = await ok(await bob.send("POST", path, json={"rating": 4, "text": "Good mix"}), 201)

    assert made["rating"] == 4 and made["buyer"] == bob.did
    twice = await bob.send("POST", path, json={"rating": 5})
    assert twice.status_code == 409 and twice.json()["code"] == "qmarket.already_reviewed"
    shown = await ok(await http.get(f"/qmarket/listings/{listing['id']}"))
    assert shown["rating"] == 4.0 and shown["reviews"] == 1
    reviews = await ok(await http.get(f"/qmarket/listings/{listing['id']}/reviews"))
    assert [r["text"] for r in reviews] == ["Good mix"]


async def test_listings_are_found_by_anyone_until_withdrawn(
    http: httpx.AsyncClient, node: Node, alice: Person
) -> None:
    stored = await alice.put("/presets.zip", b"presets")
    listing = await list_it(
        alice, kind="file", item=stored["id"], title="Analog synth presets", description="warm"
    )
    await node.kernel.bus.run_pending()

    found = await ok(await http.get("/qmarket/listings", params={"q": "synth presets"}))
    assert [item["id"] for item in found["listings"]] == [listing["id"]]
    hits = await ok(await http.get("/qindex/search", params={"q": "analog", "module": "qmarket"}))
    assert [h["resource"] for h in hits["hits"]] == [f"qmarket:listing:{listing['id']}"]
    newest = await ok(await http.get("/qmarket/listings", params={"kind": "file"}))
    assert [item["id"] for item in newest["listings"]] == [listing["id"]]
    assert (await ok(await http.get("/qmarket/listings", params={"kind": "nft"})))["listings"] == []

    paused = await ok(
        await alice.send("PATCH", f"/qmarket/listings/{listing['id']}", json={"status": "paused"})
    )
    assert paused["status"] == "paused"
    assert (await ok(await http.get("/qmarket/listings", params={"q": "synth"})))["listings"] == []
    await ok(
        await alice.send("PATCH", f"/qmarket/listings/{listing['id']}", json={"status": "active"})
    )
    await ok(await alice.send("DELETE", f"/qmarket/listings/{listing['id']}"))

    assert (await ok(await http.get("/qmarket/listings", params={"q": "synth"})))["listings"] == []
    assert (await http.get(f"/qmarket/listings/{listing['id']}")).status_code == 404
    assert (await ok(await alice.send("GET", f"/qmarket/listings/{listing['id']}")))["status"] == (
        "withdrawn"
    )
    mine = await ok(await alice.send("GET", "/qmarket/listings", params={"mine": True}))
    assert [item["status"] for item in mine["listings"]] == ["withdrawn"]


async def test_a_file_deleted_for_good_is_withdrawn_from_sale(
    http: httpx.AsyncClient, node: Node, alice: Person
) -> None:
    stored = await alice.put("/gone.txt", b"soon gone")
    listing = await list_it(alice, kind="file", item=stored["id"])
    gone = await alice.send("DELETE", f"/qdrive/files/{stored['id']}", params={"forever": True})
    assert gone.status_code == 204
    await node.kernel.bus.run_pending()

    mine = await ok(await alice.send("GET", f"/qmarket/listings/{listing['id']}"))
    assert mine["status"] == "withdrawn"


async def test_bad_listings_and_orders_are_refused_and_change_nothing(
    http: httpx.AsyncClient, operator: dict[str, str], node: Node, alice: Person, bob: Person
) -> None:
    stored = await alice.put("/mine.txt", b"mine")
    cases = [
        ({"kind": "file", "item": stored["id"], "price": "0"}, 422),
        ({"kind": "file", "item": stored["id"], "asset": "NOPE"}, 400),
        ({"kind": "service", "item": stored["id"]}, 422),
        ({"kind": "file"}, 422),
        ({"kind": "nft", "item": "01JXXXXXXXXXXXXXXXXXXXXXXX", "stock": 2}, 422),
        ({"kind": "file", "item": stored["id"], "title": "x" * 121}, 422),
        ({"kind": "file", "item": stored["id"], "unknown": 1}, 422),
    ]
    for fields, status in cases:
        body = {"title": "t", "price": str(PI), "asset": "PI", **fields}
        refused = await alice.send("POST", "/qmarket/listings", json=body)
        assert refused.status_code == status, (fields, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
    someone_elses = await bob.send(
        "POST",
        "/qmarket/listings",
        json={"kind": "file", "item": stored["id"], "title": "t", "price": "1", "asset": "PI"},
    )
    assert someone_elses.status_code in (403, 404)
    anonymous = await http.post(
        "/qmarket/listings", json={"kind": "service", "title": "t", "price": "1", "asset": "PI"}
    )
    assert anonymous.status_code == 401
    assert count(node, tables.listings) == 0

    listing = await list_it(alice, kind="file", item=stored["id"])
    own = await alice.send("POST", f"/qmarket/listings/{listing['id']}/orders", json={})
    assert own.status_code == 409 and own.json()["code"] == "qmarket.own_listing"
    missing = await bob.send("POST", "/qmarket/listings/01JXXXXXXXXXXXXXXXXXXXXXXX/orders", json={})
    assert missing.status_code == 404
    bad_id = await bob.send("POST", f"/qmarket/listings/{listing['id']}/orders", json={"id": "a.b"})
    assert bad_id.status_code == 422
    not_json = await bob.send(
        "POST",
        f"/qmarket/listings/{listing['id']}/orders",
        content=b"{",
        headers={"content-type": "application/json"},
    )
    assert not_json.status_code in (400, 422)
    assert count(node, tables.orders) == 0
    anonymous_buy = await http.post(f"/qmarket/listings/{listing['id']}/orders", json={})
    assert anonymous_buy.status_code == 401


async def test_the_data_subject_export_holds_what_the_market_knows(
    http: httpx.AsyncClient,
    operator: dict[str, str],
    market: MarketService,
    alice: Person,
    bob: Person,
) -> None:
    from anarq.kernel.guard import Actor, Context

    listing = await list_it(alice, kind="service")
    await fund(http, operator, bob, 10)
    await buy(bob, listing["id"])
    ctx = Context(actor=Actor(id=bob.did, kind="identity"))

    items = {item.name: item for item in market.export_subject(ctx, bob.did)}

    orders = json.loads(b"".join(items["qmarket/orders.json"].chunks))
    assert [o["buyer"] for o in orders] == [bob.did]
    erased = market.erase_subject(Context(actor=Actor(id=alice.did, kind="identity")), alice.did)
    assert erased["listings_withdrawn"] == 1

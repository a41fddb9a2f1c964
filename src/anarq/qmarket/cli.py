"""`anarq market …`: browse and search listings, sell, buy through escrow, deliver, refund,
dispute, review, and check licences offline.

Prices are typed as people write them (`1.5`) in the listing's asset and turned into its
smallest unit exactly, as `anarq wallet` does.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import typer

from anarq.cli.output import (
    JSON_OPTION,
    TOKEN_OPTION,
    URL_OPTION,
    client,
    console,
    emit_fields,
    emit_json,
    emit_table,
)
from anarq.qmarket import licence as licences
from anarq.qmarket.models import DEFAULT_TERMS
from anarq.qwallet.cli import ASSET_OPTION, IDENTITY_OPTION, asset_scale, from_units, to_units
from anarq.sdk import Client
from anarq.squid.cli import acting_client, signed_client

app = typer.Typer(no_args_is_help=True)
licence_app = typer.Typer(no_args_is_help=True, help="Licences of settled purchases.")
moderators_app = typer.Typer(no_args_is_help=True, help="Who settles disputes (operator).")
app.add_typer(licence_app, name="licence")
app.add_typer(moderators_app, name="moderators")

ORDER_ARGUMENT = typer.Argument(..., help="The order's id.")
LISTING_ARGUMENT = typer.Argument(..., help="The listing's id.")


def _price(node: Client, item: dict[str, Any], field: str = "price") -> str:
    value = item.get(field)
    return f"{from_units(value, asset_scale(node, item['asset']))} {item['asset']}" if value else ""


def _listing_rows(node: Client, listings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "id": item["id"],
            "kind": item["kind"],
            "title": item["title"],
            "price": _price(node, item),
            "status": item["status"],
            "rating": "" if item["rating"] is None else f"{item['rating']} ({item['reviews']})",
        }
        for item in listings
    ]


@app.command("list")
def list_listings(
    query: str | None = typer.Argument(None, help="Words to search for [default: newest]."),
    kind: str | None = typer.Option(None, "--kind", help="file, album, nft or service."),
    seller: str | None = typer.Option(None, "--seller", help="Only this seller's (a DID)."),
    mine: bool = typer.Option(False, "--mine", help="Your own listings, in any status."),
    limit: int = typer.Option(20, "--limit", min=1, max=50),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Listings for sale, newest first, or the best matches of a search."""
    params: dict[str, Any] = {"limit": limit, "mine": mine}
    for name, value in (("q", query), ("kind", kind), ("seller", seller)):
        if value:
            params[name] = value
    with signed_client(url, identity) as node:
        page: dict[str, Any] = node.request("GET", "/qmarket/listings", params=params)
        rows = _listing_rows(node, page["listings"])
    if as_json:
        emit_json(page)
        return
    emit_table(
        rows, ["id", "kind", "title", "price", "status", "rating"], title="listings", whole=["id"]
    )


@app.command("show")
def show(
    listing_id: str = LISTING_ARGUMENT,
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """One listing, with its terms and latest reviews."""
    with signed_client(url, identity) as node:
        item: dict[str, Any] = node.request("GET", f"/qmarket/listings/{listing_id}")
        reviews = node.request(
            "GET", f"/qmarket/listings/{listing_id}/reviews", params={"limit": 5}
        )
        price = _price(node, item)
    if as_json:
        emit_json({**item, "latest_reviews": reviews})
        return
    emit_fields(
        {
            "listing": item["id"],
            "title": item["title"],
            "kind": item["kind"],
            "item": item["item_id"] or "",
            "price": price,
            "status": item["status"],
            "stock": "unlimited" if item["stock"] is None else item["stock"],
            "sales": item["sales"],
            "rating": "none yet" if item["rating"] is None else item["rating"],
            "seller": item["seller"],
            "terms": item["terms"],
        }
    )
    if item["description"]:
        console.print(item["description"])
    for review in reviews:
        console.print(f"{'★' * review['rating']}{'☆' * (5 - review['rating'])} {review['text']}")


@app.command("sell")
def sell(
    title: str = typer.Option(..., "--title", help="What buyers see first."),
    price: str = typer.Option(..., "--price", help="How much, e.g. 1.5"),
    asset: str = ASSET_OPTION,
    file: str | None = typer.Option(None, "--file", help="A file of your drive (path or id)."),
    album: str | None = typer.Option(None, "--album", help="An album of yours (its id)."),
    nft: str | None = typer.Option(None, "--nft", help="A unique token you hold (its id)."),
    service: bool = typer.Option(False, "--service", help="A service you deliver yourself."),
    description: str = typer.Option("", "--description", help="More about it."),
    terms: str = typer.Option(DEFAULT_TERMS, "--terms", help="The licence's terms."),
    stock: int | None = typer.Option(None, "--stock", min=1, help="Units [default: no limit]."),
    delivery_hours: int = typer.Option(
        72, "--delivery-hours", min=1, help="A service's time to deliver."
    ),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Offer a file, an album, a token or a service.

    Buyers pay into escrow; goods are handed over (the file's key re-wrapped for the
    buyer, the album shared, the token moved) in the same step as the sale settles."""
    chosen = [(k, v) for k, v in (("file", file), ("album", album), ("nft", nft)) if v]
    if len(chosen) + int(service) != 1:
        raise typer.BadParameter("name exactly one of --file, --album, --nft, --service")
    kind, item = chosen[0] if chosen else ("service", None)
    with signed_client(url, identity) as node:
        if kind == "file" and item is not None and item.startswith("/"):
            item = node.request("GET", "/qdrive/resolve", params={"ref": item})["id"]
        body = {
            "kind": kind,
            "item": item,
            "title": title,
            "description": description,
            "price": str(to_units(price, asset_scale(node, asset))),
            "asset": asset,
            "terms": terms,
            "stock": stock,
            "delivery_hours": delivery_hours,
        }
        made = node.request("POST", "/qmarket/listings", json=body)
    if as_json:
        emit_json(made)
        return
    console.print(f"listed {made['title']!r} for {price} {asset}")
    console.print(f"[dim]listing {made['id']}[/dim]")


@app.command("edit")
def edit(
    listing_id: str = LISTING_ARGUMENT,
    title: str | None = typer.Option(None, "--title"),
    price: str | None = typer.Option(None, "--price", help="A new price (new orders only)."),
    description: str | None = typer.Option(None, "--description"),
    stock: int | None = typer.Option(None, "--stock", min=0),
    pause: bool = typer.Option(False, "--pause", help="Stop selling for now."),
    resume: bool = typer.Option(False, "--resume", help="Sell again."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Change your listing; orders already placed keep their price and terms."""
    if pause and resume:
        raise typer.BadParameter("--pause or --resume, not both")
    with signed_client(url, identity) as node:
        body: dict[str, Any] = {}
        if title is not None:
            body["title"] = title
        if description is not None:
            body["description"] = description
        if stock is not None:
            body["stock"] = stock
        if pause or resume:
            body["status"] = "paused" if pause else "active"
        if price is not None:
            listing = node.request("GET", f"/qmarket/listings/{listing_id}")
            body["price"] = str(to_units(price, asset_scale(node, listing["asset"])))
        if not body:
            raise typer.BadParameter("name something to change")
        made = node.request("PATCH", f"/qmarket/listings/{listing_id}", json=body)
    emit_json(made) if as_json else console.print(f"listing {listing_id} is {made['status']}")


@app.command("withdraw")
def withdraw(
    listing_id: str = LISTING_ARGUMENT,
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Take your listing off sale for good (orders placed go on; a token is yours again)."""
    with signed_client(url, identity) as node:
        made = node.request("DELETE", f"/qmarket/listings/{listing_id}")
    emit_json(made) if as_json else console.print(f"withdrew listing {listing_id}")


@app.command("buy")
def buy(
    listing_id: str = LISTING_ARGUMENT,
    order_id: str | None = typer.Option(
        None, "--id", help="Your id for the order; resending it buys once [default: new]."
    ),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Buy a listing: the price is held in escrow.

    Goods are yours at once (the sale settles); a service settles when you accept it, or
    when the acceptance window passes."""
    body = {"id": order_id} if order_id else {}
    with signed_client(url, identity) as node:
        made = node.request("POST", f"/qmarket/listings/{listing_id}/orders", json=body)
        price = _price(node, made)
    if as_json:
        emit_json(made)
        return
    state = {"settled": "bought", "held": "ordered (price held in escrow)"}.get(
        made["status"], made["status"]
    )
    console.print(f"{state}: {made['title']!r} for {price}")
    console.print(f"[dim]order {made['id']}[/dim]")


@app.command("orders")
def orders(
    selling: bool = typer.Option(False, "--selling", help="Your sales, not your purchases."),
    disputes: bool = typer.Option(False, "--disputes", help="Open disputes (moderators)."),
    status: str | None = typer.Option(None, "--status", help="held, delivered, disputed, …"),
    identity: str | None = IDENTITY_OPTION,
    operator: bool = typer.Option(False, "--operator", help="Act with the operator token."),
    token: str | None = TOKEN_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Your purchases (or sales), newest first."""
    role = "moderator" if disputes else "seller" if selling else "buyer"
    params: dict[str, Any] = {"role": role}
    if status:
        params["status"] = status
    with acting_client(url, identity, operator, token) as node:
        page: dict[str, Any] = node.request("GET", "/qmarket/orders", params=params)
        rows = [
            {
                "order": o["id"],
                "title": o["title"],
                "price": _price(node, o),
                "status": o["status"],
                "deadline": (o["deadline"] or "")[:16].replace("T", " "),
            }
            for o in page["orders"]
        ]
    if as_json:
        emit_json(page)
        return
    emit_table(
        rows, ["order", "title", "price", "status", "deadline"], title="orders", whole=["order"]
    )


@app.command("order")
def order(
    order_id: str = ORDER_ARGUMENT,
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """One order: where it stands, and what happens next."""
    with signed_client(url, identity) as node:
        made: dict[str, Any] = node.request("GET", f"/qmarket/orders/{order_id}")
        price = _price(node, made)
        paid = _price(node, made, "paid") if made["paid"] is not None else ""
    if as_json:
        emit_json(made)
        return
    emit_fields(
        {
            "order": made["id"],
            "title": made["title"],
            "price": price,
            "paid": paid,
            "status": made["status"],
            "outcome": made["outcome"] or "",
            "deadline": made["deadline"] or "",
            "delivery": made["delivery_note"] or "",
            "dispute": made["dispute"] or "",
            "seller": made["seller"],
            "buyer": made["buyer"],
        }
    )


def _act(
    path: str, body: dict[str, Any] | None, done: str, url: str | None, identity: str | None
) -> dict[str, Any]:
    with signed_client(url, identity) as node:
        made: dict[str, Any] = node.request("POST", path, json=body or {})
    console.print(done.format(**made))
    return made


@app.command("deliver")
def deliver(
    order_id: str = ORDER_ARGUMENT,
    note: str = typer.Option(..., "--note", help="What you delivered."),
    file: str | None = typer.Option(None, "--file", help="A file of yours to hand over."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Deliver a service you sold; the buyer then accepts (or disputes) it."""
    with signed_client(url, identity) as node:
        if file is not None and file.startswith("/"):
            file = node.request("GET", "/qdrive/resolve", params={"ref": file})["id"]
    body = {"note": note, "file": file}
    _act(
        f"/qmarket/orders/{order_id}/deliver",
        body,
        "delivered: order {id} is {status}",
        url,
        identity,
    )


@app.command("accept")
def accept(
    order_id: str = ORDER_ARGUMENT,
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Accept what you ordered: the seller is paid now."""
    _act(
        f"/qmarket/orders/{order_id}/accept",
        None,
        "accepted: order {id} is {status}",
        url,
        identity,
    )


@app.command("refund")
def refund(
    order_id: str = ORDER_ARGUMENT,
    identity: str | None = IDENTITY_OPTION,
    operator: bool = typer.Option(False, "--operator", help="Act with the operator token."),
    token: str | None = TOKEN_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Give the buyer all of the price back (the seller, or a moderator)."""
    with acting_client(url, identity, operator, token) as node:
        made = node.request("POST", f"/qmarket/orders/{order_id}/refund", json={})
    console.print(f"refunded: order {made['id']} is {made['status']}")


@app.command("dispute")
def dispute(
    order_id: str = ORDER_ARGUMENT,
    reason: str = typer.Option(..., "--reason", help="What went wrong."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Take an open order to a moderator; the price stays in escrow meanwhile."""
    _act(
        f"/qmarket/orders/{order_id}/dispute",
        {"reason": reason},
        "disputed: order {id} waits for a moderator until {deadline}",
        url,
        identity,
    )


@app.command("resolve")
def resolve(
    order_id: str = ORDER_ARGUMENT,
    paid: str = typer.Option(..., "--paid", help="What the buyer pays, e.g. 0.6 (0 refunds)."),
    note: str = typer.Option(..., "--note", help="Why: both parties see it."),
    identity: str | None = IDENTITY_OPTION,
    operator: bool = typer.Option(False, "--operator", help="Act with the operator token."),
    token: str | None = TOKEN_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Split a disputed order (moderators): the buyer pays `--paid` and has the rest back."""
    with acting_client(url, identity, operator, token) as node:
        made = node.request("GET", f"/qmarket/orders/{order_id}")
        units = 0 if _is_zero(paid) else to_units(paid, asset_scale(node, made["asset"]))
        done = node.request(
            "POST", f"/qmarket/orders/{order_id}/resolve", json={"paid": str(units), "note": note}
        )
    console.print(f"resolved: order {done['id']} is {done['status']}")


@app.command("review")
def review(
    order_id: str = ORDER_ARGUMENT,
    rating: int = typer.Option(..., "--rating", min=1, max=5, help="1 to 5 stars."),
    text: str = typer.Option("", "--text", help="What you thought."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Review a settled purchase (once)."""
    _act(
        f"/qmarket/orders/{order_id}/review",
        {"rating": rating, "text": text},
        "reviewed order {order_id}: {rating} of 5",
        url,
        identity,
    )


@licence_app.command("show")
def licence_show(
    order_id: str = ORDER_ARGUMENT,
    out: Path | None = typer.Option(None, "-o", "--out", help="Write it to this file."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """The signed licence of a settled purchase (or sale)."""
    with signed_client(url, identity) as node:
        document = node.request("GET", f"/qmarket/orders/{order_id}/licence")
    text = json.dumps(document, indent=2, ensure_ascii=False)
    if out is None:
        sys.stdout.write(text + "\n")
        return
    out.write_text(text + "\n")
    console.print(f"wrote the licence of order {order_id} to {out}")


@licence_app.command("verify")
def licence_verify(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="The licence file."),
    licensee: str | None = typer.Option(None, "--for", help="Check it was issued to this DID."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Check a licence offline: the issuing node's signature and, with --for, its holder.

    Nothing is fetched: the file is all it takes."""
    try:
        document = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        console.print(f"[red]not a licence[/red]: {path} is not JSON ({exc})")
        raise typer.Exit(1) from None
    try:
        checked = licences.check(document, licensee=licensee)
    except licences.LicenceInvalid as exc:
        if as_json:
            emit_json({"ok": False, "reason": exc.detail})
        else:
            console.print(f"[red]invalid licence[/red]: {exc.detail}")
        raise typer.Exit(1) from None
    if as_json:
        emit_json(checked.model_dump())
        return
    emit_fields(
        {
            "valid": "yes",
            "licence": checked.licence_id,
            "licensee": checked.licensee,
            "licensor": checked.licensor,
            "item": json.dumps(checked.item, ensure_ascii=False),
            "issued by": checked.issuer,
        }
    )


def _is_zero(amount: str) -> bool:
    try:
        return Decimal(amount) == 0
    except InvalidOperation:
        raise typer.BadParameter(f"{amount!r} is not a number") from None


@moderators_app.command("ls")
def moderators_ls(
    token: str | None = TOKEN_OPTION, url: str | None = URL_OPTION, as_json: bool = JSON_OPTION
) -> None:
    """Who moderates disputes."""
    with client(url, token, need_token=True) as node:
        found: list[dict[str, Any]] = node.request("GET", "/qmarket/moderators")
    emit_json(found) if as_json else emit_table(found, ["did", "grant_id"], title="moderators")


@moderators_app.command("add")
def moderators_add(
    did: str = typer.Argument(..., help="The moderator's DID."),
    token: str | None = TOKEN_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Name a moderator: they may split disputed orders and refund any open one."""
    with client(url, token, need_token=True) as node:
        made = node.request("PUT", f"/qmarket/moderators/{did}")
    console.print(f"{did} moderates disputes (grant {made['grant_id']})")


@moderators_app.command("rm")
def moderators_rm(
    did: str = typer.Argument(..., help="The moderator's DID."),
    token: str | None = TOKEN_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Remove a moderator."""
    with client(url, token, need_token=True) as node:
        node.request("DELETE", f"/qmarket/moderators/{did}")
    console.print(f"{did} no longer moderates")

"""Qmarket: listings of files, albums, unique tokens and services, bought through escrow.

A purchase holds the price in the market's escrow (a pending Qwallet transfer). What the
node can hand over itself — a file's key re-wrapped for the buyer, an album shared, a
token moved — is delivered and settled in the same transaction as the hold: the post,
the market's fee, the creator's royalty and the seller's payout as one linked chain,
and a signed licence. A service is delivered by its seller; the buyer accepts it (or
lets the acceptance window pass) and it settles then, or disputes it, and a moderator
splits the price. Nobody acting in time refunds the buyer: the node releases the hold
at each deadline, and the hold's own timeout would if the node did not.

Every order changes state by compare-and-set on its status inside the ledger's
transaction, so two hands acting at once (a seller refunding as the deadline settles)
leave one effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from anarq.kernel import Kernel
from anarq.kernel.bus import Event
from anarq.kernel.errors import BadRequest, Conflict, NotFound
from anarq.kernel.guard import Actor, Context
from anarq.kernel.ids import new_id
from anarq.kernel.subject import ExportItem, json_item
from anarq.node.service import NodeService
from anarq.qdrive.service import DriveService
from anarq.qindex.service import QindexService
from anarq.qmarket import licence, tables
from anarq.qmarket.catalogue import Catalogue, NotForSale, listing_resource, seller_resource
from anarq.qmarket.escrow import Escrow, Split, hold_id, order_of_hold
from anarq.qmarket.models import (
    DeliverRequest,
    DisputeRequest,
    LicenceCheck,
    Listing,
    ListingChange,
    ListingCreate,
    ListingPage,
    Moderator,
    Order,
    OrderCreate,
    OrderPage,
    ResolveRequest,
    Review,
    ReviewRequest,
)
from anarq.qonsent.models import GrantRequest
from anarq.qonsent.service import QonsentService
from anarq.qpic.service import QpicService
from anarq.qpic.sharing import AlbumCopies
from anarq.qwallet.service import TransferRefused, WalletService
from anarq.squid.service import SquidService

log = logging.getLogger(__name__)

DISPUTES = "qmarket:disputes"  # moderators hold `execute` on it
OPEN = ("held", "delivered", "disputed")
# The hold outlasts every deadline by this much: the ledger's own refund, if the node
# stopped acting on its deadlines, never races the node's.
HOLD_MARGIN = timedelta(hours=24)
GOODS_HOLD_SECONDS = 3600  # goods settle in the hold's own transaction
DEADLINES_EVERY_SECONDS = 1.0
DEADLINES_BATCH = 100
PAGE_MAX = 100
PARTIES_CACHE_MAX = 100_000

_o = tables.orders
_rv = tables.reviews


def order_resource(order_id: str) -> str:
    return f"qmarket:order:{order_id}"


class OrderIdTaken(Conflict):
    code = "qmarket.order_id_taken"


class OwnListing(Conflict):
    code = "qmarket.own_listing"


class OrderState(Conflict):
    """The order is not in a state that allows this (it moved on, or never got there)."""

    code = "qmarket.order_state"


class AlreadyBought(Conflict):
    code = "qmarket.already_bought"


class AlreadyReviewed(Conflict):
    code = "qmarket.already_reviewed"


class MarketService:
    erase_order = 80

    def __init__(
        self,
        kernel: Kernel,
        node: NodeService,
        squid: SquidService,
        qonsent: QonsentService,
        wallet: WalletService,
        drive: DriveService,
        pic: QpicService,
        index: QindexService,
    ) -> None:
        self.k = kernel
        self.node = node
        self.squid = squid
        self.qonsent = qonsent
        self.wallet = wallet
        self.drive = drive
        self.pic = pic
        self.catalogue = Catalogue(kernel, qonsent, wallet, drive, pic, index)
        self._parties: dict[str, tuple[str, str]] = {}

    # Policy ------------------------------------------------------------------------------

    def policy(self, ctx: Context, action: str, resource: str) -> bool:
        """A guard policy: an identity keeps its own shop, may buy from any listing (the
        service checks it is for sale), and acts on the orders it is a party to (the
        service checks which act is whose)."""
        if ctx.actor.kind != "identity":
            return False
        if resource == seller_resource(ctx.actor.id):
            return action in ("read", "write")
        if resource.startswith("qmarket:listing:"):
            return action == "execute"
        if resource.startswith("qmarket:order:") and action in ("read", "write"):
            return ctx.actor.id in self._parties_of(resource.removeprefix("qmarket:order:"))
        return False

    def _parties_of(self, order_id: str) -> tuple[str, ...]:
        known = self._parties.get(order_id)
        if known is None:
            with self.k.db.read() as conn:
                row = conn.execute(
                    select(_o.c.buyer, _o.c.seller).where(_o.c.id == order_id)
                ).first()
            if row is None:
                return ()
            if len(self._parties) >= PARTIES_CACHE_MAX:
                self._parties.clear()
            known = self._parties[order_id] = (row.buyer, row.seller)  # never change
        return known

    def is_moderator(self, ctx: Context) -> bool:
        if ctx.actor.kind in ("operator", "node"):
            return True
        return ctx.actor.kind == "identity" and (
            self.qonsent.check(ctx.actor.id, "execute", DISPUTES).allowed
        )

    # Listings ----------------------------------------------------------------------------

    def create_listing(self, ctx: Context, request: ListingCreate) -> Listing:
        return self.catalogue.create(ctx, request)

    def change_listing(self, ctx: Context, listing_id: str, change: ListingChange) -> Listing:
        return self.catalogue.change(ctx, listing_id, change)

    def withdraw_listing(self, ctx: Context, listing_id: str) -> Listing:
        return self.catalogue.withdraw(ctx, listing_id)

    def listing(self, ctx: Context, listing_id: str) -> Listing:
        return self.catalogue.get(ctx, listing_id)

    def listings(self, ctx: Context, **filters: Any) -> ListingPage:
        return self.catalogue.page(ctx, **filters)

    # Buying ------------------------------------------------------------------------------

    def buy(self, ctx: Context, listing_id: str, request: OrderCreate) -> tuple[Order, bool]:
        """Place an order: the price is held in escrow; goods are delivered and settled at
        once. Resending the same order id returns that order (False: not created now)."""
        buyer = ctx.identity("a purchase")
        order_id = request.id or new_id()
        existing = self._row(order_id)
        if existing is not None:
            return self._same_order(existing, buyer, listing_id), False
        offer = self.catalogue.row(listing_id)
        if offer["seller"] == buyer:
            raise OwnListing("this is your own listing")
        if offer["status"] != "active":
            raise NotForSale(f"the listing is {offer['status'].replace('_', ' ')}")
        seller_ctx = self._acting_for(offer["seller"], ctx)
        handover = self._prepare_handover(seller_ctx, offer, buyer)
        creator, royalty_bps = None, 0
        if offer["kind"] == "nft":
            issuer, royalty_bps = self.wallet.nft_terms(offer["item_id"])
            creator, royalty_bps = (issuer, royalty_bps) if issuer != offer["seller"] else (None, 0)
        now = self.k.clock.now()
        settings = self.k.settings
        if offer["kind"] == "service":
            window = timedelta(
                hours=offer["delivery_hours"]
                + settings.market_acceptance_hours
                + settings.market_dispute_hours
            )
            hold_seconds = int((window + HOLD_MARGIN).total_seconds())
            deadline: datetime | None = now + timedelta(hours=offer["delivery_hours"])
        else:
            hold_seconds, deadline = GOODS_HOLD_SECONDS, None
        row = {
            "id": order_id,
            "listing_id": listing_id,
            "buyer": buyer,
            "seller": offer["seller"],
            "kind": offer["kind"],
            "item_id": offer["item_id"],
            "title": offer["title"],
            "terms": offer["terms"],
            "price": offer["price"],
            "asset": offer["asset"],
            "fee_bps": settings.market_fee_bps,
            "creator": creator,
            "royalty_bps": royalty_bps,
            "status": "held",
            "hold_id": hold_id(order_id),
            "hold_expires_at": now + timedelta(seconds=hold_seconds),
            "deadline": deadline,
            "created_at": now,
            "updated_at": now,
        }
        try:
            with self.wallet.agent(
                ctx, "execute", listing_resource(listing_id), parties=[buyer]
            ) as agent:
                tx = agent.tx
                if offer["kind"] in ("file", "album"):
                    self._refuse_second_copy(tx, listing_id, buyer)
                self.catalogue.take_one(tx, offer)
                escrow = Escrow(agent, offer["asset"])
                escrow.hold(order_id, buyer, int(offer["price"]), hold_seconds)
                tx.execute(insert(_o).values(**row))
                self.k.guard.record(ctx, "write", order_resource(order_id), "allow", tx)
                self._announce(tx, ctx, "qmarket.order.placed", row)
                if offer["kind"] != "service":
                    item = self._hand_over(tx, seller_ctx, row, handover)
                    price = int(row["price"])
                    self._settle(tx, ctx, escrow, row, price, "delivered", item, ("held",))
        except IntegrityError:  # the same order id, placed meanwhile
            raced = self._row(order_id)
            if raced is None:
                raise
            return self._same_order(raced, buyer, listing_id), False
        return self.order(ctx, order_id), True

    def _refuse_second_copy(self, tx: Connection, listing_id: str, buyer: str) -> None:
        """A file or an album is bought once: the buyer holds it (or will) already."""
        held = tx.execute(
            select(_o.c.id).where(
                _o.c.listing_id == listing_id,
                _o.c.buyer == buyer,
                _o.c.status.in_((*OPEN, "settled")),
            )
        ).first()
        if held is not None:
            raise AlreadyBought(f"you bought this already (order {held.id})", order=held.id)

    def _same_order(self, row: RowMapping, buyer: str, listing_id: str) -> Order:
        if row["buyer"] != buyer or row["listing_id"] != listing_id:
            raise OrderIdTaken(f"order id {row['id']} is taken: choose another")
        return _order(row)

    def _acting_for(self, seller: str, ctx: Context) -> Context:
        """The seller's standing instruction, as the node carries it out: a delivery is
        made (and audited) in the seller's name."""
        return Context(
            actor=Actor(id=seller, kind="identity"),
            request_id=ctx.request_id,
            correlation_id=ctx.correlation_id or ctx.request_id,
        )

    def _prepare_handover(self, seller_ctx: Context, offer: RowMapping, buyer: str) -> Any:
        """What can be made before the purchase's transaction (copies of an album's
        photos) and what would fail it early (a buyer no key can be sealed to)."""
        if offer["kind"] == "file":
            self.squid.recipient_key(buyer)
        if offer["kind"] == "album":
            self.squid.recipient_key(buyer)
            return self.pic.album_copies(seller_ctx, offer["item_id"])
        return None

    def _hand_over(
        self, tx: Connection, seller_ctx: Context, row: dict[str, Any], handover: Any
    ) -> dict[str, Any]:
        """Deliver goods to the buyer inside the purchase's transaction; what the licence
        says was handed over."""
        kind, item_id, buyer = row["kind"], row["item_id"], row["buyer"]
        if kind == "file":
            share = self.drive.share_in(tx, seller_ctx, item_id, buyer, ["read"], None)
            latest = self.drive.versions(seller_ctx, item_id)[0]
            described: dict[str, Any] = {
                "id": item_id,
                "version": latest.version,
                "size": latest.size,
                # Wrapped: the buyer holds the file's key; served: the node reads it for them.
                "key": "wrapped" if share.key_wrapped else "served",
            }
            if latest.cid is not None:
                described["cid"] = latest.cid
            return described
        if kind == "album":
            assert isinstance(handover, AlbumCopies)
            shared = self.pic.share_album_in(tx, seller_ctx, item_id, buyer, handover)
            return {"id": item_id, "photos": shared.photos}
        assert kind == "nft"
        self.wallet.sell_nft(tx, item_id, row["listing_id"], buyer, self.node.identity.did)
        return {"id": item_id}

    def _settle(
        self,
        tx: Connection,
        ctx: Context,
        escrow: Escrow,
        row: dict[str, Any] | RowMapping,
        paid: int,
        outcome: str,
        item: dict[str, Any],
        allowed: tuple[str, ...],
        *,
        resolution: str | None = None,
    ) -> None:
        """Pay the order out of escrow (`paid` of its price; the rest returns to the
        buyer) and issue its licence, in the caller's ledger transaction, if the order is
        still in one of the `allowed` states."""
        split = Split.of(paid, row["fee_bps"], row["royalty_bps"] if row["creator"] else 0)
        transfers = escrow.settle(row["id"], split, row["seller"], row["creator"])
        now = self.k.clock.now()
        document = licence.issue(
            row,
            item,
            paid=paid,
            transfers=transfers,
            issuer=self.node.identity.did,
            key=self.node.identity.signing_key(),
            issued_at=now,
        )
        self._transition(
            tx,
            row["id"],
            allowed,
            status="settled",
            paid=str(paid),
            outcome=outcome,
            resolution=resolution,
            licence=json.dumps(document, separators=(",", ":")),
            deadline=None,
        )
        # The licence's digest in the audit log makes its issue provable there.
        self.k.guard.record(
            ctx, "share", f"qmarket:licence:{licence.digest(document)}", "allow", tx
        )
        self._announce(tx, ctx, "qmarket.order.settled", {**row, "status": "settled"})

    def _transition(
        self, tx: Connection, order_id: str, allowed: tuple[str, ...], **values: Any
    ) -> None:
        """Compare-and-set the order's status: refused if it is no longer one of `allowed`
        (someone else acted first), which rolls the caller's transaction back."""
        moved = tx.execute(
            update(_o)
            .where(_o.c.id == order_id, _o.c.status.in_(allowed))
            .values(updated_at=self.k.clock.now(), **values)
        ).rowcount
        if moved != 1:
            raise OrderState(f"order {order_id} has moved on meanwhile: look at it again")

    # After the purchase: a service's delivery, acceptance, refunds, disputes --------------

    def deliver(self, ctx: Context, order_id: str, request: DeliverRequest) -> Order:
        """The seller delivers a service (a note, and a file of theirs handed over); the
        buyer then has the acceptance window to accept or dispute it."""
        row = self._party_row(ctx, order_id, "seller")
        if row["kind"] != "service":
            raise OrderState("goods are delivered when they are bought")
        self._require_status(row, ("held",), "delivered")
        if request.file is not None:
            info = self.drive.file(ctx, request.file)
            if info.owner != row["seller"]:
                raise BadRequest("the deliverable must be a file of your own drive")
            self.squid.recipient_key(row["buyer"])
        hours = timedelta(hours=self.k.settings.market_acceptance_hours)
        deadline = min(self.k.clock.now() + hours, row["hold_expires_at"] - HOLD_MARGIN)
        with self.k.change(ctx, "write", order_resource(order_id)) as tx:
            if request.file is not None:
                self.drive.share_in(tx, ctx, request.file, row["buyer"], ["read"], None)
            self._transition(
                tx,
                order_id,
                ("held",),
                status="delivered",
                delivery_note=request.note,
                delivery_file=request.file,
                deadline=deadline,
            )
            self._announce(tx, ctx, "qmarket.order.delivered", row)
        return self.order(ctx, order_id)

    def accept(self, ctx: Context, order_id: str) -> Order:
        """The buyer accepts a service (delivered, or early): it settles now."""
        row = self._party_row(ctx, order_id, "buyer")
        self._require_status(row, ("held", "delivered"), "accepted")
        self._settle_order(ctx, row, int(row["price"]), "accepted", ("held", "delivered"))
        return self.order(ctx, order_id)

    def refund(self, ctx: Context, order_id: str) -> Order:
        """Give the buyer all of the price back: the seller, or a moderator, may."""
        row = self._row_or_404(order_id)
        moderator = self.is_moderator(ctx)
        if not moderator and ctx.actor.id != row["seller"]:
            if ctx.actor.id == row["buyer"]:
                raise OrderState("a buyer asks for a refund by disputing the order")
            raise NotFound(f"no order {order_id}")
        self._require_status(row, OPEN, "refunded")
        outcome = "refunded_by_seller" if ctx.actor.id == row["seller"] else "refunded"
        if moderator and ctx.actor.id != row["seller"]:
            resource, action = DISPUTES, "execute"
        else:
            resource, action = order_resource(order_id), "write"
        self._release_order(ctx, row, outcome, OPEN, action=action, resource=resource)
        return self.order(ctx, order_id)

    def dispute(self, ctx: Context, order_id: str, request: DisputeRequest) -> Order:
        """Buyer or seller takes an open order to a moderator; the money stays held until
        one decides (or the dispute window ends, which refunds the buyer)."""
        row = self._party_row(ctx, order_id, "buyer", "seller")
        self._require_status(row, ("held", "delivered"), "disputed")
        hours = timedelta(hours=self.k.settings.market_dispute_hours)
        deadline = min(self.k.clock.now() + hours, row["hold_expires_at"] - HOLD_MARGIN)
        with self.k.change(ctx, "write", order_resource(order_id)) as tx:
            self._transition(
                tx,
                order_id,
                ("held", "delivered"),
                status="disputed",
                dispute=request.reason,
                disputed_by=ctx.actor.id,
                deadline=deadline,
            )
            self._announce(tx, ctx, "qmarket.order.disputed", row)
        return self.order(ctx, order_id)

    def resolve(self, ctx: Context, order_id: str, request: ResolveRequest) -> Order:
        """A moderator splits a disputed order: the buyer pays `paid` (fee and royalty
        come out of it, the seller gets the rest) and has the remainder back."""
        self.k.check(ctx, "execute", DISPUTES)
        row = self._row_or_404(order_id)
        self._require_status(row, ("disputed",), "resolved")
        if request.paid > int(row["price"]):
            raise BadRequest(f"paid is at most the price, {row['price']}")
        if request.paid == 0:
            self._release_order(
                ctx,
                row,
                "resolved",
                ("disputed",),
                action="execute",
                resource=DISPUTES,
                resolution=request.note,
            )
        else:
            self._settle_order(
                ctx,
                row,
                request.paid,
                "resolved",
                ("disputed",),
                action="execute",
                resource=DISPUTES,
                resolution=request.note,
            )
        return self.order(ctx, order_id)

    def _settle_order(
        self,
        ctx: Context,
        row: RowMapping,
        paid: int,
        outcome: str,
        allowed: tuple[str, ...],
        *,
        action: str = "write",
        resource: str | None = None,
        resolution: str | None = None,
    ) -> None:
        item: dict[str, Any] = {"id": row["item_id"]} if row["item_id"] else {}
        if row["delivery_note"]:
            item["delivery"] = row["delivery_note"]
        if row["delivery_file"]:
            item["file"] = row["delivery_file"]
        with self._order_write(ctx, row, action, resource) as (tx, escrow):
            self._settle(tx, ctx, escrow, row, paid, outcome, item, allowed, resolution=resolution)

    def _release_order(
        self,
        ctx: Context,
        row: RowMapping,
        outcome: str,
        allowed: tuple[str, ...],
        *,
        action: str = "write",
        resource: str | None = None,
        resolution: str | None = None,
    ) -> None:
        with self._order_write(ctx, row, action, resource) as (tx, escrow):
            self._transition(
                tx,
                row["id"],
                allowed,
                status="refunded",
                paid="0",
                outcome=outcome,
                resolution=resolution,
                deadline=None,
            )
            escrow.release(row["id"])
            self.catalogue.give_back_one(tx, row["listing_id"])
            self._announce(tx, ctx, "qmarket.order.refunded", {**row, "status": "refunded"})

    @contextlib.contextmanager
    def _order_write(
        self, ctx: Context, row: RowMapping, action: str, resource: str | None
    ) -> Iterator[tuple[Connection, Escrow]]:
        """A ledger transaction on the order's escrow, audited as `ctx`'s act on it."""
        resource = resource or order_resource(row["id"])
        with self.wallet.agent(ctx, action, resource, parties=[row["buyer"]]) as agent:
            if resource != order_resource(row["id"]):
                self.k.guard.record(ctx, "write", order_resource(row["id"]), "allow", agent.tx)
            yield agent.tx, Escrow(agent, row["asset"])

    # Deadlines and the ledger's own expiry -----------------------------------------------

    def act_on_deadlines(self, limit: int = DEADLINES_BATCH) -> int:
        """Do what nobody did in time: refund an undelivered service or an unresolved
        dispute, settle a delivered service the buyer let be. How many orders moved."""
        now = self.k.clock.now()
        with self.k.db.read() as conn:
            due = list(
                conn.execute(
                    select(_o)
                    .where(_o.c.status.in_(OPEN), _o.c.deadline <= now)
                    .order_by(_o.c.deadline)
                    .limit(limit)
                ).mappings()
            )
        ctx = Context.system()
        moved = 0
        for row in due:
            try:
                if row["status"] == "delivered":
                    self._settle_order(
                        ctx, row, int(row["price"]), "accepted_by_default", ("delivered",)
                    )
                else:
                    outcome = "not_delivered" if row["status"] == "held" else "unresolved"
                    self._release_order(ctx, row, outcome, (row["status"],))
                moved += 1
            except OrderState:
                continue  # someone acted meanwhile
            except TransferRefused as refused:
                # The hold is gone (its own timeout voided it): the buyer has the money.
                log.warning("order %s: escrow refused (%s)", row["id"], refused.detail)
        return moved

    async def run_deadlines(self, stop: asyncio.Event) -> None:
        """Background task: act on orders whose deadline passed."""
        while not stop.is_set():
            try:
                while await asyncio.to_thread(self.act_on_deadlines) == DEADLINES_BATCH:
                    pass
            except Exception:
                log.exception("acting on order deadlines failed; retrying")
            try:
                await asyncio.wait_for(stop.wait(), DEADLINES_EVERY_SECONDS)
            except TimeoutError:
                continue

    def on_hold_expired(self, tx: Connection, event: Event) -> None:
        """The ledger voided an order's hold at its timeout: the order is refunded."""
        order_id = order_of_hold(str(event.data.get("id", "")))
        if order_id is None:
            return
        row = tx.execute(select(_o).where(_o.c.id == order_id)).mappings().first()
        if row is None or row["status"] not in OPEN:
            return
        moved = tx.execute(
            update(_o)
            .where(_o.c.id == order_id, _o.c.status.in_(OPEN))
            .values(
                status="refunded",
                paid="0",
                outcome="expired",
                deadline=None,
                updated_at=self.k.clock.now(),
            )
        ).rowcount
        if moved:
            self.catalogue.give_back_one(tx, row["listing_id"])
            self._announce(tx, Context.system(), "qmarket.order.refunded", row)

    def on_file_deleted(self, tx: Connection, event: Event) -> None:
        """A file deleted for good can no longer be sold: its listings are withdrawn."""
        file_id = str(event.data.get("file_id", ""))
        rows = list(
            tx.execute(
                select(tables.listings).where(
                    tables.listings.c.kind == "file",
                    tables.listings.c.item_id == file_id,
                    tables.listings.c.status != "withdrawn",
                )
            ).mappings()
        )
        for row in rows:
            self.catalogue.withdraw_in(tx, Context.system(), row)

    # Reading orders ----------------------------------------------------------------------

    def track_record(self, did: str) -> dict[str, Any]:
        """What reputation counts of an identity's trading here: settled purchases and
        sales, sales refunded by a moderator or past their deadline, reviews received."""

        def counted(*where: Any) -> int:
            return int(
                conn.execute(select(func.count()).select_from(_o).where(*where)).scalar_one()
            )

        with self.k.db.read() as conn:
            bought = counted(_o.c.buyer == did, _o.c.status == "settled")
            sold = counted(_o.c.seller == did, _o.c.status == "settled")
            refunded = counted(_o.c.seller == did, _o.c.outcome.in_(("refunded", "expired")))
            reviews, average = conn.execute(
                select(func.count(), func.avg(_rv.c.rating)).where(_rv.c.seller == did)
            ).one()
        return {
            "bought": bought,
            "sold": sold,
            "refunded": refunded,
            "reviews": int(reviews or 0),
            "average": float(average) if average is not None else None,
        }

    def order(self, ctx: Context, order_id: str) -> Order:
        """An order: for its buyer, its seller, moderators and the operator."""
        row = self._row_or_404(order_id)
        if ctx.actor.id not in (row["buyer"], row["seller"]) and not self.is_moderator(ctx):
            raise NotFound(f"no order {order_id}")
        return _order(row)

    def orders(
        self,
        ctx: Context,
        *,
        role: str,
        status: str | None,
        cursor: str | None,
        limit: int,
    ) -> OrderPage:
        """The caller's purchases (`buyer`) or sales (`seller`), or every dispute
        (`moderator`), newest first."""
        limit = max(1, min(limit, PAGE_MAX))
        query = select(_o)
        if role == "moderator":
            self.k.check(ctx, "execute", DISPUTES)
            query = query.where(_o.c.status == (status or "disputed"))
        else:
            me = ctx.identity("an order")
            query = query.where((_o.c.buyer if role == "buyer" else _o.c.seller) == me)
            if status is not None:
                query = query.where(_o.c.status == status)
        if cursor is not None:
            query = query.where(_o.c.id < cursor)
        with self.k.db.read() as conn:
            rows = list(conn.execute(query.order_by(_o.c.id.desc()).limit(limit + 1)).mappings())
        page = rows[:limit]
        return OrderPage(
            orders=[_order(r) for r in page],
            next_cursor=page[-1]["id"] if len(rows) > limit else None,
        )

    def licence(self, ctx: Context, order_id: str) -> dict[str, Any]:
        """The signed licence of a settled order, for its buyer, seller and the operator."""
        row = self._row_or_404(order_id)
        allowed = ctx.actor.id in (row["buyer"], row["seller"]) or ctx.actor.kind in (
            "operator",
            "node",
        )
        if not allowed or row["licence"] is None:
            raise NotFound(f"no licence for order {order_id}")
        document: dict[str, Any] = json.loads(row["licence"])
        return document

    def verify_licence(self, document: Any, licensee: str | None = None) -> LicenceCheck:
        """Check a licence as anyone could offline (this node need not have issued it)."""
        return licence.check(document, licensee=licensee)

    # Reviews -----------------------------------------------------------------------------

    def review(self, ctx: Context, order_id: str, request: ReviewRequest) -> Review:
        """The buyer of a settled purchase reviews it, once."""
        row = self._party_row(ctx, order_id, "buyer")
        if row["status"] != "settled":
            raise OrderState("only a settled purchase can be reviewed")
        values = {
            "order_id": order_id,
            "listing_id": row["listing_id"],
            "seller": row["seller"],
            "buyer": row["buyer"],
            "rating": request.rating,
            "text": request.text,
            "created_at": self.k.clock.now(),
        }
        try:
            with self.k.change(ctx, "write", order_resource(order_id)) as tx:
                tx.execute(insert(_rv).values(**values))
                self.k.bus.publish(
                    tx,
                    "qmarket.review.created",
                    {
                        "order_id": order_id,
                        "listing_id": row["listing_id"],
                        "rating": values["rating"],
                    },
                    actor=ctx.actor.id,
                    subject=listing_resource(row["listing_id"]),
                    correlation_id=ctx.correlation_id or ctx.request_id,
                )
        except IntegrityError:
            raise AlreadyReviewed("this purchase has its review already") from None
        return Review(**values)

    def reviews(self, listing_id: str, *, limit: int = PAGE_MAX) -> list[Review]:
        self.catalogue.row(listing_id)
        with self.k.db.read() as conn:
            rows = conn.execute(
                select(_rv)
                .where(_rv.c.listing_id == listing_id)
                .order_by(_rv.c.created_at.desc())
                .limit(max(1, min(limit, PAGE_MAX)))
            ).mappings()
            return [Review(**dict(r)) for r in rows]

    # Moderators --------------------------------------------------------------------------

    def add_moderator(self, ctx: Context, did: str) -> Moderator:
        """The operator names a moderator of disputes (a Qonsent grant, revocable)."""
        if ctx.actor.kind not in ("operator", "node"):
            self.k.check(ctx, "admin", DISPUTES)
        self.squid.identity(did)
        grant = self.qonsent.grant(
            ctx,
            GrantRequest(
                grantee=did,
                resource=DISPUTES,
                actions=["execute"],
                purpose="moderates Qmarket disputes",
            ),
        )
        return Moderator(did=did, grant_id=grant.id)

    def moderators(self, ctx: Context) -> list[Moderator]:
        return [
            Moderator(did=g.grantee, grant_id=g.id)
            for g in self.qonsent.who_can(ctx, DISPUTES)
            if g.revoked_at is None and g.resource == DISPUTES and "execute" in g.actions
        ]

    def remove_moderator(self, ctx: Context, did: str) -> None:
        held = [m for m in self.moderators(ctx) if m.did == did]
        if not held:
            raise NotFound(f"{did} is no moderator")
        for moderator in held:
            self.qonsent.revoke(ctx, moderator.grant_id)

    # Data-subject requests ---------------------------------------------------------------

    def export_subject(self, ctx: Context, did: str) -> Iterator[ExportItem]:
        """The person's listings, orders (bought and sold), reviews and licences."""
        with self.k.db.read() as conn:
            listings = [
                dict(r)
                for r in conn.execute(
                    select(tables.listings).where(tables.listings.c.seller == did)
                ).mappings()
            ]
            orders = [
                dict(r)
                for r in conn.execute(
                    select(_o).where(or_(_o.c.buyer == did, _o.c.seller == did))
                ).mappings()
            ]
            reviews = [
                dict(r) for r in conn.execute(select(_rv).where(_rv.c.buyer == did)).mappings()
            ]
        yield json_item("qmarket/listings.json", listings)
        yield json_item("qmarket/orders.json", orders)
        yield json_item("qmarket/reviews.json", reviews)

    def erase_subject(self, ctx: Context, did: str) -> dict[str, int]:
        """Withdraw the person's listings, delete their reviews and what they wrote on
        orders; orders stay (the other party's record of a sale), as the ledger does."""
        with self.k.db.read() as conn:
            live = list(
                conn.execute(
                    select(tables.listings).where(
                        tables.listings.c.seller == did, tables.listings.c.status != "withdrawn"
                    )
                ).mappings()
            )
        with self.k.change(ctx, "write", seller_resource(did)) as tx:
            for row in live:
                self.catalogue.withdraw_in(tx, ctx, row)
            reviews = tx.execute(delete(_rv).where(_rv.c.buyer == did)).rowcount
            tx.execute(update(_o).where(_o.c.disputed_by == did).values(dispute="(erased)"))
            tx.execute(
                update(_o)
                .where(_o.c.seller == did, _o.c.delivery_note.is_not(None))
                .values(delivery_note="(erased)")
            )
        return {"listings_withdrawn": len(live), "reviews": int(reviews)}

    # Rows and helpers --------------------------------------------------------------------

    def _row(self, order_id: str, *, conn: Connection | None = None) -> RowMapping | None:
        query = select(_o).where(_o.c.id == order_id)
        if conn is not None:
            return conn.execute(query).mappings().first()
        with self.k.db.read() as read:
            return read.execute(query).mappings().first()

    def _row_or_404(self, order_id: str, *, conn: Connection | None = None) -> RowMapping:
        row = self._row(order_id, conn=conn)
        if row is None:
            raise NotFound(f"no order {order_id}")
        return row

    def _party_row(self, ctx: Context, order_id: str, *roles: str) -> RowMapping:
        """The order, if the caller is its `roles` (buyer, seller); 404 to strangers."""
        me = ctx.identity("an order")
        row = self._row_or_404(order_id)
        if me not in (row["buyer"], row["seller"]):
            raise NotFound(f"no order {order_id}")
        if not any(row[role] == me for role in roles):
            raise OrderState(f"only the order's {' or '.join(roles)} may do this")
        return row

    def _require_status(self, row: RowMapping, allowed: tuple[str, ...], what: str) -> None:
        if row["status"] not in allowed:
            raise OrderState(f"order {row['id']} is {row['status']}: it cannot be {what}")

    def _announce(
        self, tx: Connection, ctx: Context, kind: str, row: RowMapping | dict[str, Any]
    ) -> None:
        self.k.bus.publish(
            tx,
            kind,
            {
                "order_id": row["id"],
                "listing_id": row["listing_id"],
                "buyer": row["buyer"],
                "seller": row["seller"],
                "status": row["status"],
            },
            actor=ctx.actor.id,
            subject=order_resource(row["id"]),
            correlation_id=ctx.correlation_id or ctx.request_id,
        )


def _order(row: RowMapping) -> Order:
    return Order(
        id=row["id"],
        listing_id=row["listing_id"],
        buyer=row["buyer"],
        seller=row["seller"],
        kind=row["kind"],
        item_id=row["item_id"],
        title=row["title"],
        terms=row["terms"],
        price=int(row["price"]),
        asset=row["asset"],
        fee_bps=row["fee_bps"],
        creator=row["creator"],
        royalty_bps=row["royalty_bps"],
        status=row["status"],
        hold_id=row["hold_id"],
        deadline=row["deadline"],
        delivery_note=row["delivery_note"],
        delivery_file=row["delivery_file"],
        dispute=row["dispute"],
        disputed_by=row["disputed_by"],
        resolution=row["resolution"],
        paid=None if row["paid"] is None else int(row["paid"]),
        outcome=row["outcome"],
        licensed=row["licence"] is not None,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )

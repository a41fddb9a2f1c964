"""Listings: what sellers offer, kept searchable through Qindex while they are for sale.

A listing is a standing offer: its seller's signed instruction to the node to hand the
item over to whoever pays its price, on its terms. Listings are public (one Qonsent
grant of `read` on `qmarket:listing:*` to the public, made by the node); only an active
one is in the search index. A unique token on offer is held by its listing: it changes
hands only through that sale until the listing is withdrawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from anarq.kernel import Kernel
from anarq.kernel.errors import BadRequest, Conflict, Forbidden, NotFound
from anarq.kernel.guard import Context
from anarq.kernel.ids import new_id
from anarq.qdrive.service import DriveService
from anarq.qindex.models import DocumentIn
from anarq.qindex.service import SEARCH_LIMIT_MAX, QindexService, SearchQuery
from anarq.qmarket import tables
from anarq.qmarket.models import Listing, ListingChange, ListingCreate, ListingPage
from anarq.qonsent.models import PUBLIC, GrantRequest
from anarq.qonsent.service import QonsentService
from anarq.qpic.service import QpicService
from anarq.qwallet.service import WalletService

LISTINGS_PATTERN = "qmarket:listing:*"
PAGE_MAX = SEARCH_LIMIT_MAX

_l = tables.listings
_r = tables.reviews


def listing_resource(listing_id: str) -> str:
    return f"qmarket:listing:{listing_id}"


def seller_resource(did: str) -> str:
    return f"qmarket:seller:{did}"


class NotForSale(Conflict):
    code = "qmarket.not_for_sale"


class Catalogue:
    def __init__(
        self,
        kernel: Kernel,
        qonsent: QonsentService,
        wallet: WalletService,
        drive: DriveService,
        pic: QpicService,
        index: QindexService,
    ) -> None:
        self.k = kernel
        self.qonsent = qonsent
        self.wallet = wallet
        self.drive = drive
        self.pic = pic
        self.index = index
        self._public = False

    # Offering ----------------------------------------------------------------------------

    def create(self, ctx: Context, request: ListingCreate) -> Listing:
        """Offer an item of the caller's own (or a service) for sale."""
        seller = ctx.identity("a shop")
        try:
            self.wallet.asset(request.asset)
        except NotFound:
            raise BadRequest(f"no asset {request.asset} on this node") from None
        self._require_own_item(ctx, seller, request)
        self._ensure_public()
        listing_id = new_id()
        now = self.k.clock.now()
        row = {
            "id": listing_id,
            "seller": seller,
            "kind": request.kind,
            "item_id": request.item,
            "title": request.title,
            "description": request.description,
            "price": str(request.price),
            "asset": request.asset,
            "terms": request.terms,
            "stock": 1 if request.kind == "nft" else request.stock,
            "delivery_hours": request.delivery_hours,
            "status": "active",
            "sales": 0,
            "created_at": now,
            "updated_at": now,
        }
        with self.k.change(ctx, "write", seller_resource(seller)) as tx:
            tx.execute(insert(_l).values(**row))
            self.qonsent.register_owner(tx, listing_resource(listing_id), seller)
            if request.kind == "nft":
                assert request.item is not None
                self.wallet.list_nft(tx, request.item, seller, listing_id)
            self.reindex(tx, row)
            self._announce(tx, ctx, "qmarket.listing.created", row)
        return self.get(ctx, listing_id)

    def _require_own_item(self, ctx: Context, seller: str, request: ListingCreate) -> None:
        item = request.item
        if request.kind == "file":
            assert item is not None
            info = self.drive.file(ctx, item)
            if info.owner != seller:
                raise Forbidden("you can sell only files of your own drive")
            if info.trashed_at is not None:
                raise Conflict("the file is in the trash: restore it before selling it")
        elif request.kind == "album":
            assert item is not None
            album = self.pic.album(ctx, item)
            if album.owner != seller:
                raise Forbidden("you can sell only albums of your own")
            if album.locked or album.locked_by is not None:
                raise Conflict("a locked album cannot be shared, so it cannot be sold")
        elif request.kind == "nft":
            assert item is not None
            token = self.wallet.nft(ctx, item)
            if token.owner != seller:
                raise Forbidden("you can sell only tokens you hold")

    def _ensure_public(self) -> None:
        """Listings are public offers: the public may read every listing (one grant)."""
        if self._public:
            return
        if LISTINGS_PATTERN not in self.qonsent.reach(PUBLIC, "read"):
            self.qonsent.grant(
                Context.system(),
                GrantRequest(
                    grantee=PUBLIC,
                    resource=LISTINGS_PATTERN,
                    actions=["read"],
                    purpose="Qmarket listings are public offers",
                ),
            )
        self._public = True

    def change(self, ctx: Context, listing_id: str, change: ListingChange) -> Listing:
        """The seller changes a listing; orders already placed keep their terms."""
        self.row(listing_id)
        fields = change.model_dump(exclude_unset=True)
        with self.k.change(ctx, "write", listing_resource(listing_id)) as tx:
            row = dict(self.row(listing_id, conn=tx))
            if row["status"] == "withdrawn":
                raise Conflict("the listing was withdrawn")
            if row["kind"] == "nft" and "stock" in fields:
                raise BadRequest("a unique token sells once: its stock is not yours to set")
            for name in ("title", "description", "terms", "stock"):
                if name in fields:
                    row[name] = fields[name]
            if "price" in fields:
                row["price"] = str(fields["price"])
            if fields.get("status") is not None:
                row["status"] = fields["status"]
            if row["stock"] == 0:
                row["status"] = "sold_out"
            elif row["status"] == "sold_out":
                row["status"] = "active"  # restocked
            row["updated_at"] = self.k.clock.now()
            tx.execute(update(_l).where(_l.c.id == listing_id).values(**row))
            self.reindex(tx, row)
            self._announce(tx, ctx, "qmarket.listing.changed", row)
        return self.get(ctx, listing_id)

    def withdraw(self, ctx: Context, listing_id: str) -> Listing:
        """Take a listing off sale for good (open orders go on); a token is released."""
        self.row(listing_id)
        with self.k.change(ctx, "write", listing_resource(listing_id)) as tx:
            row = self.row(listing_id, conn=tx)
            if row["status"] == "withdrawn":
                raise Conflict("the listing was withdrawn already")
            self.withdraw_in(tx, ctx, row)
        return self.get(ctx, listing_id)

    def withdraw_in(self, tx: Connection, ctx: Context, row: RowMapping) -> None:
        now = self.k.clock.now()
        tx.execute(
            update(_l).where(_l.c.id == row["id"]).values(status="withdrawn", updated_at=now)
        )
        if row["kind"] == "nft" and row["item_id"] is not None:
            self.wallet.unlist_nft(tx, row["item_id"], row["id"])
        self.index.remove_document(tx, listing_resource(row["id"]))
        self._announce(tx, ctx, "qmarket.listing.withdrawn", {**row, "status": "withdrawn"})

    # Stock, inside an order's transaction ------------------------------------------------

    def take_one(self, tx: Connection, row: RowMapping) -> None:
        """One unit of `row`'s listing is sold: refused if it is no longer on sale as read."""
        stock = row["stock"]
        left = None if stock is None else stock - 1
        status = "sold_out" if left == 0 else row["status"]
        same_stock = _l.c.stock.is_(None) if stock is None else _l.c.stock == stock
        taken = tx.execute(
            update(_l)
            .where(_l.c.id == row["id"], _l.c.status == "active", same_stock)
            .values(stock=left, status=status, sales=_l.c.sales + 1)
        ).rowcount
        if taken != 1:
            raise NotForSale("the listing changed while you bought: look at it again")
        if status != row["status"]:
            self.reindex(tx, {**row, "stock": left, "status": status})

    def give_back_one(self, tx: Connection, listing_id: str) -> None:
        """An order was refunded: its unit is for sale again (a token stays its seller's)."""
        row = self.row(listing_id, conn=tx)
        changes: dict[str, Any] = {"sales": max(0, row["sales"] - 1)}
        if row["stock"] is not None and row["kind"] != "nft":
            changes["stock"] = row["stock"] + 1
            if row["status"] == "sold_out":
                changes["status"] = "active"
        tx.execute(update(_l).where(_l.c.id == listing_id).values(**changes))
        if changes.get("status") == "active":
            self.reindex(tx, {**row, **changes})

    # Reading -----------------------------------------------------------------------------

    def row(self, listing_id: str, *, conn: Connection | None = None) -> RowMapping:
        query = select(_l).where(_l.c.id == listing_id)
        if conn is not None:
            found = conn.execute(query).mappings().first()
        else:
            with self.k.db.read() as read:
                found = read.execute(query).mappings().first()
        if found is None:
            raise NotFound(f"no listing {listing_id}")
        return found

    def get(self, ctx: Context, listing_id: str) -> Listing:
        """A listing: anyone's to read, except a withdrawn one (its seller's only)."""
        row = self.row(listing_id)
        if row["status"] == "withdrawn" and not _sees_all(ctx, row["seller"]):
            raise NotFound(f"no listing {listing_id}")
        return self._described([row])[0]

    def page(
        self,
        ctx: Context,
        *,
        q: str | None,
        kind: str | None,
        seller: str | None,
        asset: str | None,
        mine: bool,
        cursor: str | None,
        limit: int,
    ) -> ListingPage:
        """Listings for sale, newest first, or the best matches of a search (`q`)."""
        limit = max(1, min(limit, PAGE_MAX))
        if mine:
            seller = ctx.identity("a shop")
        if q:
            return self._search(ctx, q, kind, seller, asset, cursor, limit)
        query = select(_l)
        if not mine:
            query = query.where(_l.c.status == "active")
        if kind is not None:
            query = query.where(_l.c.kind == kind)
        if seller is not None:
            query = query.where(_l.c.seller == seller)
        if asset is not None:
            query = query.where(_l.c.asset == asset)
        if cursor is not None:
            query = query.where(_l.c.id < cursor)
        with self.k.db.read() as conn:
            rows = list(conn.execute(query.order_by(_l.c.id.desc()).limit(limit + 1)).mappings())
        page = rows[:limit]
        return ListingPage(
            listings=self._described(page),
            next_cursor=page[-1]["id"] if len(rows) > limit else None,
        )

    def _search(
        self,
        ctx: Context,
        q: str,
        kind: str | None,
        seller: str | None,
        asset: str | None,
        cursor: str | None,
        limit: int,
    ) -> ListingPage:
        found = self.index.search(
            ctx,
            SearchQuery(q=q, module="qmarket", type=kind, owner=seller, limit=limit, cursor=cursor),
        )
        ids = [hit.resource.removeprefix("qmarket:listing:") for hit in found.hits]
        with self.k.db.read() as conn:
            rows = {r["id"]: r for r in conn.execute(select(_l).where(_l.c.id.in_(ids))).mappings()}
        chosen = [
            rows[i]
            for i in ids
            if i in rows
            and rows[i]["status"] == "active"
            and (asset is None or rows[i]["asset"] == asset)
        ]
        return ListingPage(listings=self._described(chosen), next_cursor=found.next_cursor)

    def _described(self, rows: Sequence[RowMapping]) -> list[Listing]:
        ids = [r["id"] for r in rows]
        ratings: dict[str, tuple[float, int]] = {}
        if ids:
            with self.k.db.read() as conn:
                for listing_id, average, count in conn.execute(
                    select(_r.c.listing_id, func.avg(_r.c.rating), func.count())
                    .where(_r.c.listing_id.in_(ids))
                    .group_by(_r.c.listing_id)
                ):
                    ratings[listing_id] = (round(float(average), 2), int(count))
        return [
            Listing(
                id=r["id"],
                seller=r["seller"],
                kind=r["kind"],
                item_id=r["item_id"],
                title=r["title"],
                description=r["description"],
                price=int(r["price"]),
                asset=r["asset"],
                terms=r["terms"],
                stock=r["stock"],
                delivery_hours=r["delivery_hours"],
                status=r["status"],
                sales=r["sales"],
                rating=ratings.get(r["id"], (None, 0))[0],
                reviews=ratings.get(r["id"], (None, 0))[1],
                created_at=r["created_at"],
                updated_at=r["updated_at"],
            )
            for r in rows
        ]

    # Search index and events -------------------------------------------------------------

    def reindex(self, tx: Connection, row: RowMapping | dict[str, Any]) -> None:
        """An active listing is in the search index as it is now; any other is not."""
        resource = listing_resource(row["id"])
        if row["status"] != "active":
            self.index.remove_document(tx, resource)
            return
        self.index.index_document(
            tx,
            DocumentIn(
                resource=resource,
                module="qmarket",
                type=row["kind"],
                owner=row["seller"],
                title=row["title"],
                text=row["description"],
                meta={
                    "price": row["price"],
                    "asset": row["asset"],
                    "kind": row["kind"],
                    "seller": row["seller"],
                },
                updated_at=row["updated_at"],
            ),
        )

    def _announce(
        self, tx: Connection, ctx: Context, kind: str, row: RowMapping | dict[str, Any]
    ) -> None:
        self.k.bus.publish(
            tx,
            kind,
            {
                "listing_id": row["id"],
                "seller": row["seller"],
                "kind": row["kind"],
                "status": row["status"],
            },
            actor=ctx.actor.id,
            subject=listing_resource(row["id"]),
            correlation_id=ctx.correlation_id or ctx.request_id,
        )


def _sees_all(ctx: Context, owner: str) -> bool:
    return ctx.actor.kind in ("operator", "node") or ctx.actor.id == owner

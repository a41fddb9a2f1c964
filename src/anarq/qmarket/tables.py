"""Qmarket's tables: listings, orders (each with its escrow hold and deadline), reviews.

Amounts are decimal text, as in Qwallet (they do not fit 64 bits). A listing's price
and terms may change; an order keeps what was agreed when it was placed.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, SmallInteger, String, Table, Text

from anarq.kernel.db import UtcDateTime, metadata

DID_MAX = 200
ASSET_MAX = 16
AMOUNT_TEXT = 40
ITEM_MAX = 64
ORDER_ID_MAX = 40  # leaves room for `m.<order>.<leg>.fee` within Qwallet's 64
TITLE_MAX = 120
DESCRIPTION_MAX = 4000
TERMS_MAX = 2000
NOTE_MAX = 2000
REVIEW_MAX = 2000

listings = Table(
    "qmarket_listings",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("seller", String(DID_MAX), nullable=False),
    Column("kind", String(8), nullable=False),  # file | album | nft | service
    Column("item_id", String(ITEM_MAX), nullable=True),  # none for a service
    Column("title", String(TITLE_MAX), nullable=False),
    Column("description", Text, nullable=False),
    Column("price", String(AMOUNT_TEXT), nullable=False),
    Column("asset", String(ASSET_MAX), nullable=False),
    Column("terms", Text, nullable=False),
    Column("stock", Integer, nullable=True),  # units left; none: as many as sell
    Column("delivery_hours", Integer, nullable=False),  # a service's time to deliver
    Column("status", String(10), nullable=False),  # active | paused | sold_out | withdrawn
    Column("sales", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)
Index("ix_qmarket_listings_seller", listings.c.seller, listings.c.created_at)
Index("ix_qmarket_listings_status", listings.c.status, listings.c.created_at)

orders = Table(
    "qmarket_orders",
    metadata,
    Column("id", String(ORDER_ID_MAX), primary_key=True),
    Column("listing_id", String(26), nullable=False),
    Column("buyer", String(DID_MAX), nullable=False),
    Column("seller", String(DID_MAX), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("item_id", String(ITEM_MAX), nullable=True),
    Column("title", String(TITLE_MAX), nullable=False),
    Column("terms", Text, nullable=False),
    Column("price", String(AMOUNT_TEXT), nullable=False),
    Column("asset", String(ASSET_MAX), nullable=False),
    Column("fee_bps", Integer, nullable=False),
    Column("creator", String(DID_MAX), nullable=True),  # who a royalty goes to
    Column("royalty_bps", Integer, nullable=False),
    # held | delivered | disputed | settled | refunded
    Column("status", String(10), nullable=False),
    Column("hold_id", String(64), nullable=False),  # the escrow's pending transfer
    Column("hold_expires_at", UtcDateTime(), nullable=False),  # when the ledger voids it
    Column("deadline", UtcDateTime(), nullable=True),  # when the node acts if nobody does
    Column("delivery_note", Text, nullable=True),
    Column("delivery_file", String(26), nullable=True),
    Column("dispute", Text, nullable=True),
    Column("disputed_by", String(DID_MAX), nullable=True),
    Column("resolution", Text, nullable=True),
    Column("paid", String(AMOUNT_TEXT), nullable=True),  # what the buyer paid in the end
    Column("outcome", String(24), nullable=True),  # how it ended: accepted | expired | …
    Column("licence", Text, nullable=True),  # the signed licence, once settled
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)
Index("ix_qmarket_orders_buyer", orders.c.buyer, orders.c.created_at)
Index("ix_qmarket_orders_seller", orders.c.seller, orders.c.created_at)
Index("ix_qmarket_orders_listing", orders.c.listing_id)
Index("ix_qmarket_orders_deadline", orders.c.status, orders.c.deadline)

reviews = Table(
    "qmarket_reviews",
    metadata,
    Column("order_id", String(ORDER_ID_MAX), primary_key=True),  # one review per purchase
    Column("listing_id", String(26), nullable=False),
    Column("seller", String(DID_MAX), nullable=False),
    Column("buyer", String(DID_MAX), nullable=False),
    Column("rating", SmallInteger, nullable=False),  # 1 to 5
    Column("text", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)
Index("ix_qmarket_reviews_listing", reviews.c.listing_id, reviews.c.created_at)
Index("ix_qmarket_reviews_seller", reviews.c.seller)

TABLES = (listings, orders, reviews)

"""qmarket: listings, orders with their escrow hold and deadline, reviews; qwallet: a
token's royalty and the listing that holds it for sale

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-04 03:14:56.806649
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qmarket_listings",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("seller", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=True),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("price", sa.String(length=40), nullable=False),
        sa.Column("asset", sa.String(length=16), nullable=False),
        sa.Column("terms", sa.Text(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=True),
        sa.Column("delivery_hours", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("sales", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qmarket_listings")),
    )
    with op.batch_alter_table("qmarket_listings", schema=None) as batch_op:
        batch_op.create_index("ix_qmarket_listings_seller", ["seller", "created_at"], unique=False)
        batch_op.create_index("ix_qmarket_listings_status", ["status", "created_at"], unique=False)

    op.create_table(
        "qmarket_orders",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("listing_id", sa.String(length=26), nullable=False),
        sa.Column("buyer", sa.String(length=200), nullable=False),
        sa.Column("seller", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=True),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("terms", sa.Text(), nullable=False),
        sa.Column("price", sa.String(length=40), nullable=False),
        sa.Column("asset", sa.String(length=16), nullable=False),
        sa.Column("fee_bps", sa.Integer(), nullable=False),
        sa.Column("creator", sa.String(length=200), nullable=True),
        sa.Column("royalty_bps", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("hold_id", sa.String(length=64), nullable=False),
        sa.Column("hold_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivery_note", sa.Text(), nullable=True),
        sa.Column("delivery_file", sa.String(length=26), nullable=True),
        sa.Column("dispute", sa.Text(), nullable=True),
        sa.Column("disputed_by", sa.String(length=200), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("paid", sa.String(length=40), nullable=True),
        sa.Column("outcome", sa.String(length=24), nullable=True),
        sa.Column("licence", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qmarket_orders")),
    )
    with op.batch_alter_table("qmarket_orders", schema=None) as batch_op:
        batch_op.create_index("ix_qmarket_orders_buyer", ["buyer", "created_at"], unique=False)
        batch_op.create_index("ix_qmarket_orders_deadline", ["status", "deadline"], unique=False)
        batch_op.create_index("ix_qmarket_orders_listing", ["listing_id"], unique=False)
        batch_op.create_index("ix_qmarket_orders_seller", ["seller", "created_at"], unique=False)

    op.create_table(
        "qmarket_reviews",
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("listing_id", sa.String(length=26), nullable=False),
        sa.Column("seller", sa.String(length=200), nullable=False),
        sa.Column("buyer", sa.String(length=200), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_qmarket_reviews")),
    )
    with op.batch_alter_table("qmarket_reviews", schema=None) as batch_op:
        batch_op.create_index(
            "ix_qmarket_reviews_listing", ["listing_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_qmarket_reviews_seller", ["seller"], unique=False)

    with op.batch_alter_table("qwallet_nfts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("royalty_bps", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("listed_in", sa.String(length=26), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("qwallet_nfts", schema=None) as batch_op:
        batch_op.drop_column("listed_in")
        batch_op.drop_column("royalty_bps")

    with op.batch_alter_table("qmarket_reviews", schema=None) as batch_op:
        batch_op.drop_index("ix_qmarket_reviews_seller")
        batch_op.drop_index("ix_qmarket_reviews_listing")

    op.drop_table("qmarket_reviews")
    with op.batch_alter_table("qmarket_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_qmarket_orders_seller")
        batch_op.drop_index("ix_qmarket_orders_listing")
        batch_op.drop_index("ix_qmarket_orders_deadline")
        batch_op.drop_index("ix_qmarket_orders_buyer")

    op.drop_table("qmarket_orders")
    with op.batch_alter_table("qmarket_listings", schema=None) as batch_op:
        batch_op.drop_index("ix_qmarket_listings_status")
        batch_op.drop_index("ix_qmarket_listings_seller")

    op.drop_table("qmarket_listings")

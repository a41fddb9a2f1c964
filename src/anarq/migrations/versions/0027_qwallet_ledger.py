"""qwallet: the ledger (assets, accounts, transfers, pending states, failed ids, version)
and unique tokens with their provenance

Amounts are unsigned 128-bit integers kept as decimal text; a transfer's timestamp
(nanoseconds, unique and increasing) is its key. `qwallet_state` holds the one row whose
version every ledger write moves on.

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-25 05:58:53.660402
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qwallet_accounts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("asset", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("flags", sa.Integer(), nullable=False),
        sa.Column("debits_pending", sa.String(length=40), nullable=False),
        sa.Column("debits_posted", sa.String(length=40), nullable=False),
        sa.Column("credits_pending", sa.String(length=40), nullable=False),
        sa.Column("credits_posted", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qwallet_accounts")),
    )
    with op.batch_alter_table("qwallet_accounts", schema=None) as batch_op:
        batch_op.create_index("ux_qwallet_accounts_owner", ["owner", "asset", "name"], unique=True)

    op.create_table(
        "qwallet_assets",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("scale", sa.SmallInteger(), nullable=False),
        sa.Column("issuer", sa.String(length=200), nullable=False),
        sa.Column("supply_cap", sa.String(length=40), nullable=True),
        sa.Column("issuance_account", sa.BigInteger(), nullable=False),
        sa.Column("treasury_account", sa.BigInteger(), nullable=True),
        sa.Column("fee_bps", sa.Integer(), nullable=False),
        sa.Column("fee_min", sa.String(length=40), nullable=False),
        sa.Column("fee_max", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_qwallet_assets")),
    )
    op.create_table(
        "qwallet_failures",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("result", sa.String(length=64), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qwallet_failures")),
    )
    op.create_table(
        "qwallet_nft_events",
        sa.Column("nft_id", sa.String(length=26), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("from_did", sa.String(length=200), nullable=True),
        sa.Column("to_did", sa.String(length=200), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nft_id", "seq", name=op.f("pk_qwallet_nft_events")),
    )
    op.create_table(
        "qwallet_nfts",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("issuer", sa.String(length=200), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qwallet_nfts")),
    )
    with op.batch_alter_table("qwallet_nfts", schema=None) as batch_op:
        batch_op.create_index("ix_qwallet_nfts_owner", ["owner"], unique=False)

    op.create_table(
        "qwallet_pending",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.SmallInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qwallet_pending")),
    )
    with op.batch_alter_table("qwallet_pending", schema=None) as batch_op:
        batch_op.create_index("ix_qwallet_pending_expiry", ["state", "expires_at"], unique=False)

    op.create_table(
        "qwallet_transfers",
        sa.Column(
            "timestamp",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("debit_account", sa.BigInteger(), nullable=False),
        sa.Column("credit_account", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.String(length=40), nullable=False),
        sa.Column("asset", sa.String(length=16), nullable=False),
        sa.Column("pending_id", sa.String(length=64), nullable=True),
        sa.Column("flags", sa.Integer(), nullable=False),
        sa.Column("timeout", sa.Integer(), nullable=False),
        sa.Column("hashlock", sa.String(length=64), nullable=True),
        sa.Column("code", sa.Integer(), nullable=False),
        sa.Column("memo", sa.String(length=140), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("timestamp", name=op.f("pk_qwallet_transfers")),
    )
    with op.batch_alter_table("qwallet_transfers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_qwallet_transfers_credit", ["credit_account", "timestamp"], unique=False
        )
        batch_op.create_index(
            "ix_qwallet_transfers_debit", ["debit_account", "timestamp"], unique=False
        )
        batch_op.create_index("ux_qwallet_transfers_id", ["id"], unique=True)
    state = op.create_table(
        "qwallet_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qwallet_state")),
    )
    op.bulk_insert(state, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("qwallet_state")
    with op.batch_alter_table("qwallet_transfers", schema=None) as batch_op:
        batch_op.drop_index("ux_qwallet_transfers_id")
        batch_op.drop_index("ix_qwallet_transfers_debit")
        batch_op.drop_index("ix_qwallet_transfers_credit")

    op.drop_table("qwallet_transfers")
    with op.batch_alter_table("qwallet_pending", schema=None) as batch_op:
        batch_op.drop_index("ix_qwallet_pending_expiry")

    op.drop_table("qwallet_pending")
    with op.batch_alter_table("qwallet_nfts", schema=None) as batch_op:
        batch_op.drop_index("ix_qwallet_nfts_owner")

    op.drop_table("qwallet_nfts")
    op.drop_table("qwallet_nft_events")
    op.drop_table("qwallet_failures")
    op.drop_table("qwallet_assets")
    with op.batch_alter_table("qwallet_accounts", schema=None) as batch_op:
        batch_op.drop_index("ux_qwallet_accounts_owner")

    op.drop_table("qwallet_accounts")

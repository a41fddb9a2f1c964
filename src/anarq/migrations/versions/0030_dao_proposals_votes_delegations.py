"""dao: DAOs and their parameters, members, delegations, proposals with their signed
snapshot, each voter's power at the snapshot, signed votes

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-04 04:00:07.544450
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dao_daos",
        sa.Column("did", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("creator", sa.String(length=200), nullable=False),
        sa.Column("membership", sa.String(length=8), nullable=False),
        sa.Column("token", sa.String(length=16), nullable=True),
        sa.Column("open", sa.Integer(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("did", name=op.f("pk_dao_daos")),
    )
    op.create_table(
        "dao_delegations",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("dao", sa.String(length=200), nullable=False),
        sa.Column("delegator", sa.String(length=200), nullable=False),
        sa.Column("delegate", sa.String(length=200), nullable=False),
        sa.Column("share_bps", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dao_delegations")),
    )
    with op.batch_alter_table("dao_delegations", schema=None) as batch_op:
        batch_op.create_index("ix_dao_delegations_dao", ["dao", "delegator"], unique=False)

    op.create_table(
        "dao_members",
        sa.Column("dao", sa.String(length=200), nullable=False),
        sa.Column("member", sa.String(length=200), nullable=False),
        sa.Column("weight", sa.String(length=40), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("dao", "member", name=op.f("pk_dao_members")),
    )
    with op.batch_alter_table("dao_members", schema=None) as batch_op:
        batch_op.create_index("ix_dao_members_member", ["member"], unique=False)

    op.create_table(
        "dao_power",
        sa.Column("proposal", sa.String(length=26), nullable=False),
        sa.Column("voter", sa.String(length=200), nullable=False),
        sa.Column("power", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("proposal", "voter", name=op.f("pk_dao_power")),
    )
    op.create_table(
        "dao_proposals",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("dao", sa.String(length=200), nullable=False),
        sa.Column("proposer", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("actions", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.Column("total_power", sa.String(length=40), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("eta", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dao_proposals")),
    )
    with op.batch_alter_table("dao_proposals", schema=None) as batch_op:
        batch_op.create_index("ix_dao_proposals_dao", ["dao", "created_at"], unique=False)
        batch_op.create_index("ix_dao_proposals_state", ["state", "ends_at"], unique=False)

    op.create_table(
        "dao_votes",
        sa.Column("proposal", sa.String(length=26), nullable=False),
        sa.Column("voter", sa.String(length=200), nullable=False),
        sa.Column("choice", sa.Text(), nullable=False),
        sa.Column("power", sa.String(length=40), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("cast_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("proposal", "voter", name=op.f("pk_dao_votes")),
    )


def downgrade() -> None:
    op.drop_table("dao_votes")
    with op.batch_alter_table("dao_proposals", schema=None) as batch_op:
        batch_op.drop_index("ix_dao_proposals_state")
        batch_op.drop_index("ix_dao_proposals_dao")

    op.drop_table("dao_proposals")
    op.drop_table("dao_power")
    with op.batch_alter_table("dao_members", schema=None) as batch_op:
        batch_op.drop_index("ix_dao_members_member")

    op.drop_table("dao_members")
    with op.batch_alter_table("dao_delegations", schema=None) as batch_op:
        batch_op.drop_index("ix_dao_delegations_dao")

    op.drop_table("dao_delegations")
    op.drop_table("dao_daos")

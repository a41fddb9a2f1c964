"""qflow: workflows and every version of their definitions, durable runs with their
lease, and each step attempt

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-04 04:39:42.963490
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qflow_runs",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("workflow_id", sa.String(length=26), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("trigger", sa.Text(), nullable=False),
        sa.Column("dedup", sa.String(length=120), nullable=True),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("outputs", sa.Text(), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qflow_runs")),
    )
    with op.batch_alter_table("qflow_runs", schema=None) as batch_op:
        batch_op.create_index("ix_qflow_runs_ready", ["status", "next_at"], unique=False)
        batch_op.create_index("ix_qflow_runs_workflow", ["workflow_id", "created_at"], unique=False)
        batch_op.create_index("ux_qflow_runs_dedup", ["workflow_id", "dedup"], unique=True)

    op.create_table(
        "qflow_steps",
        sa.Column("run_id", sa.String(length=26), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("attempt", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("input", sa.Text(), nullable=True),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "step", "attempt", name=op.f("pk_qflow_steps")),
    )
    op.create_table(
        "qflow_versions",
        sa.Column("workflow_id", sa.String(length=26), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("workflow_id", "version", name=op.f("pk_qflow_versions")),
    )
    op.create_table(
        "qflow_workflows",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=10), nullable=False),
        sa.Column("event", sa.String(length=100), nullable=True),
        sa.Column("hook_secret", sa.String(length=64), nullable=True),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qflow_workflows")),
    )
    with op.batch_alter_table("qflow_workflows", schema=None) as batch_op:
        batch_op.create_index("ix_qflow_workflows_trigger", ["enabled", "trigger"], unique=False)
        batch_op.create_index("ux_qflow_workflows_name", ["owner", "name"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("qflow_workflows", schema=None) as batch_op:
        batch_op.drop_index("ux_qflow_workflows_name")
        batch_op.drop_index("ix_qflow_workflows_trigger")

    op.drop_table("qflow_workflows")
    op.drop_table("qflow_versions")
    op.drop_table("qflow_steps")
    with op.batch_alter_table("qflow_runs", schema=None) as batch_op:
        batch_op.drop_index("ux_qflow_runs_dedup")
        batch_op.drop_index("ix_qflow_runs_workflow")
        batch_op.drop_index("ix_qflow_runs_ready")

    op.drop_table("qflow_runs")

"""Qflow's tables: workflows and every version of their definitions, runs (where each
stands, its lease, its data) and each step attempt of a run."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text

from anarq.kernel.db import UtcDateTime, metadata

DID_MAX = 200

workflows = Table(
    "qflow_workflows",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("owner", String(DID_MAX), nullable=False),
    Column("name", String(64), nullable=False),
    Column("version", Integer, nullable=False),  # the current one
    Column("enabled", Integer, nullable=False),
    Column("trigger", String(10), nullable=False),  # event | schedule | webhook | manual
    Column("event", String(100), nullable=True),  # an event trigger's pattern
    Column("hook_secret", String(64), nullable=True),  # a webhook's HMAC key (hex)
    Column("next_run_at", UtcDateTime(), nullable=True),  # a schedule's next tick
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)
Index("ux_qflow_workflows_name", workflows.c.owner, workflows.c.name, unique=True)
Index("ix_qflow_workflows_trigger", workflows.c.enabled, workflows.c.trigger)

versions = Table(
    "qflow_versions",
    metadata,
    Column("workflow_id", String(26), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("definition", Text, nullable=False),  # canonical JSON
    Column("note", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

runs = Table(
    "qflow_runs",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("workflow_id", String(26), nullable=False),
    Column("version", Integer, nullable=False),
    Column("owner", String(DID_MAX), nullable=False),
    # queued | running | succeeded | failed | cancelled
    Column("status", String(10), nullable=False),
    Column("trigger", Text, nullable=False),  # JSON: what started it
    Column("dedup", String(120), nullable=True),  # one run per event or tick
    Column("step", Integer, nullable=False),  # the index of the next step to run
    Column("attempt", Integer, nullable=False),  # of that step
    Column("outputs", Text, nullable=False),  # JSON: steps.<id> so far
    Column("next_at", UtcDateTime(), nullable=False),  # runnable from
    Column("lease_until", UtcDateTime(), nullable=True),  # a worker holds it until
    Column("error", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("started_at", UtcDateTime(), nullable=True),
    Column("finished_at", UtcDateTime(), nullable=True),
)
Index("ix_qflow_runs_ready", runs.c.status, runs.c.next_at)
Index("ix_qflow_runs_workflow", runs.c.workflow_id, runs.c.created_at)
Index("ux_qflow_runs_dedup", runs.c.workflow_id, runs.c.dedup, unique=True)

steps = Table(
    "qflow_steps",
    metadata,
    Column("run_id", String(26), primary_key=True),
    Column("step", String(32), primary_key=True),
    Column("attempt", Integer, primary_key=True, autoincrement=False),
    Column("status", String(10), nullable=False),  # started | succeeded | failed | skipped
    Column("input", Text, nullable=True),  # JSON, secrets redacted
    Column("output", Text, nullable=True),  # JSON, secrets redacted
    Column("error", Text, nullable=True),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
)

TABLES = (workflows, versions, runs, steps)

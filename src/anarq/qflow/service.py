"""Qflow: a person's own automations, run by their node under their own permissions.

A workflow is a versioned definition (`definition`): a trigger and steps. Changing it
writes a new version; runs keep the version they started with; rolling back writes a
new version with an old definition. Triggers:
- `event`: a bus event the owner took part in — they acted, they own its subject, or it
  names them (recipient, grantee, buyer, seller, payee, member, owner);
- `schedule`: every so many seconds;
- `webhook`: a POST to `/qflow/hooks/{id}` signed with the workflow's secret;
- `manual`: `anarq flow run`.
Each start makes at most one run (per event, per tick, per delivery id), executed by
`engine.Engine`, durable and exactly once in effect per step.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from anarq.kernel import Kernel
from anarq.kernel.bus import Event, pattern_matches
from anarq.kernel.errors import BadRequest, Conflict, NotFound, Unauthenticated
from anarq.kernel.guard import Context
from anarq.kernel.ids import new_id
from anarq.kernel.subject import ExportItem, json_item
from anarq.qflow import tables
from anarq.qflow.actions import ACTIONS
from anarq.qflow.definition import (
    Definition,
    EventTrigger,
    ScheduleTrigger,
    WebhookTrigger,
    parse,
    redacted,
    validate,
)
from anarq.qflow.engine import Engine
from anarq.qflow.models import (
    ActionInfo,
    Diff,
    Run,
    RunIn,
    RunPage,
    StepRun,
    Version,
    Workflow,
    WorkflowIn,
)
from anarq.qonsent.service import QonsentService

log = logging.getLogger(__name__)

WORKFLOWS_PER_OWNER_MAX = 200
ENGINE_IDLE_SECONDS = 0.2
LISTENING_SECONDS = 1.0
PAGE_MAX = 100
# Fields of an event's data that name whom it concerns.
CONCERNS = ("recipient", "grantee", "buyer", "seller", "to", "member", "owner", "delegate")

_w, _v, _r, _s = tables.workflows, tables.versions, tables.runs, tables.steps


def workflow_resource(workflow_id: str) -> str:
    return f"qflow:workflow:{workflow_id}"


def flows_resource(owner: str) -> str:
    return f"qflow:flows:{owner}"


class HookRefused(Unauthenticated):
    code = "qflow.hook_refused"


class QflowService:
    erase_order = 60

    def __init__(
        self, kernel: Kernel, qonsent: QonsentService, services: Mapping[str, Any]
    ) -> None:
        self.k = kernel
        self.qonsent = qonsent
        self.engine = Engine(kernel, services)
        self._listening_rows: list[RowMapping] = []
        self._listening_at = float("-inf")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._made_runs = False
        kernel.db.on_commit(self._after_commit)

    def policy(self, ctx: Context, action: str, resource: str) -> bool:
        """A guard policy: an identity keeps its own workflows."""
        return ctx.actor.kind == "identity" and resource == flows_resource(ctx.actor.id)

    # Workflows ---------------------------------------------------------------------------

    def create(self, ctx: Context, request: WorkflowIn) -> Workflow:
        """A new workflow at version 1 (a webhook's secret is in the answer, once)."""
        owner = ctx.identity("a workflow")
        definition = _definition(request.definition)
        workflow_id = new_id()
        now = self.k.clock.now()
        secret = secrets.token_hex(32) if isinstance(definition.trigger, WebhookTrigger) else None
        try:
            with self.k.change(ctx, "write", flows_resource(owner)) as tx:
                held = tx.execute(select(func.count()).where(_w.c.owner == owner)).scalar_one()
                if held >= WORKFLOWS_PER_OWNER_MAX:
                    raise Conflict(f"you hold {held} workflows, the most one may")
                tx.execute(
                    insert(_w).values(
                        id=workflow_id,
                        owner=owner,
                        name=definition.name,
                        version=1,
                        enabled=int(request.enabled),
                        hook_secret=secret,
                        created_at=now,
                        updated_at=now,
                        **_trigger_columns(definition, now),
                    )
                )
                self._write_version(tx, workflow_id, 1, definition, request.note or "created")
                self.qonsent.register_owner(tx, workflow_resource(workflow_id), owner)
        except IntegrityError:
            raise Conflict(f"you have a workflow named {definition.name} already") from None
        self._listening_at = float("-inf")  # this worker listens at once
        made = self.workflow(ctx, workflow_id)
        return made.model_copy(update={"hook_secret": secret})

    def update(self, ctx: Context, workflow_id: str, request: WorkflowIn) -> Workflow:
        """A new version of the definition; runs started go on with theirs."""
        row = self._row(ctx, workflow_id)
        definition = _definition(request.definition)
        if definition.name != row["name"]:
            raise Conflict(f"a workflow keeps its name ({row['name']}): make a new one to rename")
        return self._new_version(ctx, row, definition, request.note or "changed", request.enabled)

    def rollback(self, ctx: Context, workflow_id: str, version: int) -> Workflow:
        """A new version whose definition is that of an earlier `version`."""
        row = self._row(ctx, workflow_id)
        if version >= row["version"]:
            raise Conflict(f"roll back to a version before {row['version']}")
        old = self.engine.definition(workflow_id, version)
        return self._new_version(
            ctx, row, old, f"rolled back to version {version}", bool(row["enabled"])
        )

    def _new_version(
        self, ctx: Context, row: RowMapping, definition: Definition, note: str, enabled: bool
    ) -> Workflow:
        now = self.k.clock.now()
        version = row["version"] + 1
        secret = row["hook_secret"]
        if isinstance(definition.trigger, WebhookTrigger) and secret is None:
            secret = secrets.token_hex(32)
        with self.k.change(ctx, "write", workflow_resource(row["id"])) as tx:
            moved = tx.execute(
                update(_w)
                .where(_w.c.id == row["id"], _w.c.version == row["version"])
                .values(
                    version=version,
                    enabled=int(enabled),
                    hook_secret=secret,
                    updated_at=now,
                    **_trigger_columns(definition, now),
                )
            ).rowcount
            if moved != 1:
                raise Conflict("the workflow changed meanwhile: look at it again")
            self._write_version(tx, row["id"], version, definition, note)
        self._listening_at = float("-inf")
        made = self.workflow(ctx, row["id"])
        if secret != row["hook_secret"]:
            made = made.model_copy(update={"hook_secret": secret})
        return made

    def _write_version(
        self, tx: Connection, workflow_id: str, version: int, definition: Definition, note: str
    ) -> None:
        tx.execute(
            insert(_v).values(
                workflow_id=workflow_id,
                version=version,
                definition=definition.canonical(),
                note=note[:200],
                created_at=self.k.clock.now(),
            )
        )

    def enable(self, ctx: Context, workflow_id: str, enabled: bool) -> Workflow:
        row = self._row(ctx, workflow_id)
        now = self.k.clock.now()
        definition = self.engine.definition(workflow_id, row["version"])
        with self.k.change(ctx, "write", workflow_resource(workflow_id)) as tx:
            tx.execute(
                update(_w)
                .where(_w.c.id == workflow_id)
                .values(enabled=int(enabled), updated_at=now, **_trigger_columns(definition, now))
            )
        self._listening_at = float("-inf")
        return self.workflow(ctx, workflow_id)

    def delete(self, ctx: Context, workflow_id: str) -> None:
        """Delete a workflow, its versions and its run history; runs in flight stop."""
        self._row(ctx, workflow_id)
        with self.k.change(ctx, "delete", workflow_resource(workflow_id)) as tx:
            run_ids = list(
                tx.execute(select(_r.c.id).where(_r.c.workflow_id == workflow_id)).scalars()
            )
            if run_ids:
                tx.execute(delete(_s).where(_s.c.run_id.in_(run_ids)))
            tx.execute(delete(_r).where(_r.c.workflow_id == workflow_id))
            tx.execute(delete(_v).where(_v.c.workflow_id == workflow_id))
            tx.execute(delete(_w).where(_w.c.id == workflow_id))

    def workflow(self, ctx: Context, workflow_id: str) -> Workflow:
        row = self._row(ctx, workflow_id)
        definition = self.engine.definition(workflow_id, row["version"])
        return _workflow(row, definition)

    def workflows(self, ctx: Context) -> list[Workflow]:
        owner = ctx.identity("a workflow")
        with self.k.db.read() as conn:
            rows = list(
                conn.execute(select(_w).where(_w.c.owner == owner).order_by(_w.c.name)).mappings()
            )
        return [_workflow(r, self.engine.definition(r["id"], r["version"])) for r in rows]

    def history(self, ctx: Context, workflow_id: str) -> list[Version]:
        self._row(ctx, workflow_id)
        with self.k.db.read() as conn:
            rows = conn.execute(
                select(_v.c.version, _v.c.note, _v.c.created_at)
                .where(_v.c.workflow_id == workflow_id)
                .order_by(_v.c.version.desc())
            ).mappings()
            return [Version(**dict(r)) for r in rows]

    def diff(self, ctx: Context, workflow_id: str, old: int, new: int | None = None) -> Diff:
        """What changed from version `old` to `new` (the current one when left out)."""
        row = self._row(ctx, workflow_id)
        new = row["version"] if new is None else new
        if not 1 <= old <= row["version"] or not 1 <= new <= row["version"]:
            raise NotFound(f"versions run from 1 to {row['version']}")
        before = self.engine.definition(workflow_id, old).canonical().splitlines()
        after = self.engine.definition(workflow_id, new).canonical().splitlines()
        text = "\n".join(
            difflib.unified_diff(before, after, f"version {old}", f"version {new}", lineterm="")
        )
        return Diff(workflow_id=workflow_id, from_version=old, to_version=new, diff=text)

    # Starting runs -----------------------------------------------------------------------

    def start(self, ctx: Context, workflow_id: str, request: RunIn) -> tuple[Run, bool]:
        """Start a run by hand (any trigger type); resending the same id runs once."""
        row = self._row(ctx, workflow_id)
        dedup = f"manual:{request.id}" if request.id else None
        made = self._start(row, {"type": "manual", "data": request.input}, dedup)
        if made is None:
            with self.k.db.read() as conn:
                found = conn.execute(
                    select(_r.c.id).where(_r.c.workflow_id == workflow_id, _r.c.dedup == dedup)
                ).scalar_one()
            return self.run(ctx, found), False
        return self.run(ctx, made), True

    def run_in(
        self,
        tx: Connection,
        ctx: Context,
        definition: Definition,
        data: dict[str, Any],
        dedup: str,
    ) -> str:
        """Queue a run of `definition` as the caller's workflow of that name, inside the
        caller's transaction (a DAO's passed proposal): the workflow is written — made, or
        a new version if it changed — with the run, or neither is. The run's id."""
        owner = ctx.identity("a workflow")
        canonical = definition.canonical()
        now = self.k.clock.now()
        row = (
            tx.execute(select(_w).where(_w.c.owner == owner, _w.c.name == definition.name))
            .mappings()
            .first()
        )
        if row is None:
            workflow_id = new_id()
            tx.execute(
                insert(_w).values(
                    id=workflow_id,
                    owner=owner,
                    name=definition.name,
                    version=1,
                    enabled=1,
                    hook_secret=None,
                    created_at=now,
                    updated_at=now,
                    **_trigger_columns(definition, now),
                )
            )
            self._write_version(tx, workflow_id, 1, definition, "written by a vote")
            self.qonsent.register_owner(tx, workflow_resource(workflow_id), owner)
            row = tx.execute(select(_w).where(_w.c.id == workflow_id)).mappings().one()
        else:
            current = tx.execute(
                select(_v.c.definition).where(
                    _v.c.workflow_id == row["id"], _v.c.version == row["version"]
                )
            ).scalar_one()
            if current != canonical:
                version = row["version"] + 1
                tx.execute(
                    update(_w)
                    .where(_w.c.id == row["id"])
                    .values(version=version, updated_at=now, **_trigger_columns(definition, now))
                )
                self._write_version(tx, row["id"], version, definition, "changed by a vote")
                row = tx.execute(select(_w).where(_w.c.id == row["id"])).mappings().one()
        self.k.guard.record(ctx, "execute", workflow_resource(row["id"]), "allow", tx)
        made = self._start(row, {"type": "manual", "data": data}, dedup, tx=tx)
        if made is None:  # this start ran already
            return str(
                tx.execute(
                    select(_r.c.id).where(_r.c.workflow_id == row["id"], _r.c.dedup == dedup)
                ).scalar_one()
            )
        return made

    def hook(
        self, workflow_id: str, body: bytes, signature: str | None, delivery: str | None
    ) -> str:
        """A webhook delivery: HMAC-SHA256 of the body under the workflow's secret, in
        `X-Qflow-Signature: sha256=<hex>`; the body (JSON) becomes `trigger.data`."""
        with self.k.db.read() as conn:
            row = conn.execute(select(_w).where(_w.c.id == workflow_id)).mappings().first()
        if row is None or row["hook_secret"] is None or not row["enabled"]:
            raise NotFound(f"no webhook {workflow_id}")
        expected = (
            "sha256=" + hmac.new(bytes.fromhex(row["hook_secret"]), body, "sha256").hexdigest()
        )
        if signature is None or not hmac.compare_digest(signature, expected):
            raise HookRefused("the webhook's signature is missing or wrong")
        try:
            data = json.loads(body) if body else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise BadRequest("a webhook's body is JSON") from None
        dedup = f"hook:{delivery}" if delivery else f"hook:{hashlib.sha256(body).hexdigest()}"
        made = self._start(row, {"type": "webhook", "data": data}, dedup[:120])
        return made or "duplicate"

    def wants_event(self, event_type: str) -> bool:
        """Whether an enabled workflow listens for this type (checked before any delivery
        of an event is made: every other event costs Qflow nothing)."""
        if event_type.startswith("qflow."):
            return False  # a workflow never starts from runs: no loops
        return any(pattern_matches(row["event"], event_type) for row in self._listening())

    def _listening(self) -> list[RowMapping]:
        """The enabled event workflows, read again at most once a second (so a workflow
        made or switched on listens within a second, on every worker)."""
        now = time.monotonic()
        if now - self._listening_at > LISTENING_SECONDS:
            with self.k.db.read() as conn:
                self._listening_rows = list(
                    conn.execute(
                        select(_w).where(_w.c.enabled == 1, _w.c.trigger == "event")
                    ).mappings()
                )
            self._listening_at = now
        return self._listening_rows

    def on_event(self, tx: Connection, event: Event) -> None:
        """Start the runs of the enabled event workflows that this event concerns."""
        if event.type.startswith("qflow."):
            return
        for row in self._listening():
            if not pattern_matches(row["event"], event.type):
                continue
            if event.time < row["created_at"]:
                continue  # it happened before the workflow existed
            if not self._concerns(event, row["owner"]):
                continue
            trigger = self.engine.definition(row["id"], row["version"]).trigger
            assert isinstance(trigger, EventTrigger)
            envelope = event.envelope()
            if not all(_path(envelope, k) == v for k, v in trigger.where.items()):
                continue
            self._start(row, {"type": "event", **envelope}, f"event:{event.id}", tx=tx)

    def _concerns(self, event: Event, owner: str) -> bool:
        if event.actor == owner:
            return True
        if any(event.data.get(field) == owner for field in CONCERNS):
            return True
        return event.subject is not None and self.qonsent.owner_of(event.subject) == owner

    def tick(self) -> int:
        """Start the runs of schedules that are due; how many."""
        now = self.k.clock.now()
        with self.k.db.read() as conn:
            due = list(
                conn.execute(
                    select(_w).where(
                        _w.c.enabled == 1, _w.c.trigger == "schedule", _w.c.next_run_at <= now
                    )
                ).mappings()
            )
        started = 0
        for row in due:
            trigger = self.engine.definition(row["id"], row["version"]).trigger
            assert isinstance(trigger, ScheduleTrigger)
            with self.k.db.write() as tx:
                moved = tx.execute(
                    update(_w)
                    .where(_w.c.id == row["id"], _w.c.next_run_at == row["next_run_at"])
                    .values(next_run_at=now + timedelta(seconds=trigger.every_seconds))
                ).rowcount
                if moved:
                    tick = row["next_run_at"].isoformat()
                    data = {"type": "schedule", "data": {"scheduled_for": tick}}
                    started += self._start(row, data, f"tick:{tick}", tx=tx) is not None
        return started

    def _start(
        self,
        row: RowMapping,
        trigger: dict[str, Any],
        dedup: str | None,
        *,
        tx: Connection | None = None,
    ) -> str | None:
        """A queued run of the workflow's current version; None if `dedup` ran already."""
        run_id = new_id()
        now = self.k.clock.now()
        self._made_runs = True
        values = {
            "id": run_id,
            "workflow_id": row["id"],
            "version": row["version"],
            "owner": row["owner"],
            "status": "queued",
            "trigger": json.dumps(trigger, default=str),
            "dedup": dedup,
            "step": 0,
            "attempt": 1,
            "outputs": "{}",
            "next_at": now,
            "created_at": now,
        }
        if tx is not None:
            try:
                with tx.begin_nested():
                    tx.execute(insert(_r).values(**values))
            except IntegrityError:
                return None
            return run_id
        try:
            with self.k.db.write() as own:
                own.execute(insert(_r).values(**values))
        except IntegrityError:
            return None
        return run_id

    # Runs --------------------------------------------------------------------------------

    def run(self, ctx: Context, run_id: str) -> Run:
        """A run with every step attempt (inputs and outputs with secrets redacted)."""
        with self.k.db.read() as conn:
            row = conn.execute(select(_r).where(_r.c.id == run_id)).mappings().first()
            if row is None or not self._may_see(ctx, row["owner"]):
                raise NotFound(f"no run {run_id}")
            attempts = list(
                conn.execute(
                    select(_s).where(_s.c.run_id == run_id).order_by(_s.c.started_at, _s.c.attempt)
                ).mappings()
            )
        return _run(row, attempts)

    def runs(
        self, ctx: Context, workflow_id: str, *, status: str | None, cursor: str | None, limit: int
    ) -> RunPage:
        self._row(ctx, workflow_id)
        limit = max(1, min(limit, PAGE_MAX))
        query = select(_r).where(_r.c.workflow_id == workflow_id)
        if status is not None:
            query = query.where(_r.c.status == status)
        if cursor is not None:
            query = query.where(_r.c.id < cursor)
        with self.k.db.read() as conn:
            rows = list(conn.execute(query.order_by(_r.c.id.desc()).limit(limit + 1)).mappings())
        page = rows[:limit]
        return RunPage(
            runs=[_run(r, []) for r in page],
            next_cursor=page[-1]["id"] if len(rows) > limit else None,
        )

    def cancel(self, ctx: Context, run_id: str) -> Run:
        with self.k.db.read() as conn:
            row = conn.execute(select(_r).where(_r.c.id == run_id)).mappings().first()
        if row is None or not self._may_see(ctx, row["owner"]):
            raise NotFound(f"no run {run_id}")
        with self.k.change(ctx, "write", workflow_resource(row["workflow_id"])) as tx:
            moved = tx.execute(
                update(_r)
                .where(_r.c.id == run_id, _r.c.status.in_(("queued", "running")))
                .values(status="cancelled", finished_at=self.k.clock.now(), lease_until=None)
            ).rowcount
            if not moved:
                raise Conflict(f"run {run_id} is {row['status']}: it has ended")
        return self.run(ctx, run_id)

    def actions(self) -> list[ActionInfo]:
        return [
            ActionInfo(
                name=a.name, summary=a.summary, input=a.takes.model_json_schema(by_alias=True)
            )
            for a in sorted(ACTIONS.values(), key=lambda a: a.name)
        ]

    # Background --------------------------------------------------------------------------

    async def run_engine(self, stop: asyncio.Event) -> None:
        """Background task: start due schedules, and take runnable runs forward — at once
        when this worker made a run, else every fifth of a second."""
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        while not stop.is_set():
            self._wake.clear()
            busy = 0
            try:
                await asyncio.to_thread(self.tick)
                busy = await asyncio.to_thread(self.engine.work)
            except Exception:
                log.exception("running workflows failed; retrying")
            if busy:
                continue
            waiters = [asyncio.create_task(self._wake.wait()), asyncio.create_task(stop.wait())]
            _done, pending = await asyncio.wait(
                waiters, timeout=ENGINE_IDLE_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in pending:
                waiter.cancel()
        self.engine.close()

    def _after_commit(self) -> None:
        """After any commit: if it may have made a run, wake the engine (cheap, no I/O)."""
        if self._made_runs and self._loop is not None and self._wake is not None:
            self._made_runs = False
            if not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._wake.set)

    # Data-subject requests ---------------------------------------------------------------

    def export_subject(self, ctx: Context, did: str) -> Iterator[ExportItem]:
        with self.k.db.read() as conn:
            flows = [
                {**dict(r), "hook_secret": None}
                for r in conn.execute(select(_w).where(_w.c.owner == did)).mappings()
            ]
            ids = [f["id"] for f in flows]
            versions = (
                [
                    dict(r)
                    for r in conn.execute(select(_v).where(_v.c.workflow_id.in_(ids))).mappings()
                ]
                if ids
                else []
            )
            runs = [dict(r) for r in conn.execute(select(_r).where(_r.c.owner == did)).mappings()]
        yield json_item("qflow/workflows.json", flows)
        yield json_item("qflow/versions.json", versions)
        yield json_item("qflow/runs.json", runs)

    def erase_subject(self, ctx: Context, did: str) -> dict[str, int]:
        """Delete the person's workflows with their versions and runs."""
        with self.k.db.read() as conn:
            ids = list(conn.execute(select(_w.c.id).where(_w.c.owner == did)).scalars())
        with self.k.change(ctx, "delete", flows_resource(did)) as tx:
            run_ids = list(tx.execute(select(_r.c.id).where(_r.c.owner == did)).scalars())
            if run_ids:
                tx.execute(delete(_s).where(_s.c.run_id.in_(run_ids)))
            tx.execute(delete(_r).where(_r.c.owner == did))
            if ids:
                tx.execute(delete(_v).where(_v.c.workflow_id.in_(ids)))
            tx.execute(delete(_w).where(_w.c.owner == did))
        return {"workflows": len(ids), "runs": len(run_ids)}

    # Rows --------------------------------------------------------------------------------

    def _row(self, ctx: Context, workflow_id: str) -> RowMapping:
        with self.k.db.read() as conn:
            row = conn.execute(select(_w).where(_w.c.id == workflow_id)).mappings().first()
        if row is None or not self._may_see(ctx, row["owner"]):
            raise NotFound(f"no workflow {workflow_id}")
        return row

    def _may_see(self, ctx: Context, owner: str) -> bool:
        if ctx.actor.kind in ("operator", "node"):
            return True
        if not ctx.actor.authenticated:
            raise Unauthenticated("workflows are reached with a signed request or a session")
        return ctx.actor.id == owner


def _definition(given: str | dict[str, Any]) -> Definition:
    definition = parse(given) if isinstance(given, str) else validate(given)
    from anarq.qflow.actions import action

    for step in definition.steps:
        action(step.action)  # BadRequest for an unknown action, when it is written
    return definition


def _trigger_columns(definition: Definition, now: Any) -> dict[str, Any]:
    trigger = definition.trigger
    return {
        "trigger": trigger.type,
        "event": trigger.event if isinstance(trigger, EventTrigger) else None,
        "next_run_at": now + timedelta(seconds=trigger.every_seconds)
        if isinstance(trigger, ScheduleTrigger)
        else None,
    }


def _path(envelope: Mapping[str, Any], path: str) -> Any:
    value: Any = envelope
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _workflow(row: RowMapping, definition: Definition) -> Workflow:
    return Workflow(
        id=row["id"],
        owner=row["owner"],
        name=row["name"],
        version=row["version"],
        enabled=bool(row["enabled"]),
        trigger=row["trigger"],
        event=row["event"],
        hook_url=f"/qflow/hooks/{row['id']}" if row["hook_secret"] else None,
        next_run_at=row["next_run_at"],
        definition=json.loads(definition.canonical()),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _run(row: RowMapping, attempts: list[RowMapping]) -> Run:
    return Run(
        id=row["id"],
        workflow_id=row["workflow_id"],
        version=row["version"],
        status=row["status"],
        trigger=redacted(json.loads(row["trigger"])),
        step=row["step"],
        attempt=row["attempt"],
        error=row["error"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        steps=[
            StepRun(
                step=a["step"],
                attempt=a["attempt"],
                status=a["status"],
                input=json.loads(a["input"]) if a["input"] else None,
                output=json.loads(a["output"]) if a["output"] else None,
                error=a["error"],
                started_at=a["started_at"],
                finished_at=a["finished_at"],
            )
            for a in attempts
        ],
    )

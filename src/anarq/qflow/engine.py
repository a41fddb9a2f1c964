"""Running workflows: durable runs that resume where they stopped, each step once.

A run is a row: the next step's index and attempt, the outputs so far, when it may run
next, and a lease. A worker claims runnable runs (compare-and-set on the lease, so two
workers never hold one), then takes their steps one at a time:

1. the step's attempt is recorded as started (committed);
2. its action runs, as the owner, under the key `<run>.<step>`;
3. its output is recorded and the run moves to the next step, in one transaction.

A worker that dies between 1 and 3 leaves the run `running` with the attempt started;
once the lease ends another worker takes it and runs the same step again, under the same
key: actions are idempotent under it (see `actions`), so the effect happens once. A
failure is retried with exponential backoff while the step allows; then the run fails.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from anarq.kernel import Kernel
from anarq.kernel.errors import AnarqError
from anarq.kernel.guard import Actor, Context
from anarq.qflow import tables
from anarq.qflow.actions import Call, action, retryable
from anarq.qflow.definition import Definition, holds, redacted, render

log = logging.getLogger(__name__)

CLAIM_BATCH = 32
OUTPUT_MAX_CHARS = 64 * 1024

_r, _s, _v, _w = tables.runs, tables.steps, tables.versions, tables.workflows


class StepTimeout(AnarqError):
    """The action did not answer in the step's time: the attempt counts as failed (the
    action may still finish; under the step's key it takes effect once either way)."""

    code = "qflow.step_timeout"
    status = 504
    title = "Step timed out"


# A probe at each durable boundary of a step: (run id, step id, phase), phase one of
# `started` (the attempt is recorded), `acted` (the action returned, nothing recorded
# yet), `recorded` (the result is committed). Tests stop the engine exactly there.
Probe = Callable[[str, str, str], None]


class Engine:
    def __init__(self, kernel: Kernel, services: Mapping[str, Any]) -> None:
        self.k = kernel
        self.services = services
        self.probe: Probe = lambda _run, _step, _phase: None
        self._definitions: dict[tuple[str, int], Definition] = {}
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="qflow-step")
        self.lease = timedelta(seconds=kernel.settings.flow_lease_seconds)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # Claiming --------------------------------------------------------------------------

    def claim(self, limit: int = CLAIM_BATCH) -> list[str]:
        """Runs ready to go on, leased to this worker; their ids."""
        now = self.k.clock.now()
        ready = and_(
            _r.c.status.in_(("queued", "running")),
            _r.c.next_at <= now,
            or_(_r.c.lease_until.is_(None), _r.c.lease_until < now),
        )
        enabled = select(_w.c.id).where(_w.c.enabled == 1)  # a disabled workflow's runs wait
        chosen = (
            select(_r.c.id)
            .where(ready, _r.c.workflow_id.in_(enabled))
            .order_by(_r.c.next_at)
            .limit(limit)
            .scalar_subquery()
        )
        with self.k.db.write() as tx:
            # One statement: the readiness is checked again on each row as it is taken,
            # so two workers never both hold a run.
            claimed = list(
                tx.execute(
                    update(_r)
                    .where(_r.c.id.in_(chosen), ready)
                    .values(
                        lease_until=now + self.lease,
                        status="running",
                        started_at=func.coalesce(_r.c.started_at, now),
                    )
                    .returning(_r.c.id, _r.c.next_at)
                ).all()
            )
        return [row.id for row in sorted(claimed, key=lambda row: row.next_at)]

    def work(self, limit: int = CLAIM_BATCH) -> int:
        """Claim what is ready and take each as far as it goes now; how many runs."""
        claimed = self.claim(limit)
        for run_id in claimed:
            try:
                self.advance(run_id)
            except Exception:
                log.exception("run %s stopped on an unexpected error; it resumes later", run_id)
        return len(claimed)

    # Running ---------------------------------------------------------------------------

    def advance(self, run_id: str) -> None:
        """Take a leased run through its steps until it ends, waits to retry, or stops."""
        found = self._run(run_id)
        if found is None or found["status"] != "running":
            return
        run = dict(found)  # kept up to date here as each step is recorded
        run["outputs"] = json.loads(run["outputs"])
        run["trigger"] = json.loads(run["trigger"])
        definition = self.definition(run["workflow_id"], run["version"])
        while run["status"] == "running":
            if run["step"] >= len(definition.steps):
                self._finish(run_id, "succeeded", None)
                return
            if not self._step(run, definition):
                return

    def _step(self, run: dict[str, Any], definition: Definition) -> bool:
        """One step of `run`; whether the run goes straight on to the next."""
        step = definition.steps[run["step"]]
        context = {
            "trigger": run["trigger"],
            "steps": run["outputs"],
            "run": {"id": run["id"], "attempt": run["attempt"]},
        }
        started_at = self.k.clock.now()
        if step.if_ is not None and not holds(step.if_, context):
            return self._done(run, step.id, "skipped", None, None, started_at, definition)
        ctx = Context(
            actor=Actor(id=run["owner"], kind="identity"),
            request_id=run["id"],
            correlation_id=run["id"],
        )
        try:
            todo = action(step.action)
            given = todo.check(render(step.with_, context))
        except AnarqError as exc:  # the definition does not fit this run: no retry helps
            return self._failed(run, step.id, None, exc, definition, started_at, retry=False)
        shown = given.model_dump(mode="json", by_alias=True)
        self.probe(run["id"], step.id, "started")
        call = Call(ctx=ctx, services=self.services, key=f"{run['id']}.{step.id}")
        future = self._pool.submit(todo.run, call, given)
        try:
            output = future.result(timeout=step.timeout_seconds)
        except FutureTimeout:
            error = StepTimeout(f"{step.action} took longer than {step.timeout_seconds:g} s")
            return self._failed(run, step.id, shown, error, definition, started_at, retry=True)
        except AnarqError as exc:
            return self._failed(
                run, step.id, shown, exc, definition, started_at, retry=retryable(exc)
            )
        self.probe(run["id"], step.id, "acted")
        moved = self._done(run, step.id, "succeeded", shown, output, started_at, definition)
        self.probe(run["id"], step.id, "recorded")
        return moved

    def _done(
        self,
        run: dict[str, Any],
        step_id: str,
        status: str,
        shown: Any,
        output: Any,
        started_at: Any,
        definition: Definition,
    ) -> bool:
        """Record the step's attempt and move the run on, in one transaction."""
        outputs = {**run["outputs"], step_id: {"status": status, "output": output}}
        last = run["step"] + 1 >= len(definition.steps)
        now = self.k.clock.now()
        values: dict[str, Any] = {
            "step": run["step"] + 1,
            "attempt": 1,
            "outputs": json.dumps(outputs),
            "error": None,
        }
        if last:
            values.update(status="succeeded", finished_at=now, lease_until=None)
        with self.k.db.write() as tx:
            moved = tx.execute(
                update(_r)
                .where(_r.c.id == run["id"], _r.c.step == run["step"], _r.c.status == "running")
                .values(**values)
            ).rowcount
            if not moved:
                return False  # cancelled meanwhile, or taken on by another worker
            self._attempt(tx, run, step_id, status, shown, output, None, started_at)
            if last:
                self._announce(tx, run, "succeeded")
        run.update(values, outputs=outputs)
        return not last

    def _failed(
        self,
        run: dict[str, Any],
        step_id: str,
        shown: Any,
        exc: AnarqError,
        definition: Definition,
        started_at: Any,
        *,
        retry: bool,
    ) -> bool:
        step = definition.steps[run["step"]]
        error = f"{exc.code}: {exc.detail}"[:2000]
        now = self.k.clock.now()
        with self.k.db.write() as tx:
            self._attempt(tx, run, step_id, "failed", shown, None, error, started_at)
            if retry and run["attempt"] < step.retry.attempts:
                wait = step.retry.backoff_seconds * step.retry.factor ** (run["attempt"] - 1)
                tx.execute(
                    update(_r)
                    .where(_r.c.id == run["id"])
                    .values(
                        attempt=run["attempt"] + 1,
                        next_at=now + timedelta(seconds=wait),
                        lease_until=None,
                        error=error,
                    )
                )
                return False
            self._finish_in(tx, run["id"], "failed", f"step {step_id}: {error}")
        return False

    def _attempt(
        self,
        tx: Any,
        run: dict[str, Any],
        step_id: str,
        status: str,
        shown: Any,
        output: Any,
        error: str | None,
        started_at: Any,
    ) -> None:
        """The attempt's row, written once it ended (an attempt cut short by a crash is
        run again under the same number, and written then)."""
        try:
            with tx.begin_nested():
                tx.execute(
                    insert(_s).values(
                        run_id=run["id"],
                        step=step_id,
                        attempt=run["attempt"],
                        status=status,
                        input=None if shown is None else json.dumps(redacted(shown)),
                        output=None
                        if output is None
                        else json.dumps(redacted(output))[:OUTPUT_MAX_CHARS],
                        error=error,
                        started_at=started_at,
                        finished_at=self.k.clock.now(),
                    )
                )
        except IntegrityError:
            pass  # written by a worker that held the run before this one

    def _finish(self, run_id: str, status: str, error: str | None) -> None:
        with self.k.db.write() as tx:
            self._finish_in(tx, run_id, status, error)

    def _finish_in(self, tx: Any, run_id: str, status: str, error: str | None) -> None:
        tx.execute(
            update(_r)
            .where(_r.c.id == run_id, _r.c.status.in_(("queued", "running")))
            .values(status=status, error=error, finished_at=self.k.clock.now(), lease_until=None)
        )
        row = tx.execute(select(_r).where(_r.c.id == run_id)).mappings().first()
        if row is not None:
            self._announce(tx, row, status)

    def _announce(self, tx: Any, run: RowMapping | dict[str, Any], status: str) -> None:
        self.k.bus.publish(
            tx,
            f"qflow.run.{status}",
            {"run_id": run["id"], "workflow_id": run["workflow_id"], "status": status},
            actor=run["owner"],
            subject=f"qflow:workflow:{run['workflow_id']}",
            correlation_id=run["id"],
        )

    # Rows ------------------------------------------------------------------------------

    def definition(self, workflow_id: str, version: int) -> Definition:
        """A version's definition (versions never change once written: kept in memory)."""
        key = (workflow_id, version)
        found = self._definitions.get(key)
        if found is None:
            with self.k.db.read() as conn:
                text = conn.execute(
                    select(_v.c.definition).where(
                        _v.c.workflow_id == workflow_id, _v.c.version == version
                    )
                ).scalar_one()
            found = self._definitions[key] = Definition.model_validate_json(text)
        return found

    def _run(self, run_id: str) -> RowMapping | None:
        with self.k.db.read() as conn:
            return conn.execute(select(_r).where(_r.c.id == run_id)).mappings().first()

"""HTTP routes of Qflow, mounted at `/qflow`."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response

from anarq.gateway.auth import caller
from anarq.kernel.guard import Context
from anarq.qflow.models import ActionInfo, Diff, Run, RunIn, RunPage, Version, Workflow, WorkflowIn
from anarq.qflow.service import PAGE_MAX, QflowService

router = APIRouter()

WORKFLOW = Path(..., min_length=26, max_length=26, pattern=r"^[0-9A-Z]{26}$")
RUN = Path(..., min_length=26, max_length=26, pattern=r"^[0-9A-Z]{26}$")
RunStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


async def service(request: Request) -> QflowService:
    svc: QflowService = request.app.state.node.service("qflow")
    return svc


@router.get("/actions", response_model=list[ActionInfo], summary="What steps can do")
def actions(svc: QflowService = Depends(service)) -> list[ActionInfo]:
    return svc.actions()


@router.get("/workflows", response_model=list[Workflow], summary="Your workflows")
def workflows(
    ctx: Context = Depends(caller), svc: QflowService = Depends(service)
) -> list[Workflow]:
    return svc.workflows(ctx)


@router.post("/workflows", status_code=201, response_model=Workflow, summary="Create a workflow")
def create(
    body: WorkflowIn, ctx: Context = Depends(caller), svc: QflowService = Depends(service)
) -> Workflow:
    return svc.create(ctx, body)


@router.get("/workflows/{workflow_id}", response_model=Workflow, summary="A workflow")
def workflow(
    workflow_id: str = WORKFLOW,
    ctx: Context = Depends(caller),
    svc: QflowService = Depends(service),
) -> Workflow:
    return svc.workflow(ctx, workflow_id)


@router.put("/workflows/{workflow_id}", response_model=Workflow, summary="A new version")
def update(
    body: WorkflowIn,
    workflow_id: str = WORKFLOW,
    ctx: Context = Depends(caller),
    svc: QflowService = Depends(service),
) -> Workflow:
    return svc.update(ctx, workflow_id, body)


@router.delete("/workflows/{workflow_id}", status_code=204, summary="Delete a workflow")
def delete(
    workflow_id: str = WORKFLOW,
    ctx: Context = Depends(caller),
    svc: QflowService = Depends(service),
) -> Response:
    svc.delete(ctx, workflow_id)
    return Response(status_code=204)


@router.post("/workflows/{workflow_id}/enable", response_model=Workflow, summary="Enable")
def enable(
    workflow_id: str = WORKFLOW,
    ctx: Context = Depends(caller),
    svc: QflowService = Depends(service),
) -> Workflow:
    return svc.enable(ctx, workflow_id, True)


@router.post("/workflows/{workflow_id}/disable", response_model=Workflow, summary="Disable")
def disable(
    workflow_id: str = WORKFLOW,
    ctx: Context = Depends(caller),
    svc: QflowService = Depends(service),
) -> Workflow:
    return svc.enable(ctx, workflow_id, False)


@router.get(
    "/workflows/{workflow_id}/versions", response_model=list[Version], summary="Version history"
)
def versions(
    workflow_id: str = WORKFLOW,
    ctx: Context = Depends(caller),
    svc: QflowService = Depends(service),
) -> list[Version]:
    return svc.history(ctx, workflow_id)


@router.get("/workflows/{workflow_id}/diff", response_model=Diff, summary="What a version changed")
def diff(
    workflow_id: str = WORKFLOW,
    old: int = Query(..., alias="from", ge=1),
    new: int | None = Query(None, alias="to", ge=1),
    ctx: Context = Depends(caller),
    svc: QflowService = Depends(service),
) -> Diff:
    return svc.diff(ctx, workflow_id, old, new)


@router.post(
    "/workflows/{workflow_id}/rollback", response_model=Workflow, summary="Back to a version"
)
def rollback(
    workflow_id: str = WORKFLOW,
    version: int = Body(..., embed=True, ge=1),
    ctx: Context = Depends(caller),
    svc: QflowService = Depends(service),
) -> Workflow:
    return svc.rollback(ctx, workflow_id, version)


@router.post(
    "/workflows/{workflow_id}/runs",
    status_code=201,
    response_model=Run,
    summary="Run it now (201 started, 200 started before)",
)
def start(
    response: Response,
    body: RunIn = Body(default_factory=RunIn),
    workflow_id: str = WORKFLOW,
    ctx: Context = Depends(caller),
    svc: QflowService = Depends(service),
) -> Run:
    made, created = svc.start(ctx, workflow_id, body)
    response.status_code = 201 if created else 200
    return made


@router.get("/workflows/{workflow_id}/runs", response_model=RunPage, summary="Its runs")
def runs(
    workflow_id: str = WORKFLOW,
    status: RunStatus | None = Query(None),
    cursor: str | None = Query(None, min_length=26, max_length=26),
    limit: int = Query(50, ge=1, le=PAGE_MAX),
    ctx: Context = Depends(caller),
    svc: QflowService = Depends(service),
) -> RunPage:
    return svc.runs(ctx, workflow_id, status=status, cursor=cursor, limit=limit)


@router.get("/runs/{run_id}", response_model=Run, summary="A run, step by step")
def run(
    run_id: str = RUN, ctx: Context = Depends(caller), svc: QflowService = Depends(service)
) -> Run:
    return svc.run(ctx, run_id)


@router.post("/runs/{run_id}/cancel", response_model=Run, summary="Stop a run")
def cancel(
    run_id: str = RUN, ctx: Context = Depends(caller), svc: QflowService = Depends(service)
) -> Run:
    return svc.cancel(ctx, run_id)


@router.post(
    "/hooks/{workflow_id}",
    status_code=202,
    summary="A webhook delivery (signed: X-Qflow-Signature: sha256=<HMAC of the body>)",
)
async def hook(
    request: Request,
    workflow_id: str = WORKFLOW,
    signature: str | None = Header(None, alias="X-Qflow-Signature", max_length=100),
    delivery: str | None = Header(None, alias="X-Qflow-Delivery", max_length=100),
    _ctx: Context = Depends(caller),  # the door: rate limits and lockouts
    svc: QflowService = Depends(service),
) -> dict[str, str]:
    from starlette.concurrency import run_in_threadpool

    body = await request.body()
    run_id = await run_in_threadpool(svc.hook, workflow_id, body, signature, delivery)
    return {"run": run_id}

"""HTTP routes of Qerberos, mounted at `/qerberos`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request

from anarq.gateway.auth import caller
from anarq.kernel.guard import Context
from anarq.qerberos.models import (
    Alert,
    AlertStatus,
    AlertUpdate,
    ConsistencyProof,
    Entry,
    InclusionProof,
    Risk,
    TreeHead,
)
from anarq.qerberos.service import EXPORT_PAGE_MAX, QerberosService

router = APIRouter()
MAX_SIZE = 2**62


async def service(request: Request) -> QerberosService:
    svc: QerberosService = request.app.state.node.service("qerberos")
    return svc


@router.get(
    "/tree-head", summary="The latest signed tree head of the audit log", response_model=TreeHead
)
def tree_head(
    size: int | None = Query(None, ge=1, le=MAX_SIZE), svc: QerberosService = Depends(service)
) -> TreeHead:
    return svc.tree_head(size)


@router.get(
    "/consistency",
    summary="Proof that a later tree extends an earlier one",
    response_model=ConsistencyProof,
)
def consistency(
    old_size: int = Query(..., ge=1, le=MAX_SIZE),
    new_size: int = Query(..., ge=1, le=MAX_SIZE),
    svc: QerberosService = Depends(service),
) -> ConsistencyProof:
    return svc.consistency(old_size, new_size)


@router.get(
    "/entries/{seq}",
    summary="One audit entry (operator, or the actor it records)",
    response_model=Entry,
)
def entry(
    seq: int = Path(..., ge=1, le=MAX_SIZE),
    ctx: Context = Depends(caller),
    svc: QerberosService = Depends(service),
) -> Entry:
    return svc.entry(ctx, seq)


@router.get(
    "/entries/{seq}/proof",
    summary="Inclusion proof of an entry in the latest head",
    response_model=InclusionProof,
)
def inclusion(
    seq: int = Path(..., ge=1, le=MAX_SIZE),
    ctx: Context = Depends(caller),
    svc: QerberosService = Depends(service),
) -> InclusionProof:
    return svc.inclusion(ctx, seq)


@router.get(
    "/entries", summary="Integrated entries in tree order (operator)", response_model=list[Entry]
)
def entries(
    after: int = Query(-1, ge=-1, le=MAX_SIZE),
    limit: int = Query(100, ge=1, le=EXPORT_PAGE_MAX),
    ctx: Context = Depends(caller),
    svc: QerberosService = Depends(service),
) -> list[Entry]:
    return svc.entries(ctx, after=after, limit=limit)


@router.get(
    "/mine", summary="The caller's own audit trail, newest first", response_model=list[Entry]
)
def mine(
    limit: int = Query(100, ge=1, le=EXPORT_PAGE_MAX),
    ctx: Context = Depends(caller),
    svc: QerberosService = Depends(service),
) -> list[Entry]:
    return svc.my_entries(ctx, limit=limit)


@router.get("/export", summary="The whole log for offline verification (operator)")
def export(
    ctx: Context = Depends(caller), svc: QerberosService = Depends(service)
) -> dict[str, Any]:
    return svc.export(ctx)


@router.get(
    "/alerts", summary="Security alerts, newest first (operator)", response_model=list[Alert]
)
def alerts(
    status: AlertStatus | None = None,
    ctx: Context = Depends(caller),
    svc: QerberosService = Depends(service),
) -> list[Alert]:
    return svc.desk.alerts(ctx, status)


@router.patch(
    "/alerts/{alert_id}",
    summary="Move an alert along: investigating, resolved",
    response_model=Alert,
)
def update_alert(
    body: AlertUpdate,
    alert_id: str = Path(..., min_length=26, max_length=26),
    ctx: Context = Depends(caller),
    svc: QerberosService = Depends(service),
) -> Alert:
    return svc.desk.set_alert_status(ctx, alert_id, body.status)


@router.get(
    "/risk/{subject}", summary="An identity's risk score with its reasons", response_model=Risk
)
def risk(
    subject: str = Path(..., min_length=3, max_length=300),
    ctx: Context = Depends(caller),
    svc: QerberosService = Depends(service),
) -> Risk:
    return svc.desk.risk(ctx, subject)

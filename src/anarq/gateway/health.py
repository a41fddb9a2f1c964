"""Liveness, readiness and metrics: the routes an orchestrator and a scraper call."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from anarq.gateway.problems import problem_response
from anarq.kernel.errors import AnarqError, BackendUnavailable
from anarq.kernel.node import Node

READY_TIMEOUT_SECONDS = 5.0

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness: the process answers")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Readiness: database, blobs and bus are reachable",
    responses={503: {"description": "A backend is unreachable"}},
)
async def ready(request: Request) -> Response:
    node: Node = request.app.state.node
    k = node.kernel
    checks: dict[str, Any] = {}

    async def check(name: str, probe: Any) -> None:
        try:
            await asyncio.wait_for(probe(), READY_TIMEOUT_SECONDS)
            checks[name] = "ok"
        except (AnarqError, TimeoutError, OSError) as exc:
            checks[name] = f"unreachable: {getattr(exc, 'detail', None) or exc or 'timeout'}"

    await asyncio.gather(
        check("database", lambda: asyncio.to_thread(k.db.ping)),
        check("blobs", lambda: asyncio.to_thread(k.blobs.ping)),
        check("bus", k.bus.ping),
    )
    if all(value == "ok" for value in checks.values()):
        return JSONResponse({"status": "ready", "checks": checks})
    failed = ", ".join(name for name, value in checks.items() if value != "ok")
    return problem_response(
        BackendUnavailable(f"not ready: {failed} unreachable", checks=checks),
        getattr(request.state, "request_id", None),
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)

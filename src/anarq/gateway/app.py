"""The HTTP face of a node: one FastAPI app with every module's router mounted under its name."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI
from prometheus_client import CollectorRegistry

from anarq import __version__
from anarq.gateway import health, problems
from anarq.gateway.auth import caller
from anarq.gateway.middleware import BodyLimitMiddleware, MetricsMiddleware, RequestIdMiddleware
from anarq.kernel.node import Node

log = logging.getLogger("anarq.gateway")

DESCRIPTION = """\
A sovereign node: identity, encryption, consent, audit, files, mail, chat,
payments and governance under the user's own keys.

Every error is `application/problem+json` (RFC 9457) with a stable `code`.
Every response carries an `X-Request-Id`.
"""


def create_app(node: Node, *, background: bool = True) -> FastAPI:
    """Build the ASGI app. With `background`, the app's lifespan runs the event bus
    and registers this process as a worker of the node."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not background:
            yield
            return
        async with _background_work(node):
            yield

    app = FastAPI(
        title="AnarQ&Q node",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        responses={"default": problems.PROBLEM_SCHEMA},
    )
    app.state.node = node
    app.state.metrics = CollectorRegistry(auto_describe=True)
    app.state.authenticators = [
        service for service in node.services.values() if hasattr(service, "authenticate_bearer")
    ]
    desks = [getattr(service, "desk", None) for service in node.services.values()]
    app.state.door = next((desk for desk in desks if desk is not None), None)
    app.state.signature_verifiers = [
        service for service in node.services.values() if hasattr(service, "authenticate_signed")
    ]
    problems.install(app)
    app.include_router(health.router)
    for module in node.modules:
        if module.router is not None:
            # Every module route authenticates, so a bad credential is refused even on
            # a public route instead of quietly becoming an anonymous request.
            app.include_router(
                module.router(),
                prefix=f"/{module.name}",
                tags=[module.name],
                dependencies=[Depends(caller)],
            )
    for module in node.modules:
        if module.protocol_router is not None:
            app.include_router(module.protocol_router())
    # Outermost first: the request id exists before anything can fail.
    app.add_middleware(MetricsMiddleware, registry=app.state.metrics)
    app.add_middleware(BodyLimitMiddleware, max_bytes=node.kernel.settings.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    return app


@contextlib.asynccontextmanager
async def _background_work(node: Node) -> AsyncIterator[None]:
    from anarq.node.service import HEARTBEAT_SECONDS, NodeService

    stop = asyncio.Event()
    node_service: NodeService = node.service("node")
    await node.kernel.bus.start()
    await asyncio.to_thread(node_service.register_worker, node.kernel.settings.effective_public_url)
    tasks = [
        asyncio.create_task(node.kernel.bus.run(stop), name="event-bus"),
        asyncio.create_task(_heartbeat(node_service, stop, HEARTBEAT_SECONDS), name="heartbeat"),
    ]
    for module in node.modules:
        for method in module.tasks:
            run = getattr(node.service(module.name), method)
            tasks.append(asyncio.create_task(run(stop), name=f"{module.name}.{method}"))
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(node_service.unregister_worker)
        stop.set()
        await asyncio.wait(tasks, timeout=10)
        for task in tasks:
            task.cancel()


async def _heartbeat(service: object, stop: asyncio.Event, every_seconds: float) -> None:
    from anarq.node.service import NodeService

    assert isinstance(service, NodeService)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_seconds)
        if stop.is_set():
            return
        try:
            await asyncio.to_thread(service.heartbeat)
        except Exception:
            log.exception("heartbeat failed")

"""Pure-ASGI middleware: request ids, body size limit, Prometheus metrics.

Pure ASGI (not `BaseHTTPMiddleware`) keeps streaming bodies streaming and adds
microseconds, not milliseconds, per request.
"""

from __future__ import annotations

import re
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from anarq.gateway.problems import problem_response
from anarq.kernel.errors import PayloadTooLarge
from anarq.kernel.ids import new_id

REQUEST_ID_HEADER = b"x-request-id"
_REQUEST_ID_RE = re.compile(rb"^[A-Za-z0-9._-]{8,64}$")
LATENCY_BUCKETS_SECONDS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class RequestIdMiddleware:
    """Every request gets an id (the caller's `X-Request-Id` if sane); every response carries it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = dict(scope["headers"]).get(REQUEST_ID_HEADER, b"")
        request_id = offered.decode() if _REQUEST_ID_RE.match(offered) else new_id()
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER, request_id.encode()),
                ]
            await send(message)

        await self.app(scope, receive, send_with_id)


class BodyLimitMiddleware:
    """Refuse bodies over `max_bytes` with 413, by header up front or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id")
        declared = dict(scope["headers"]).get(b"content-length")
        too_large = PayloadTooLarge(f"request bodies are limited to {self.max_bytes} bytes")
        if declared is not None:
            try:
                declared_bytes = int(declared)
            except ValueError:
                declared_bytes = self.max_bytes + 1
            if declared_bytes > self.max_bytes:
                await problem_response(too_large, request_id)(scope, receive, send)
                return
        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise too_large
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except PayloadTooLarge:
            if response_started:
                raise
            await problem_response(too_large, request_id)(scope, receive, send)


class MetricsMiddleware:
    """Request counts and latency histograms per route template, for `/metrics`."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "anarq_http_requests",
            "HTTP requests handled",
            ("method", "route", "status"),
            registry=registry,
        )
        self.latency = Histogram(
            "anarq_http_request_duration_seconds",
            "Time to the end of the response",
            ("method", "route"),
            buckets=LATENCY_BUCKETS_SECONDS,
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        route = "<unmatched>"

        async def observing_send(message: Message) -> None:
            nonlocal status, route
            if message["type"] == "http.response.start":
                status = message["status"]
                # Read while routing state is still in the scope.
                route = _route_template(scope)
            await send(message)

        try:
            await self.app(scope, receive, observing_send)
        finally:
            self.requests.labels(scope["method"], route, str(status)).inc()
            self.latency.labels(scope["method"], route).observe(time.perf_counter() - started)


def _route_template(scope: Scope) -> str:
    # FastAPI keeps an included router's route object unprefixed; its effective
    # context holds the full template. Older versions prefix the route itself.
    fastapi_state = scope.get("fastapi") or {}
    for holder in (fastapi_state.get("effective_route_context"), scope.get("route")):
        path: Any = getattr(holder, "path", None)
        if isinstance(path, str):
            return path
    return "<unmatched>"

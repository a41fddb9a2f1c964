"""Every error leaves the node as RFC 9457 `application/problem+json` with a stable `code`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from anarq.kernel.errors import (
    AnarqError,
    BackendUnavailable,
    BadRequest,
    MalformedBody,
    MethodNotAllowed,
    NotFound,
    ValidationFailed,
)

PROBLEM_MEDIA_TYPE = "application/problem+json"
MAX_REPORTED_ERRORS = 20

log = logging.getLogger("anarq.gateway")


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def problem_response(
    error: AnarqError, request_id: str | None = None, headers: dict[str, str] | None = None
) -> ProblemResponse:
    body = error.problem()
    if request_id:
        body["request_id"] = request_id
    retry_after = error.extra.get("retry_after_seconds")
    if retry_after is not None:
        headers = {**(headers or {}), "Retry-After": str(max(1, int(retry_after + 0.999)))}
    return ProblemResponse(body, status_code=error.status, headers=headers)


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def install(app: FastAPI) -> None:
    @app.exception_handler(AnarqError)
    async def _anarq(request: Request, exc: AnarqError) -> ProblemResponse:
        if exc.status >= 500:
            log.error("%s %s failed: %s (%s)", request.method, request.url.path, exc.code, exc)
        return problem_response(exc, _request_id(request))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> ProblemResponse:
        errors = [_describe(error) for error in exc.errors()[:MAX_REPORTED_ERRORS]]
        if any(error["type"] == "json_invalid" for error in errors):
            failure: AnarqError = MalformedBody("the body is not valid JSON", errors=errors)
        else:
            first = errors[0] if errors else {"where": "request", "message": "invalid"}
            failure = ValidationFailed(f"{first['where']}: {first['message']}", errors=errors)
        return problem_response(failure, _request_id(request))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> ProblemResponse:
        failure: AnarqError
        if exc.status_code == 404:
            failure = NotFound(f"no route {request.method} {request.url.path}")
        elif exc.status_code == 405:
            failure = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
        else:
            failure = BadRequest(str(exc.detail))
            failure.status = exc.status_code  # type: ignore[misc]
        return problem_response(
            failure, _request_id(request), headers=dict(exc.headers or {}) or None
        )

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> ProblemResponse:
        if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
            log.warning("database connection lost on %s %s", request.method, request.url.path)
            return problem_response(
                BackendUnavailable("the database connection was lost; retry the request"),
                _request_id(request),
                headers={"Retry-After": "1"},
            )
        return await _crash(request, exc)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> ProblemResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            AnarqError("the node hit an unexpected error"), _request_id(request)
        )


def _describe(error: Any) -> dict[str, Any]:
    location = [str(part) for part in error.get("loc", ())]
    where = ".".join(location) if location else "request"
    return {"where": where, "type": error.get("type", "invalid"), "message": error.get("msg", "")}


PROBLEM_SCHEMA = {
    "description": "Problem details (RFC 9457)",
    "content": {
        PROBLEM_MEDIA_TYPE: {
            "schema": {
                "type": "object",
                "required": ["type", "title", "status", "code", "detail"],
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "code": {"type": "string"},
                    "detail": {"type": "string"},
                    "request_id": {"type": "string"},
                },
            }
        }
    },
}

"""One error hierarchy for the whole node.

Every error has a stable machine `code` (dotted, lower case, never reused for a
different meaning), an HTTP status and a human title. The gateway renders them as
RFC 9457 `application/problem+json`; the CLI prints `title: detail`.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AnarqError(Exception):
    """Base of every error the node raises on purpose."""

    code: ClassVar[str] = "internal"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str = "", **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://anarq.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class SettingsError(AnarqError):
    code = "settings.invalid"
    title = "Invalid settings"


class BackendUnavailable(AnarqError):
    code = "backend.unavailable"
    status = 503
    title = "A backend is unreachable"


class BadRequest(AnarqError):
    code = "request.invalid"
    status = 400
    title = "Bad request"


class MalformedBody(BadRequest):
    code = "request.malformed"
    title = "Malformed request body"


class ValidationFailed(AnarqError):
    code = "request.validation"
    status = 422
    title = "Request failed validation"


class Unauthenticated(AnarqError):
    code = "auth.required"
    status = 401
    title = "Authentication required"


class Forbidden(AnarqError):
    code = "auth.forbidden"
    status = 403
    title = "Not allowed"


class NotFound(AnarqError):
    code = "not_found"
    status = 404
    title = "Not found"


class MethodNotAllowed(AnarqError):
    code = "request.method_not_allowed"
    status = 405
    title = "Method not allowed"


class Conflict(AnarqError):
    code = "conflict"
    status = 409
    title = "Conflict"


class PayloadTooLarge(AnarqError):
    code = "request.too_large"
    status = 413
    title = "Request body too large"


class UnsupportedMediaType(AnarqError):
    code = "request.media_type"
    status = 415
    title = "Unsupported media type"


class RateLimited(AnarqError):
    code = "rate_limited"
    status = 429
    title = "Too many requests"


class BlobNotFound(NotFound):
    code = "blob.not_found"
    title = "Blob not found"


class BlobCorrupted(AnarqError):
    code = "blob.corrupted"
    status = 500
    title = "Stored blob failed its integrity check"


class InvalidCid(BadRequest):
    code = "blob.invalid_cid"
    title = "Invalid content identifier"


class MigrationRequired(AnarqError):
    code = "database.migration_required"
    status = 503
    title = "Database schema is behind; run `anarq db upgrade`"

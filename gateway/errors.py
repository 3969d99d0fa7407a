"""The gateway's exceptions. Each carries the HTTP status and the error code of the
``{"error": ..., "code": ...}`` body that the app's error handlers write."""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    """Base for errors that become an HTTP response."""

    status: int = 500
    code: str = "INTERNAL_ERROR"
    message: str = "Internal server error"

    def __init__(
        self,
        message: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "code": self.code, **self.extra}


class ValidationError(GatewayError):
    status, code, message = 400, "VALIDATION_ERROR", "Invalid request parameters"


class Unauthorized(GatewayError):
    status, code, message = 401, "UNAUTHORIZED", "Missing or invalid authentication"


class Forbidden(GatewayError):
    status, code, message = 403, "FORBIDDEN", "Insufficient permissions"


class NotFound(GatewayError):
    status, code, message = 404, "NOT_FOUND", "Resource not found"


class MethodNotAllowed(GatewayError):
    status, code, message = 405, "METHOD_NOT_ALLOWED", "Method not allowed"


class Conflict(GatewayError):
    status, code, message = 409, "CONFLICT", "Conflict"


class RequestTimeout(GatewayError):
    status, code, message = 408, "REQUEST_TIMEOUT", "The request body did not arrive in time"


class PayloadTooLarge(GatewayError):
    status, code, message = 413, "PAYLOAD_TOO_LARGE", "Request body is too large"


class RateLimited(GatewayError):
    status, code, message = 429, "RATE_LIMITED", "Too many requests"

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, int(retry_after)))})
        self.retry_after = retry_after


class ServiceUnavailable(GatewayError):
    status, code, message = 503, "SERVICE_UNAVAILABLE", "Service temporarily unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    """The database cannot be reached now: 503 with ``Retry-After`` (every route, one
    handler in :mod:`gateway.responses`)."""

    message = "Database temporarily unavailable; retry later"
    RETRY_AFTER_SECONDS = 5

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": str(self.RETRY_AFTER_SECONDS)})


class InternalError(GatewayError):
    status, code, message = 500, "INTERNAL_ERROR", "Internal server error"


class StartupError(Exception):
    """Configuration or plugin problem that must stop the gateway before it serves.

    The CLI prints ``str(error)`` as one line and exits non-zero.
    """


# Werkzeug HTTP exceptions raised by Quart itself, mapped onto our codes.
HTTP_STATUS_CODES: dict[int, str] = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    408: "REQUEST_TIMEOUT",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
    503: "SERVICE_UNAVAILABLE",
}

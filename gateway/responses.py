"""Error responses and request ids.

Every error leaves the gateway as ``{"error": ..., "code": ...}``: our own exceptions,
the framework's 404/405/413, and anything unhandled (logged with the request id, never
shown). Database errors are sorted here, once for every route (see
:mod:`gateway.db_errors`): unreachable is ``503`` with ``Retry-After`` and one log line
per outage, a value the database refused is ``400``, the rest ``500``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
from typing import Any

from quart import Quart, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from gateway.db_errors import OutageLog, classify
from gateway.errors import (
    HTTP_STATUS_CODES,
    DatabaseUnavailable,
    GatewayError,
    InternalError,
    ValidationError,
)
from gateway.logs import request_id_var

log = logging.getLogger("gateway.http")

OUTAGE_KEY = "gateway_http_outage"


def outage_log(app: Quart) -> OutageLog:
    """The app's record of a database outage seen by requests (``/readyz`` ends it)."""
    outage = app.extensions.get(OUTAGE_KEY)
    if outage is None:
        outage = app.extensions[OUTAGE_KEY] = OutageLog(log, "requests: database")
    return outage


REQUEST_ID_HEADER = "X-Request-Id"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


# Request ids: a correlation id, not a secret (a client may choose its own), so a
# generator of our own, seeded from the OS (and again in a forked child), rather than
# one getrandom system call per request (5-10 us on a small VM, a tenth of a direct
# route's work). Private: a plugin seeding the random module cannot make ids repeat.
_request_ids = random.Random()  # noqa: S311  (not a secret: see above)
os.register_at_fork(after_in_child=_request_ids.seed)


def request_id_for(incoming: str) -> str:
    """The client's ``X-Request-Id`` when it is safe to echo and log, else a new one:
    128 bits as 32 hex digits, unique but predictable (never use it as a secret)."""
    if _SAFE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return f"{_request_ids.getrandbits(128):032x}"


def iso(value: Any) -> str | None:
    """A datetime as ISO 8601 for a JSON body; None stays None."""
    return value.isoformat() if value is not None else None


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    response = jsonify({"error": message, "code": code, **extra})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


# Compact JSON as Quart's jsonify writes it outside debug mode; json.dumps with these
# separators would build a new encoder per call.
compact_json = json.JSONEncoder(separators=(",", ":")).encode


def gateway_error_response(exc: GatewayError) -> Response:
    """``{"error", "code", ...extra}`` with the error's status and headers."""
    # exc.body(), not error_response(**extra): an extra may be named like one of its
    # parameters (a conflict's "status", for one).
    response = jsonify(exc.body())
    response.status_code = exc.status
    for name, value in exc.headers.items():
        response.headers[name] = value
    return response


def install(app: Quart) -> None:
    """Register the request-id hooks and the error handlers on ``app``."""

    @app.before_request
    async def assign_request_id() -> None:
        rid = request_id_for(request.headers.get(REQUEST_ID_HEADER, ""))
        g.request_id = rid
        request_id_var.set(rid)

    @app.after_request
    async def echo_request_id(response: Response) -> Response:
        rid = getattr(g, "request_id", None) or request_id_var.get()
        if rid:
            response.headers[REQUEST_ID_HEADER] = rid
        return response

    @app.errorhandler(GatewayError)
    async def handle_gateway_error(exc: GatewayError) -> Response:
        return gateway_error_response(exc)

    @app.errorhandler(HTTPException)
    async def handle_http_exception(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = HTTP_STATUS_CODES.get(status, "INTERNAL_ERROR" if status >= 500 else "ERROR")
        message = {
            404: "Resource not found",
            405: "Method not allowed",
            408: "The request body did not arrive in time",
            413: "Request body is too large",
        }.get(status, exc.name)
        response = error_response(status, code, message)
        if status == 405:
            allowed = getattr(exc, "valid_methods", None)
            if allowed:
                response.headers["Allow"] = ", ".join(sorted(allowed))
        return response

    @app.errorhandler(Exception)
    async def handle_unexpected(exc: Exception) -> Response:
        return gateway_error_response(unexpected_error(app, exc, request.method, request.path))


def unexpected_error(app: Quart, exc: Exception, method: str, path: str) -> GatewayError:
    """What an exception no view handled is answered with, for every way a request is
    served (:mod:`gateway.direct_routes` too)."""
    kind = classify(exc)
    if kind == "unavailable":
        outage_log(app).failed(exc)
        return DatabaseUnavailable()
    if kind == "input":
        # A check in gateway.inputs is missing for this value. Named by type only:
        # the value itself may be large, or personal.
        log.warning(
            "database refused a value on %s %s (%s); answered 400", method, path, type(exc).__name__
        )
        return ValidationError("A value is out of range or too long")
    # The traceback goes to the log (with the request id), never to the client.
    log.error("unhandled error on %s %s", method, path, exc_info=exc)
    return InternalError()

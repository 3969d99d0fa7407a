"""CORS: same-origin only unless ``[gateway] cors_origins`` lists other origins.

A listed origin may call the API from a browser with credentials (the session cookie);
preflights from it are answered here. Any other origin gets no CORS headers, so the
browser refuses to hand it the response, and its preflight is refused with 403.
Installed on the app by the core auth plugin.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from quart import Quart, Response, current_app, request

from gateway.errors import Forbidden

ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE"
# Request headers a browser client may send; anything else fails the preflight.
ALLOWED_HEADERS = ("authorization", "content-type", "x-team-id", "x-requested-with")
EXPOSED_HEADERS = "Retry-After"
PREFLIGHT_MAX_AGE = "600"


def normalize_origin(value: str) -> str | None:
    """``scheme://host[:port]`` in lower case, default ports dropped; None if not one.

    Total: it runs on a header any client writes, from a hook that runs after the view
    (a raise there would turn a stored write into a 500), so every malformed value, a
    bad port or IPv6 literal included, is simply "not an origin"."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port  # raises ValueError for "x:abc", "x:99999", "[::1"
    except ValueError:
        return None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def _origins(app: Quart) -> tuple[str | None, frozenset[str]]:
    cached = app.extensions.get("gateway_cors")
    if cached is None:
        settings = app.extensions["gateway"].config.gateway
        allowed = {normalize_origin(o) for o in settings.cors_origins}
        cached = (normalize_origin(settings.public_url), frozenset(o for o in allowed if o))
        app.extensions["gateway_cors"] = cached
    return cached


def is_same_origin(origin: str, app: Quart | None = None) -> bool:
    own, _ = _origins(app or current_app)
    return own is not None and normalize_origin(origin) == own


def is_allowed_cross_origin(origin: str, app: Quart | None = None) -> bool:
    _, allowed = _origins(app or current_app)
    normalized = normalize_origin(origin)
    return normalized is not None and normalized in allowed


def origin_trusted(origin: str | None, app: Quart | None = None) -> bool:
    """True for no Origin header (not a browser cross-site request), our own origin, or a
    configured one. Cookie-authenticated writes require this (CSRF defence beyond
    SameSite=Lax, which trusts sibling subdomains)."""
    if not origin:
        return True
    return is_same_origin(origin, app) or is_allowed_cross_origin(origin, app)


def require_trusted_origin() -> None:
    """For writes that sign a browser in (login, accepting an invitation): another
    site must not be able to sign a visitor into an account of its choosing.

    :raises Forbidden: the request comes from an origin we do not trust.
    """
    if not origin_trusted(request.headers.get("Origin")):
        raise Forbidden("Cross-origin request not allowed")


def _is_preflight() -> bool:
    return (
        request.method == "OPTIONS"
        and "Origin" in request.headers
        and "Access-Control-Request-Method" in request.headers
    )


async def _answer_preflight() -> Response | None:
    if not _is_preflight():
        return None
    origin = request.headers["Origin"]
    requested = [
        h.strip().lower()
        for h in request.headers.get("Access-Control-Request-Headers", "").split(",")
        if h.strip()
    ]
    method = request.headers["Access-Control-Request-Method"].upper()
    if (
        not is_allowed_cross_origin(origin)
        or method not in ALLOWED_METHODS.split(", ")
        or any(h not in ALLOWED_HEADERS for h in requested)
    ):
        raise Forbidden("Cross-origin request not allowed")
    response = Response("", status=204)
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Credentials"] = "true"
    response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
    if requested:
        response.headers["Access-Control-Allow-Headers"] = ", ".join(requested)
    response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
    response.vary.add("Origin")
    return response


async def _add_headers(response: Response) -> Response:
    origin = request.headers.get("Origin")
    if origin and is_allowed_cross_origin(origin):
        response.headers.setdefault("Access-Control-Allow-Origin", origin)
        response.headers.setdefault("Access-Control-Allow-Credentials", "true")
        response.headers.setdefault("Access-Control-Expose-Headers", EXPOSED_HEADERS)
    # Caches must not serve one origin's answer to another.
    response.vary.add("Origin")
    return response


def install(app: Quart) -> None:
    app.before_request(_answer_preflight)
    app.after_request(_add_headers)

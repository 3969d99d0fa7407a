"""The console's blueprint and the headers every console response carries: a strict
Content-Security-Policy (scripts and styles from our own files only, nothing inline,
never framed), ``X-Frame-Options: DENY`` for older browsers, no sniffing, no caching of
pages that show a team's data."""

from __future__ import annotations

from quart import Blueprint, Response

from gateway.contract import pages

# Pages for people (HTML forms): not in /openapi.json; the JSON API they call is.
bp = pages(
    Blueprint(
        "console",
        __name__,
        url_prefix="/console",
        template_folder="templates",
        static_folder="static",
        static_url_path="/static",
    )
)

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)


@bp.after_request
async def security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "no-store"
    return response

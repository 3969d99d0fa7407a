"""The authentication schemes an operation may declare (``auth=`` of
:func:`gateway.contract.api`), as OpenAPI security schemes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Scheme names, not secrets.
API_TOKEN = "apiToken"  # noqa: S105
SESSION = "sessionCookie"
CRON = "cronBearer"
SETUP_TOKEN = "setupToken"  # noqa: S105
METRICS_TOKEN = "metricsToken"  # noqa: S105

# A signed-in user: an API token (or an identity provider's JWT) or the session cookie.
SIGNED_IN: tuple[str, ...] = (API_TOKEN, SESSION)
PUBLIC: tuple[str, ...] = ()


@dataclass(frozen=True)
class SecurityScheme:
    """A scheme a plugin's routes use that the core does not know (a provider's
    signature header): ``auth=(SCHEME,)`` takes it like a core scheme name, and the
    document lists it with ``spec`` (an OpenAPI security scheme object) whenever an
    enabled plugin's route uses it."""

    name: str
    spec: dict[str, Any] = field(compare=False)


def signature_header(name: str, header: str, description: str) -> SecurityScheme:
    """A signed (or shared-secret) request header, e.g. a webhook provider's."""
    return SecurityScheme(
        name, {"type": "apiKey", "in": "header", "name": header, "description": description}
    )


# The core's own schemes; plugins bring theirs as SecurityScheme.
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    API_TOKEN: {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token of a user (POST /api/auth/tokens, or the one the "
        "first super admin gets), or, with the jwt_auth plugin, an identity provider's JWT.",
    },
    SESSION: {
        "type": "apiKey",
        "in": "cookie",
        "name": "gateway_session",
        "description": "Set by POST /api/auth/login. Writes with it must come from a "
        "trusted Origin (403 otherwise).",
    },
    CRON: {
        "type": "http",
        "scheme": "bearer",
        "description": "The gateway's cron_secret, for external schedulers.",
    },
    SETUP_TOKEN: {
        "type": "apiKey",
        "in": "header",
        "name": "X-Setup-Token",
        "description": "The one-time setup token (also accepted as a bearer token).",
    },
    METRICS_TOKEN: {
        "type": "http",
        "scheme": "bearer",
        "description": "The gateway's metrics_token, for Prometheus (else a super admin).",
    },
}

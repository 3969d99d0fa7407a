"""The authentication schemes an operation may declare (``auth=`` of
:func:`gateway.contract.api`), as OpenAPI security schemes."""

from __future__ import annotations

from typing import Any

# Scheme names, not secrets.
API_TOKEN = "apiToken"  # noqa: S105
SESSION = "sessionCookie"
CRON = "cronBearer"
SETUP_TOKEN = "setupToken"  # noqa: S105
TWILIO_SIGNATURE = "twilioSignature"
ELEVENLABS_SIGNATURE = "elevenLabsSignature"
WEBHOOK_SECRET = "webhookSecret"  # noqa: S105
METRICS_TOKEN = "metricsToken"  # noqa: S105

# A signed-in user: an API token (or an identity provider's JWT) or the session cookie.
SIGNED_IN: tuple[str, ...] = (API_TOKEN, SESSION)
PUBLIC: tuple[str, ...] = ()

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
    TWILIO_SIGNATURE: {
        "type": "apiKey",
        "in": "header",
        "name": "X-Twilio-Signature",
        "description": "Base64 HMAC-SHA1, keyed with the account's auth token, of the "
        "public URL followed by the sorted form parameters "
        "(https://www.twilio.com/docs/usage/webhooks/webhooks-security).",
    },
    ELEVENLABS_SIGNATURE: {
        "type": "apiKey",
        "in": "header",
        "name": "ElevenLabs-Signature",
        "description": "t=<unix time>,v0=<hex HMAC-SHA256 of '<t>.<raw body>'> keyed with "
        "the webhook secret (https://elevenlabs.io/docs/product-guides/administration/"
        "webhooks).",
    },
    METRICS_TOKEN: {
        "type": "http",
        "scheme": "bearer",
        "description": "The gateway's metrics_token, for Prometheus (else a super admin).",
    },
    WEBHOOK_SECRET: {
        "type": "apiKey",
        "in": "header",
        "name": "X-Webhook-Secret",
        "description": "A shared secret configured on the voice agent's webhook (also "
        "accepted as a bearer token).",
    },
}

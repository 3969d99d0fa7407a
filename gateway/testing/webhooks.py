"""A client that posts webhooks to the app signed the way each provider signs them."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from quart import Quart


def twilio_headers(auth_token: str, url: str, form: Mapping[str, str]) -> dict[str, str]:
    """Headers for a form POST signed as Twilio signs it (by the ``twilio`` library)."""
    from twilio.request_validator import RequestValidator

    signature = RequestValidator(auth_token).compute_signature(url, dict(form))
    return {
        "X-Twilio-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


def hmac_sha256_hex(secret: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``body``: how most providers sign a webhook."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class SignedWebhooks:
    """Posts to ``app`` as a provider would; the URL it signs is ``public_url + path``
    (the URL the sender was given), the request goes to the app's test client.

    - :meth:`twilio`: a form, ``X-Twilio-Signature`` over the URL and the parameters;
    - :meth:`hmac`: a JSON (or raw) body with a hex HMAC-SHA256 in a header of your
      choosing, optionally with a ``prefix`` such as ``"sha256="``;
    - :meth:`post`: anything else (``sign(body) -> headers``).
    """

    def __init__(self, app: Quart) -> None:
        self.app = app
        self.client = app.test_client()

    @property
    def public_url(self) -> str:
        from gateway import get_gateway

        return get_gateway(self.app).config.gateway.public_url.rstrip("/")

    async def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> Any:
        return await self.client.post(path, data=body, headers=dict(headers))

    async def twilio(self, path: str, form: Mapping[str, str], *, auth_token: str) -> Any:
        headers = twilio_headers(auth_token, self.public_url + path, form)
        return await self.post(path, urlencode(form).encode(), headers)

    async def hmac(
        self,
        path: str,
        payload: Any,
        *,
        secret: str,
        header: str = "X-Signature",
        prefix: str = "",
    ) -> Any:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            header: prefix + hmac_sha256_hex(secret, body),
        }
        return await self.post(path, body, headers)

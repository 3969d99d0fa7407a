"""Calls to a provider's token endpoint: client authentication, response parsing and
error classification.

authlib has no aiohttp client (its async client is built on httpx, and the gateway has
one outbound HTTP stack: the shared aiohttp session), so the HTTP is done here and
authlib supplies the protocol pieces (PKCE, random values). Token expiry is computed from
``gw.clock`` rather than authlib's ``OAuth2Token`` (which reads the wall clock), so tests
can move time.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote

import aiohttp

from gateway.oauth.provider import OAuthProvider, Options

log = logging.getLogger("gateway.oauth")

# A token endpoint that takes longer than this is treated as down (transient).
TOKEN_TIMEOUT = aiohttp.ClientTimeout(total=15, connect=5)


class TokenEndpointError(Exception):
    """The token endpoint refused or failed. ``code`` is the OAuth error code (or a
    synthetic one: ``http_<status>``, ``network_error``, ``invalid_response``);
    ``transient`` says whether trying again later may work. Never carries a token."""

    def __init__(
        self,
        code: str,
        *,
        status: int | None = None,
        description: str | None = None,
        transient: bool = False,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(f"token endpoint: {code}" + (f" (HTTP {status})" if status else ""))
        self.code = code
        self.status = status
        self.description = description
        self.transient = transient
        self.retry_after = retry_after

    @property
    def needs_reconnect(self) -> bool:
        return self.code == "invalid_grant"


@dataclass
class TokenSet:
    """A parsed successful token response."""

    access_token: str
    refresh_token: str | None
    token_type: str
    expires_at: datetime | None
    scope: str | None
    raw: Mapping[str, Any]


def _basic(client_id: str, client_secret: str) -> str:
    # RFC 6749 2.3.1: each part is form-urlencoded before the base64.
    pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def _retry_after(headers: Mapping[str, str]) -> int | None:
    raw = headers.get("Retry-After")
    try:
        return max(0, int(raw)) if raw is not None else None
    except ValueError:
        return None


def _parse_body(text: str, content_type: str) -> dict[str, Any]:
    if "json" in content_type or text.lstrip().startswith("{"):
        try:
            body = json.loads(text)
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}
    # Some token endpoints still answer form-encoded bodies.
    return dict(parse_qsl(text))


async def token_request(
    http: aiohttp.ClientSession,
    provider: OAuthProvider,
    options: Options,
    form: dict[str, str],
    now: datetime,
) -> TokenSet:
    """POST ``form`` to the provider's token endpoint with the client's credentials.

    :raises TokenEndpointError: for every failure; ``invalid_grant`` also when the
        provider's own ``token_error`` hook says so.
    """
    url = provider.endpoint("token_url", options)
    if not url:  # a token_url callable that found nothing in the options
        raise TokenEndpointError("invalid_request", description="no token endpoint URL")
    data = dict(form)
    headers = {"Accept": "application/json"}
    if provider.client_auth_method == "client_secret_basic":
        headers["Authorization"] = _basic(provider.client_id or "", provider.client_secret or "")
    else:
        data["client_id"] = provider.client_id or ""
        data["client_secret"] = provider.client_secret or ""
    try:
        async with http.post(url, data=data, headers=headers, timeout=TOKEN_TIMEOUT) as resp:
            text = await resp.text()
            status, ctype, resp_headers = resp.status, resp.content_type or "", resp.headers
    except (TimeoutError, aiohttp.ClientError) as exc:
        log.warning("token endpoint of %s unreachable: %s", provider.name, type(exc).__name__)
        raise TokenEndpointError("network_error", transient=True) from None
    body = _parse_body(text, ctype)
    code = provider.token_error(status, body) if provider.token_error else None
    if code is None and (status >= 400 or "error" in body):
        code = str(body.get("error") or f"http_{status}")
    if code is not None:
        transient = status >= 500 or status == 429 or code in {"temporarily_unavailable"}
        desc = body.get("error_description")
        raise TokenEndpointError(
            code,
            status=status,
            description=str(desc)[:300] if desc else None,
            transient=transient and code != "invalid_grant",
            retry_after=_retry_after(resp_headers),
        )
    if provider.parse_token is not None:
        body = dict(provider.parse_token(body))
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        raise TokenEndpointError("invalid_response", status=status, transient=True)
    return TokenSet(
        access_token=access,
        refresh_token=body.get("refresh_token") or None,
        token_type=str(body.get("token_type") or "Bearer"),
        expires_at=_expiry(body.get("expires_in"), provider.default_expires_in, now),
        scope=body.get("scope") if isinstance(body.get("scope"), str) else None,
        raw=body,
    )


def _expiry(expires_in: Any, default: int | None, now: datetime) -> datetime | None:
    try:
        seconds = int(expires_in) if expires_in is not None else default
    except (TypeError, ValueError):
        seconds = default
    return now + timedelta(seconds=seconds) if seconds is not None else None

"""Google over OAuth 2.0 / OIDC: how a team connects a Google account (the engine's
provider).

Google specifics (sources in docs/plugins/google_calendar.md:
https://developers.google.com/identity/protocols/oauth2/web-server,
https://developers.google.com/identity/openid-connect/openid-connect):

- ``access_type=offline`` is what makes Google issue a refresh token, and only on a
  consent; ``prompt=consent`` forces the consent screen so a reconnect gets a new one;
- PKCE S256 is supported and sent; the client authenticates in the form body;
- access tokens live about an hour (``expires_in``); refresh tokens are not rotated, so
  the engine keeps the stored one;
- "who connected" is the OIDC userinfo endpoint (``sub`` and ``email``; ``hd`` for a
  Workspace domain);
- revocation is a form post of ``token=`` (revoking the refresh token ends its access
  tokens too); an already dead token answers 400 ``invalid_token``, which counts as done.

Every URL is a setting, so tests point them at a loopback server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from gateway.oauth import AccountInfo, IdentityRequest, OAuthProvider
from plugins.google_calendar.settings import NAME, GoogleCalendarSettings

USERINFO_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)


class IdentityError(Exception):
    """userinfo did not answer who connected."""


def make_identity(
    settings: GoogleCalendarSettings,
) -> Callable[[IdentityRequest], Awaitable[AccountInfo]]:
    async def fetch_identity(req: IdentityRequest) -> AccountInfo:
        headers = {"Authorization": f"Bearer {req.token['access_token']}"}
        async with req.http.get(
            settings.userinfo_url, headers=headers, timeout=USERINFO_TIMEOUT
        ) as resp:
            if resp.status != 200:
                raise IdentityError(f"userinfo answered HTTP {resp.status}")
            claims: dict[str, Any] = await resp.json(content_type=None)
        sub, email = claims.get("sub"), claims.get("email")
        if not sub:
            raise IdentityError("userinfo has no sub")
        data = {"email": email, "email_verified": claims.get("email_verified")}
        if claims.get("hd"):
            data["hosted_domain"] = claims["hd"]
        return AccountInfo(account_id=str(sub), label=str(email or sub), data=data)

    return fetch_identity


def build(settings: GoogleCalendarSettings) -> OAuthProvider:
    extra = {"access_type": "offline", "prompt": "consent"}
    if settings.include_granted_scopes:
        extra["include_granted_scopes"] = "true"
    secret = settings.client_secret.get_secret_value() if settings.client_secret else None
    return OAuthProvider(
        name=NAME,
        display_name="Google Calendar",
        client_id=settings.client_id,
        client_secret=secret,
        authorize_url=settings.authorize_url,
        token_url=settings.token_url,
        scopes=tuple(settings.scopes),
        extra_authorize_params=extra,
        client_auth_method="client_secret_post",
        pkce=True,
        fetch_identity=make_identity(settings),
        revocation_url=settings.revocation_url,
    )

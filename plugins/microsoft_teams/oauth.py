"""Microsoft Teams OAuth: a team connects a Microsoft 365 work account over OAuth 2.0
(Microsoft identity platform v2), so the gateway can post to Teams channels as that user.

Quirks handled here (sources in docs/plugins/microsoft_teams.md,
https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow):

- the authority is ``{login_base_url}/{tenant}/oauth2/v2.0/...``; the tenant defaults to
  ``organizations`` because Teams messaging does not work for personal accounts;
- ``offline_access`` must be requested or no refresh token comes back (checked at startup);
- refresh tokens rotate on every use: the engine stores each new one;
- who connected: Graph ``GET /v1.0/me`` plus the tenant id (``tid``) from the ID token;
- there is no revocation endpoint: disconnect only forgets the tokens (the status answer
  says ``"revoked": null``). Revoking every session of the user is an admin action in Entra.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from gateway.oauth import AccountInfo, IdentityRequest, OAuthProvider
from plugins.microsoft_teams.settings import NAME, MicrosoftTeamsSettings

TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)

# Errors after which only an interactive sign-in helps (MFA, consent, password reset).
REAUTH_ERRORS = {"invalid_grant", "interaction_required", "consent_required", "login_required"}


def id_token_claims(id_token: Any) -> dict[str, Any]:
    """The claims of an ID token received directly from the token endpoint over TLS.

    Not signature-checked: OpenID Connect Core 3.1.3.7 lets a client rely on the TLS
    server authentication of the token endpoint instead, and the claims are only used to
    label the connection (tenant id), never to authorize anything.
    """
    if not isinstance(id_token, str) or id_token.count(".") != 2:
        return {}
    payload = id_token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}


def token_error(status: int, body: Mapping[str, Any]) -> str | None:
    """``invalid_grant`` for every "the user must sign in again" answer (AADSTS70008
    expired, 50173 revoked, 50076 MFA...); other errors pass through unchanged."""
    error = body.get("error")
    if not isinstance(error, str):
        return None
    return "invalid_grant" if error in REAUTH_ERRORS else error


class Microsoft:
    def __init__(self, settings: MicrosoftTeamsSettings) -> None:
        self.settings = settings

    async def fetch_identity(self, req: IdentityRequest) -> AccountInfo:
        url = f"{self.settings.graph_base_url}/v1.0/me"
        headers = {
            "Authorization": f"Bearer {req.token['access_token']}",
            "Accept": "application/json",
        }
        async with req.http.get(url, headers=headers, timeout=TIMEOUT) as resp:
            me = await resp.json(content_type=None)
            if resp.status != 200 or not isinstance(me, Mapping) or not me.get("id"):
                raise RuntimeError(f"Graph /me answered HTTP {resp.status}")
        claims = id_token_claims(req.token.get("id_token"))
        upn = str(me.get("userPrincipalName") or "")
        mail = str(me.get("mail") or "")
        data = {
            "user_id": str(me["id"]),
            "user_principal_name": upn,
            "mail": mail,
            "display_name": str(me.get("displayName") or ""),
            "tenant_id": str(claims.get("tid") or ""),
        }
        return AccountInfo(account_id=str(me["id"]), label=mail or upn or str(me["id"]), data=data)


def build(settings: MicrosoftTeamsSettings) -> OAuthProvider:
    ms = Microsoft(settings)
    secret = settings.client_secret.get_secret_value() if settings.client_secret else None
    extra = {"prompt": settings.prompt} if settings.prompt else {}
    return OAuthProvider(
        name=NAME,
        display_name="Microsoft Teams",
        client_id=settings.client_id,
        client_secret=secret,
        authorize_url=f"{settings.authority()}/authorize",
        token_url=f"{settings.authority()}/token",
        scopes=tuple(settings.scopes),
        scope_separator=" ",
        extra_authorize_params=extra,
        client_auth_method="client_secret_post",
        pkce=True,
        fetch_identity=ms.fetch_identity,
        revocation_url=None,  # Microsoft has none: disconnect forgets the tokens
        revoke=None,
        token_error=token_error,
        # The v2 token endpoint documents scope as required on refresh too.
        refresh_params={"scope": " ".join(settings.scopes)},
    )

"""How a team connects its Acme account: plain OAuth 2.0 (RFC 6749 authorization code
with PKCE, refresh tokens, RFC 7009 revocation); "who connected" is ``GET /userinfo``."""

from __future__ import annotations

from gateway.oauth import AccountInfo, IdentityRequest, OAuthProvider

from acme_crm.settings import NAME, AcmeSettings


def build(settings: AcmeSettings) -> OAuthProvider:
    async def fetch_identity(req: IdentityRequest) -> AccountInfo:
        token = req.token["access_token"]
        async with req.http.get(
            f"{settings.auth_url}/userinfo", headers={"Authorization": f"Bearer {token}"}
        ) as resp:
            resp.raise_for_status()
            body = await resp.json()
        # The account is the Acme workspace (rate limits and the ledger are per account).
        return AccountInfo(account_id=str(body["sub"]), label=str(body.get("email", "")))

    secret = settings.client_secret
    return OAuthProvider(
        name=NAME,
        display_name="Acme CRM",
        client_id=settings.client_id,
        client_secret=secret.get_secret_value() if secret else None,
        authorize_url=f"{settings.auth_url}/authorize",
        token_url=f"{settings.auth_url}/token",
        revocation_url=f"{settings.auth_url}/revoke",
        scopes=tuple(settings.scopes),
        fetch_identity=fetch_identity,
    )

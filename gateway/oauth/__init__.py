"""OAuth connections: the provider-agnostic engine. Plugins describe providers
(:class:`OAuthProvider`); the core owns state, PKCE, token storage, refresh and revocation.

Plugins that call a provider's API get a token with ``await get_access_token(team, name)``
and, after a 401, ``await get_access_token(team, name, rejected=token)``.
"""

from __future__ import annotations

from gateway.oauth.models import OAuthConnection
from gateway.oauth.provider import (
    AccountInfo,
    IdentityRequest,
    OAuthProvider,
    Options,
    RevokeRequest,
)
from gateway.oauth.revoke import RevocationFailed
from gateway.oauth.tokens import (
    NotConnected,
    OAuthTokenError,
    ReconnectRequired,
    TokenUnavailable,
    get_access_token,
)

__all__ = [
    "AccountInfo",
    "IdentityRequest",
    "NotConnected",
    "OAuthConnection",
    "OAuthProvider",
    "OAuthTokenError",
    "Options",
    "ReconnectRequired",
    "RevocationFailed",
    "RevokeRequest",
    "TokenUnavailable",
    "get_access_token",
]

"""OAuth connections: the provider-agnostic engine. Plugins describe providers
(:class:`OAuthProvider`); the core owns state, PKCE, token storage, refresh and revocation."""

from __future__ import annotations

from gateway.oauth.provider import AccountInfo, IdentityRequest, OAuthProvider, RevokeRequest

__all__ = ["AccountInfo", "IdentityRequest", "OAuthProvider", "RevokeRequest"]

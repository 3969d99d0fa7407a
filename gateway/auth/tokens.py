"""API tokens live with the users they belong to (:mod:`gateway.identity.tokens`); this
name stays for the code that imported them from here."""

from __future__ import annotations

from gateway.identity.tokens import TOKEN_PREFIX, create_api_token, find_active_token, hash_token

__all__ = ["TOKEN_PREFIX", "create_api_token", "find_active_token", "hash_token"]

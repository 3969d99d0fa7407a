"""API tokens: ``rgw_<prefix>_<secret>``. Only the SHA-256 of the whole token is stored,
so a database leak does not leak usable tokens; the prefix is shown in listings."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from gateway.identity.models import ApiToken, User

TOKEN_PREFIX = "rgw_"  # noqa: S105  (a public marker, not a secret)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_api_token(
    user: User, label: str = "", expires_at: datetime | None = None
) -> tuple[str, ApiToken]:
    """Create a token; the plaintext is returned once and never stored."""
    prefix = secrets.token_hex(4)
    token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    row = await ApiToken.create(
        user=user, prefix=prefix, token_hash=hash_token(token), label=label, expires_at=expires_at
    )
    return token, row


async def find_active_token(token: str, now: datetime) -> ApiToken | None:
    """The live token row for ``token``, or None if unknown, revoked or expired."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = await ApiToken.get_or_none(token_hash=hash_token(token)).select_related("user")
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    if not row.user.is_active:
        return None
    return row

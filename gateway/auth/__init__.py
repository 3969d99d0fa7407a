"""Who is calling, and may they? The ``authenticate`` hook finds a :class:`Principal`;
the helpers here turn that into 401/403 decisions for a team."""

from __future__ import annotations

from gateway.auth.principal import (
    ADMIN_ROLES,
    Principal,
    bearer_token,
    current_principal,
    require_principal,
    require_super_admin,
    require_team_role,
    resolve_team,
    team_role_required,
)
from gateway.identity.tokens import TOKEN_PREFIX, create_api_token

__all__ = [
    "ADMIN_ROLES",
    "TOKEN_PREFIX",
    "Principal",
    "bearer_token",
    "create_api_token",
    "current_principal",
    "require_principal",
    "require_super_admin",
    "require_team_role",
    "resolve_team",
    "team_role_required",
]

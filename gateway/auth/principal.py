"""The authenticated caller and the role checks every protected route uses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar

from quart import current_app, g, request

from gateway import inputs
from gateway.dispatch import first_result
from gateway.errors import Forbidden, NotFound, Unauthorized, ValidationError
from gateway.identity.models import Membership, Team, User

ADMIN_ROLES: tuple[str, ...] = ("owner", "admin")
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

_UNSET = object()


@dataclass(frozen=True)
class Principal:
    """Who made a request.

    ``team_roles`` is ``None`` for principals whose memberships live in the database
    (API tokens, sessions); a principal from an external identity provider carries the
    roles its token grants instead.
    """

    user_id: int
    email: str
    is_super_admin: bool = False
    via: str = "token"
    team_roles: Mapping[int, str] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Team ids an identity provider asserts (a JWT claim) are request input like
        # any other: one that cannot name a team is a 400 here, not a database error
        # in whichever query first uses it.
        for team_id in self.team_roles or {}:
            inputs.parse_id(team_id, "team_id", Team)

    @classmethod
    def of_user(cls, user: User, via: str) -> Principal:
        """A user of our own database (memberships read from it)."""
        return cls(user_id=user.id, email=user.email, is_super_admin=user.is_super_admin, via=via)

    async def role_in(self, team_id: int) -> str | None:
        if self.team_roles is not None:
            return self.team_roles.get(team_id)
        membership = await Membership.get_or_none(team_id=team_id, user_id=self.user_id)
        return membership.role if membership else None

    async def roles(self) -> dict[int, str]:
        """``{team_id: role}`` for every team of this principal, in one query."""
        if self.team_roles is not None:
            return dict(self.team_roles)
        rows = await Membership.filter(user_id=self.user_id).values_list("team_id", "role")
        return dict(rows)

    async def team_ids(self) -> list[int]:
        return list(await self.roles())

    async def user(self) -> User | None:
        return await User.get_or_none(id=self.user_id)


def bearer_token(request: Any) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (any case of "Bearer"), or None."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


async def current_principal() -> Principal | None:
    """The request's principal, authenticated once per request through the hook."""
    cached = getattr(g, "_principal", _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    gw = current_app.extensions["gateway"]
    principal = await first_result(gw.pm, "authenticate", request=request, config=gw.config)
    g._principal = principal
    return principal


async def require_principal() -> Principal:
    principal = await current_principal()
    if principal is None:
        raise Unauthorized()
    return principal


async def require_super_admin() -> Principal:
    principal = await require_principal()
    if not principal.is_super_admin:
        raise Forbidden("Super admin only")
    return principal


async def resolve_team(principal: Principal, team_id: Any = None) -> Team:
    """The team a request is about: an explicit id (path), else ``X-Team-Id``, else a
    ``team_id`` query parameter (a browser following a link cannot set headers), else the
    principal's only team. Unknown teams and teams the caller is not in look the same
    (403), so ids of other teams are not disclosed."""
    raw = team_id if team_id is not None else request.headers.get("X-Team-Id")
    if raw is None or raw == "":
        raw = request.args.get("team_id")
    if raw is None or raw == "":
        ids = await principal.team_ids()
        if len(ids) != 1:
            raise ValidationError(
                "Say which team: X-Team-Id header or team_id", extra={"field": "team_id"}
            )
        raw = ids[0]
    tid = inputs.parse_id(raw, "team_id", Team)
    team = await Team.get_or_none(id=tid)
    if team is None:
        if principal.is_super_admin:
            raise NotFound("Team not found")
        raise Forbidden()
    return team


async def require_team_role(
    roles: tuple[str, ...] = ADMIN_ROLES, team_id: Any = None
) -> tuple[Principal, Team, str]:
    """401 without valid credentials; 403 unless the caller holds one of ``roles`` in the
    team (super admins hold every role everywhere). Returns (principal, team, role)."""
    principal = await require_principal()
    team = await resolve_team(principal, team_id)
    if principal.is_super_admin:
        return principal, team, "owner"
    role = await principal.role_in(team.id)
    if role is None or role not in roles:
        raise Forbidden()
    return principal, team, role


def team_role_required(*roles: str, path_param: str = "team_id") -> Callable[[F], F]:
    """Decorator for routes: checks the role and sets ``g.principal``, ``g.team``,
    ``g.role``. The team id comes from the ``path_param`` URL variable when present."""
    wanted = roles or ADMIN_ROLES

    def decorator(fn: F) -> F:
        @wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal, team, role = await require_team_role(wanted, kwargs.get(path_param))
            g.principal, g.team, g.role = principal, team, role
            return await fn(*args, **kwargs)

        # Lets tests find every team-scoped view (functools.wraps carries it outward).
        wrapper.gateway_team_roles = wanted  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator

"""Admin listings shared by the events and jobs APIs: which team a listing is limited
to, 404 for other teams' rows, and newest-first pages with an opaque ``cursor`` (the
last id)."""

from __future__ import annotations

from typing import Any

from quart import jsonify, request

from gateway.auth import ADMIN_ROLES, require_principal, require_team_role
from gateway.errors import Forbidden, NotFound
from gateway.identity.models import Team
from gateway.inputs import int_arg, optional_id

MAX_LIMIT = 200


def id_arg(name: str, model: Any) -> int | None:
    """An id query parameter (a filter or a cursor) that fits ``model``'s id column."""
    return optional_id(request.args.get(name), name, model)


async def team_scope() -> int | None:
    """The team a listing is limited to; ``None`` means all (super admins only)."""
    principal = await require_principal()
    team_id = id_arg("team_id", Team)
    if principal.is_super_admin:
        return team_id
    _p, team, _role = await require_team_role(ADMIN_ROLES, team_id)
    return team.id


async def check_visible(team_id: int | None) -> None:
    """404 (not 403) for rows of other teams, so their ids are not disclosed."""
    principal = await require_principal()
    if principal.is_super_admin:
        return
    if team_id is None:
        raise NotFound()
    try:
        await require_team_role(ADMIN_ROLES, team_id)
    except Forbidden:
        raise NotFound() from None


def page(query: Any) -> tuple[Any, int]:
    limit = min(max(int_arg("limit", 50) or 50, 1), MAX_LIMIT)
    cursor = id_arg("cursor", query.model)
    if cursor is not None:
        query = query.filter(id__lt=cursor)
    return query.order_by("-id").limit(limit + 1), limit


def paginated(rows: list[Any], limit: int, render: Any) -> Any:
    more = len(rows) > limit
    rows = rows[:limit]
    return jsonify(
        {"items": [render(r) for r in rows], "next_cursor": str(rows[-1].id) if more else None}
    )

"""``/api/teams/<team_id>/settings``: each plugin's settings for a team, with the JSON
schema the console renders its form from. Members read; owners and admins write. Secrets
are never returned: a set one shows as ``"**********"`` (and ``"set"`` under
``secrets``), and writing that placeholder back, or leaving the field out, keeps it."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint, current_app, g, jsonify

from gateway.auth.principal import ADMIN_ROLES, team_role_required
from gateway.contract import SIGNED_IN, Page, api
from gateway.contract.models import PageQuery
from gateway.identity import validation as v
from gateway.identity.models import ROLES
from gateway.listing import page, paginated
from gateway.responses import iso
from gateway.team_settings import codec
from gateway.team_settings.models import TeamPluginSettings, TeamSettingsChange
from gateway.team_settings.registry import model_of, registered
from gateway.team_settings.store import TeamSettingsInvalid, from_row, write_team_settings


class SettingsIn(BaseModel):
    """The plugin's settings model (its JSON schema is ``schema`` in the GET answer):
    PUT replaces the document, PATCH merges into it."""

    model_config = {"extra": "allow"}


class Who(BaseModel):
    id: int | None
    email: str | None


class SettingsOut(BaseModel):
    plugin: str
    schema_: dict[str, Any] = Field(alias="schema")
    values: dict[str, Any]
    secrets: dict[str, Any]
    invalid: dict[str, Any] | None = None
    version: int
    updated_at: str | None
    updated_by: Who | None


class SettingsWritten(SettingsOut):
    changed: list[str] = Field(description="the settings this write changed")


class SettingsList(BaseModel):
    settings: list[SettingsOut]


class ChangeOut(BaseModel):
    id: int
    at: str | None
    user: Who | None
    action: str
    changed: Any = None
    version: int


bp = Blueprint("gateway_team_settings", __name__, url_prefix="/api/teams/<team_id>/settings")


@cache
def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def _who(user_id: int | None, email: str | None) -> dict[str, Any] | None:
    return {"id": user_id, "email": email} if user_id or email else None


def view(
    plugin: str, model: type[BaseModel], row: TeamPluginSettings | None, email: str | None = None
) -> dict[str, Any]:
    """One plugin's settings as the API shows them."""
    out: dict[str, Any] = {"plugin": plugin, "schema": _schema(model)}
    try:
        settings = from_row(model, row, current_app)
        out["values"] = codec.redacted(settings)
        out["secrets"] = codec.secret_state(settings)
    except TeamSettingsInvalid as exc:
        # Shown so an admin can repair it; stored values never hold secrets.
        out["values"] = row.document if row is not None else {}
        out["secrets"] = {}
        out["invalid"] = {"field": exc.field, "error": str(exc)}
    out["version"] = row.version if row is not None else 0
    out["updated_at"] = iso(row.updated_at) if row is not None else None
    user = getattr(row, "updated_by", None) if row is not None else None
    user_id = row.updated_by_id if row is not None else None
    out["updated_by"] = _who(user_id, email or getattr(user, "email", None))
    return out


async def _row(team_id: int, plugin: str) -> TeamPluginSettings | None:
    return (
        await TeamPluginSettings.filter(team_id=team_id, plugin=plugin)
        .select_related("updated_by")
        .first()
    )


@bp.get("")
@api(SettingsList, auth=SIGNED_IN, errors=(404,))
@team_role_required(*ROLES)
async def list_settings(team_id: str) -> Any:
    models = registered(current_app)
    rows = await TeamPluginSettings.filter(
        team_id=g.team.id, plugin__in=list(models)
    ).select_related("updated_by")
    by_plugin = {row.plugin: row for row in rows}
    return jsonify({"settings": [view(n, m, by_plugin.get(n)) for n, m in sorted(models.items())]})


@bp.get("/<plugin>")
@api(SettingsOut, auth=SIGNED_IN, errors=(404,))
@team_role_required(*ROLES)
async def get_settings(team_id: str, plugin: str) -> Any:
    model = model_of(current_app, plugin)
    return jsonify(view(plugin, model, await _row(g.team.id, plugin)))


async def _write(plugin: str, *, merge: bool) -> Any:
    model = model_of(current_app, plugin)
    body = await v.json_body()
    user = await g.principal.user()
    written = await write_team_settings(
        current_app,
        g.team.id,
        plugin,
        model,
        body,
        merge=merge,
        user_id=user.id if user is not None else None,
        user_email=g.principal.email,
    )
    row = written.row
    email = g.principal.email if written.changed else None
    if row is not None and not written.changed:
        row = await _row(g.team.id, plugin)
    return jsonify({**view(plugin, model, row, email), "changed": written.changed})


@bp.put("/<plugin>")
@api(SettingsWritten, auth=SIGNED_IN, request=SettingsIn, errors=(404, 409))
@team_role_required(*ADMIN_ROLES)
async def put_settings(team_id: str, plugin: str) -> Any:
    return await _write(plugin, merge=False)


@bp.patch("/<plugin>")
@api(SettingsWritten, auth=SIGNED_IN, request=SettingsIn, errors=(404, 409))
@team_role_required(*ADMIN_ROLES)
async def patch_settings(team_id: str, plugin: str) -> Any:
    return await _write(plugin, merge=True)


@bp.get("/<plugin>/history")
@api(Page[ChangeOut], auth=SIGNED_IN, query=PageQuery, errors=(404,))
@team_role_required(*ROLES)
async def settings_history(team_id: str, plugin: str) -> Any:
    model_of(current_app, plugin)
    query, limit = page(TeamSettingsChange.filter(team_id=g.team.id, plugin=plugin))
    return paginated(
        await query,
        limit,
        lambda c: {
            "id": c.id,
            "at": iso(c.at),
            "user": _who(c.user_id, c.user_email),
            "action": c.action,
            "changed": c.changed,
            "version": c.version,
        },
    )

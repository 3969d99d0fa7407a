"""Reading and writing team settings documents.

Handlers, routes and tasks read through :func:`get_team_settings` (one team) or
:func:`get_many_team_settings` (many teams, one query per 30,000). The API writes through
:func:`write_team_settings`, which validates, keeps secrets the input left out, stores
the document and its history row in one transaction.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from gateway.crypto import InvalidToken
from gateway.errors import Conflict, ValidationError
from gateway.sql import chunked
from gateway.team_settings import codec
from gateway.team_settings.models import TeamPluginSettings, TeamSettingsChange

log = logging.getLogger("gateway.team_settings")

M = TypeVar("M", bound=BaseModel)


class TeamSettingsInvalid(Exception):
    """A stored document no longer fits its plugin's model (the plugin changed a field's
    type), or its secrets cannot be decrypted (the key was removed). Raised by the read
    functions; an admin fixes it by saving the settings again."""

    def __init__(self, plugin: str, team_id: int, field: str, message: str) -> None:
        super().__init__(f"team {team_id}: settings of plugin '{plugin}': {field}: {message}")
        self.plugin, self.team_id, self.field = plugin, team_id, field


def _gateway(app: Any) -> Any:
    """The Gateway of ``app`` (a Quart app or the Gateway itself), else of the current
    app context."""
    if app is None:
        from quart import current_app

        try:
            app = current_app._get_current_object()  # type: ignore[attr-defined]
        except RuntimeError:
            raise RuntimeError(
                "team settings hold secrets: pass app= (JobContext.app, the task's app)"
            ) from None
    extensions = getattr(app, "extensions", None)
    return extensions["gateway"] if extensions is not None else app


def _cipher(app: Any) -> Any:
    from gateway.oauth.common import cipher

    return cipher(_gateway(app))


def _team_id(team: Any) -> int:
    return team if isinstance(team, int) else int(team.id)


def _secrets(row: TeamPluginSettings, app: Any) -> dict[codec.Path, str]:
    if not row.secrets_enc:
        return {}
    try:
        return codec.decode_secrets(json.loads(_cipher(app).decrypt(row.secrets_enc)))
    except InvalidToken:
        raise TeamSettingsInvalid(
            row.plugin, row.team_id, "(secrets)", "cannot be decrypted with the current keys"
        ) from None


def from_row(model: type[M], row: TeamPluginSettings | None, app: Any) -> M:
    if row is None:
        return model()
    values = row.document or {}
    # A field the plugin removed is ignored, not an error.
    values = codec.drop(values, codec.unknown_keys(values, model))
    try:
        return model.model_validate(codec.join(values, _secrets(row, app)))
    except PydanticValidationError as exc:
        err = exc.errors()[0]
        raise TeamSettingsInvalid(
            row.plugin, row.team_id, codec.dotted(tuple(err["loc"])), err["msg"]
        ) from None


async def get_team_settings(
    team: Any, plugin: str, model: type[M], *, app: Any = None, using_db: Any = None
) -> M:
    """A team's settings for ``plugin``, as ``model`` (its defaults when nothing is
    stored).

    :param team: a ``Team`` or its id.
    :param plugin: the plugin's name (its entry-point name).
    :param model: the plugin's settings model (the class its ``register_team_settings``
        returned).
    :param app: the Quart app or its Gateway (``JobContext.app`` in a handler, the app
        a task was given); optional inside a request. Needed to decrypt secrets.
    :param using_db: a transaction to read in (e.g. ``ApplyContext.connection``).
    :raises TeamSettingsInvalid: the stored document does not fit ``model`` any more.
    """
    query = TeamPluginSettings.filter(team_id=_team_id(team), plugin=plugin)
    if using_db is not None:
        query = query.using_db(using_db)
    return from_row(model, await query.first(), app)


async def get_many_team_settings(
    teams: Iterable[Any], plugin: str, model: type[M], *, app: Any = None, using_db: Any = None
) -> dict[int, M]:
    """``{team_id: settings}`` for many teams in one query (per 30,000 teams): what a
    daily report over every team uses. Teams that saved nothing get the defaults.

    :raises TeamSettingsInvalid: as :func:`get_team_settings`, for the first bad one.
    """
    ids = sorted({_team_id(t) for t in teams})
    rows: dict[int, TeamPluginSettings] = {}
    for part in chunked(ids):
        query = TeamPluginSettings.filter(plugin=plugin, team_id__in=list(part))
        if using_db is not None:
            query = query.using_db(using_db)
        rows.update({row.team_id: row for row in await query})
    return {tid: from_row(model, rows.get(tid), app) for tid in ids}


# --- writing ---------------------------------------------------------------------------


def _input_error(field: str, message: str, errors: list[dict[str, str]] | None = None) -> Any:
    extra: dict[str, Any] = {"field": field}
    extra["errors"] = errors or [{"field": field, "message": message}]
    return ValidationError(f"{field}: {message}", extra=extra)


def _error_field(loc: tuple[Any, ...], doc: Any, kind: str) -> str:
    """The part of a pydantic error location that names the input (a union's member
    names such as ``int`` are dropped)."""
    parts: list[Any] = []
    node = doc
    for key in loc:
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
        elif kind == "missing" and isinstance(node, dict):
            parts.append(key)
            break
        else:
            break
        parts.append(key)
    return codec.dotted(tuple(parts)) or "body"


def _validated(model: type[M], doc: Any) -> M:
    try:
        return model.model_validate(doc)
    except PydanticValidationError as exc:
        errors = [
            {"field": _error_field(tuple(e["loc"]), doc, e["type"]), "message": e["msg"]}
            for e in exc.errors()
        ]
        raise _input_error(errors[0]["field"], errors[0]["message"], errors) from None


def accept(
    model: type[M], doc: Any, stored: dict[codec.Path, str], *, keep_omitted: bool = True
) -> M:
    """Validate a written document: unknown keys refused, secrets sent as the
    placeholder (and, with ``keep_omitted``, secrets left out) keep their ``stored``
    value.

    :raises gateway.errors.ValidationError: naming the first bad field.
    """
    if not isinstance(doc, dict):
        raise _input_error("body", "Request body must be a JSON object")
    unknown = codec.unknown_keys(doc, model)
    if unknown:
        raise _input_error(codec.dotted(unknown[0]), "is not a setting of this plugin")
    first = _validated(model, doc)
    values, secrets = codec.split(first)
    for path in codec.omitted_secrets(first) if keep_omitted else ():
        if path in stored:
            secrets[path] = stored[path]
    for path, plaintext in list(secrets.items()):
        if plaintext != codec.PLACEHOLDER:
            continue
        if path not in stored:
            raise _input_error(codec.dotted(path), "is not set yet: send its value")
        secrets[path] = stored[path]
    return _validated(model, codec.join(values, secrets))


@dataclass
class Written:
    settings: BaseModel
    row: TeamPluginSettings | None  # None: nothing stored (and nothing changed)
    changed: list[str]


async def write_team_settings(
    app: Any,
    team_id: int,
    plugin: str,
    model: type[BaseModel],
    body: Any,
    *,
    merge: bool,
    user_id: int | None,
    user_email: str | None,
) -> Written:
    """Replace (``merge=False``, PUT) or merge-patch (``merge=True``, PATCH) a team's
    settings, and record the change. A write that changes no value stores nothing.

    :raises gateway.errors.ValidationError: a bad value (400, naming the field).
    :raises gateway.errors.Conflict: another first write for this team won the race.
    """
    gw = _gateway(app)
    now = gw.clock.now()
    async with in_transaction() as conn:
        row = (
            await TeamPluginSettings.filter(team_id=team_id, plugin=plugin)
            .using_db(conn)
            .select_for_update()
            .first()
        )
        stored_values = row.document if row is not None else {}
        stored = _secrets(row, gw) if row is not None else {}
        try:
            before = codec.revealed(from_row(model, row, gw))
        except TeamSettingsInvalid:
            before = codec.join(stored_values, stored)  # being repaired by this write
        doc = codec.merge_patch(codec.join(stored_values, stored), body) if merge else body
        # A merge starts from the stored document, secrets included: a secret missing
        # from the result was removed by the patch's null, so it is not restored.
        settings = accept(model, doc, stored, keep_omitted=not merge)
        changed = codec.changed_paths(before, codec.revealed(settings))
        if not changed:
            return Written(settings, row, [])
        values, secrets = codec.split(settings)
        secrets_enc = (
            _cipher(gw).encrypt(json.dumps(codec.encode_secrets(secrets))) if secrets else None
        )
        if row is None:
            row = TeamPluginSettings(team_id=team_id, plugin=plugin, version=0)
        row.document, row.version = values, row.version + 1
        row.secrets_enc = secrets_enc  # type: ignore[assignment]  # nullable, typed str
        row.updated_at, row.updated_by_id = now, user_id
        try:
            await row.save(using_db=conn)
        except IntegrityError:
            raise Conflict("The settings were changed at the same time; retry") from None
        await TeamSettingsChange.create(
            team_id=team_id,
            plugin=plugin,
            user_id=user_id,
            user_email=user_email,
            action="patch" if merge else "put",
            changed=changed,
            version=row.version,
            at=now,
            using_db=conn,
        )
    log.info("team %s: settings of %s changed: %s", team_id, plugin, ", ".join(changed))
    return Written(settings, row, changed)

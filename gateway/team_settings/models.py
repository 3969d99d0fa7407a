"""team_settings models (Tortoise app ``team_settings``): one settings document per
(team, plugin), and the history of who changed which fields when.

The document holds every value the team set, except secrets: a field typed ``SecretStr``
is stored as ``null`` in ``document`` and its value, with every other secret of the
document, in ``secrets_enc`` (one ciphertext of the same cipher as the OAuth tokens, so
``gateway keys rotate`` re-encrypts it too)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:  # annotations only: the models load as Tortoise apps
    from gateway.identity.models import Team, User


class TeamPluginSettings(Model):
    """A team's settings for one plugin, only what the team set (the defaults come from
    the plugin's model when read). ``version`` grows by one per change."""

    id = fields.IntField(primary_key=True)
    team: fields.ForeignKeyRelation[Team] = fields.ForeignKeyField(
        "identity.Team", related_name="plugin_settings", on_delete=fields.CASCADE
    )
    team_id: int
    plugin = fields.CharField(max_length=100)
    document: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    secrets_enc = fields.TextField(null=True)
    version = fields.IntField(default=0)
    updated_at = fields.DatetimeField()
    updated_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "identity.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    updated_by_id: int | None

    class Meta:
        table = "team_plugin_settings"
        unique_together = (("team", "plugin"),)


class TeamSettingsChange(Model):
    """One change of a team's plugin settings: who, when, and the dotted names of the
    fields whose value changed (never the values: some are secrets)."""

    id = fields.IntField(primary_key=True)
    team: fields.ForeignKeyRelation[Team] = fields.ForeignKeyField(
        "identity.Team", related_name="settings_changes", on_delete=fields.CASCADE
    )
    team_id: int
    plugin = fields.CharField(max_length=100)
    user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "identity.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    user_id: int | None
    # Kept as well as the link, so the history still says who after a user is deleted.
    user_email = fields.CharField(max_length=320, null=True)
    action = fields.CharField(max_length=16)  # "put" | "patch"
    changed: fields.JSONField[list[Any]] = fields.JSONField(default=list)
    version = fields.IntField()
    at = fields.DatetimeField()

    class Meta:
        table = "team_settings_changes"
        indexes = (("team_id", "plugin", "at"),)

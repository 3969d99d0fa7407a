"""Per-team plugin settings.

A plugin declares a pydantic model through the ``register_team_settings`` hook; team
admins edit one document per (team, plugin) at ``/api/teams/<id>/settings/<plugin>``;
code reads it typed::

    from gateway.team_settings import get_team_settings

    settings = await get_team_settings(team_id, "acme_crm", AcmeTeamSettings, app=ctx.app)

Fields typed ``SecretStr`` (nested ones too) are encrypted at rest and never returned by
the API. See docs/team-settings.md.
"""

from __future__ import annotations

from gateway.team_settings.codec import PLACEHOLDER
from gateway.team_settings.models import TeamPluginSettings
from gateway.team_settings.registry import registered
from gateway.team_settings.store import (
    TeamSettingsInvalid,
    get_many_team_settings,
    get_team_settings,
)

__all__ = [
    "PLACEHOLDER",
    "TeamPluginSettings",
    "TeamSettingsInvalid",
    "get_many_team_settings",
    "get_team_settings",
    "registered",
]

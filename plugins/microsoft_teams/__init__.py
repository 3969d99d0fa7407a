"""Microsoft Teams plugin: a team connects a Microsoft 365 work account over OAuth 2.0
(:mod:`.oauth`); the plugin then posts Adaptive Cards to the team's channel for the
outcomes the team chose (a meeting booked, a call failed, the weekly report), through
Microsoft Graph (:mod:`.graph`, exactly once) or a Teams Workflows webhook
(:mod:`.workflows`, at least once). Which event makes which card: :mod:`.notify`; the
cards: :mod:`.cards`; settings: :mod:`.settings`. The whole story in
docs/plugins/microsoft_teams.md."""

from __future__ import annotations

from gateway import hookimpl
from gateway.config import GatewayConfig
from gateway.events import EventHandler
from gateway.oauth import OAuthProvider
from plugins.microsoft_teams.oauth import build, id_token_claims, token_error
from plugins.microsoft_teams.settings import NAME, MicrosoftTeamsSettings, TeamsTeamSettings

__all__ = [
    "NAME",
    "MicrosoftTeamsSettings",
    "TeamsTeamSettings",
    "build",
    "id_token_claims",
    "token_error",
]


def load(config: GatewayConfig) -> MicrosoftTeamsSettings:
    # The core warns when client_id/client_secret are missing and keeps the secret out
    # of every log line.
    return config.plugin_config(NAME, MicrosoftTeamsSettings)


@hookimpl
def register_oauth_providers(config: GatewayConfig) -> list[OAuthProvider]:
    return [build(load(config))]


@hookimpl
def register_team_settings(config: GatewayConfig) -> type[TeamsTeamSettings]:
    return TeamsTeamSettings


@hookimpl
def register_event_handlers(config: GatewayConfig) -> list[EventHandler]:
    from plugins.microsoft_teams.notify import handlers

    return handlers(config)

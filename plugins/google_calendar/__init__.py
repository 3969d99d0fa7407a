"""Google Calendar plugin: a team connects a Google account over OAuth 2.0 / OIDC
(:mod:`.oauth`); a meeting the voice agent booked on a call then lands in the team's
calendar, exactly once, after a free/busy check when the team asks for it
(:mod:`.booking`). Settings in :mod:`.settings`; the whole story in
docs/plugins/google_calendar.md."""

from __future__ import annotations

from gateway import hookimpl
from gateway.calls import ANALYZED
from gateway.config import GatewayConfig
from gateway.events import EventHandler, JobContext
from gateway.oauth import OAuthProvider
from plugins.google_calendar.oauth import IdentityError, build, make_identity
from plugins.google_calendar.settings import (
    DEFAULT_SCOPES,
    NAME,
    GoogleCalendarSettings,
    GoogleCalendarTeamSettings,
)

__all__ = [
    "DEFAULT_SCOPES",
    "NAME",
    "GoogleCalendarSettings",
    "GoogleCalendarTeamSettings",
    "IdentityError",
    "make_identity",
]

HANDLER = f"{NAME}.book_meeting"


def load(config: GatewayConfig) -> GoogleCalendarSettings:
    # The core warns when client_id/client_secret are missing and keeps the secret out
    # of every log line.
    return config.plugin_config(NAME, GoogleCalendarSettings)


@hookimpl
def register_oauth_providers(config: GatewayConfig) -> list[OAuthProvider]:
    return [build(load(config))]


@hookimpl
def register_team_settings(config: GatewayConfig) -> type[GoogleCalendarTeamSettings]:
    return GoogleCalendarTeamSettings


@hookimpl
def register_event_handlers(config: GatewayConfig) -> list[EventHandler]:
    from plugins.google_calendar.booking import book_meeting

    settings = load(config)

    async def handler(ctx: JobContext) -> None:
        await book_meeting(ctx, settings)

    return [EventHandler(HANDLER, (ANALYZED,), handler)]

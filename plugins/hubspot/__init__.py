"""HubSpot plugin: a team connects its portal over OAuth 2.0 (:mod:`.oauth`); the
portal is then a CRM under the core's contract (:mod:`.crm`): callers are looked up by
phone number for personalization, and every analyzed call is logged as a Call
engagement on the contact, exactly once. Settings in :mod:`.settings`; the whole story
in docs/plugins/hubspot.md."""

from __future__ import annotations

from gateway import hookimpl
from gateway.config import GatewayConfig
from gateway.oauth import OAuthProvider
from gateway.sync import CRM
from plugins.hubspot.oauth import build, parse_token, token_error
from plugins.hubspot.settings import NAME, HubSpotSettings, HubSpotTeamSettings

__all__ = ["NAME", "HubSpotSettings", "HubSpotTeamSettings", "parse_token", "token_error"]


def load(config: GatewayConfig) -> HubSpotSettings:
    # The core warns when client_id/client_secret are missing and keeps the secret out
    # of every log line.
    return config.plugin_config(NAME, HubSpotSettings)


@hookimpl
def register_oauth_providers(config: GatewayConfig) -> list[OAuthProvider]:
    return [build(load(config))]


@hookimpl
def register_crms(config: GatewayConfig) -> list[CRM]:
    from plugins.hubspot.crm import build_crm

    return [build_crm(load(config))]


@hookimpl
def register_team_settings(config: GatewayConfig) -> type[HubSpotTeamSettings]:
    return HubSpotTeamSettings

"""Acme CRM for the Renchi Gateway: a team connects its Acme account over OAuth
(:mod:`.oauth`); callers are then looked up by phone number and every analyzed call is
logged on the contact exactly once (:mod:`.crm`), as the team's settings say
(:mod:`.settings`). Imports only the gateway's public plugin API."""

from __future__ import annotations

from gateway import hookimpl
from gateway.config import GatewayConfig
from gateway.oauth import OAuthProvider
from gateway.sync import CRM

from acme_crm.settings import NAME, AcmeSettings, AcmeTeamSettings

__all__ = ["NAME", "AcmeSettings", "AcmeTeamSettings"]


def load(config: GatewayConfig) -> AcmeSettings | None:
    """The operator's settings, or None while the plugin is installed but not set up."""
    settings = config.plugin_config(NAME, AcmeSettings)
    return settings if settings.client_id else None


@hookimpl
def register_oauth_providers(config: GatewayConfig) -> list[OAuthProvider]:
    from acme_crm.oauth import build

    settings = load(config)
    return [build(settings)] if settings else []


@hookimpl
def register_crms(config: GatewayConfig) -> list[CRM]:
    from acme_crm.crm import build_crm

    settings = load(config)
    return [build_crm(settings)] if settings else []


@hookimpl
def register_team_settings(config: GatewayConfig) -> type[AcmeTeamSettings] | None:
    return AcmeTeamSettings if load(config) else None

"""Salesforce plugin: a team connects its org over OAuth 2.0 (:mod:`.oauth`); the org is
then a CRM under the core's contract (:mod:`.crm`): callers are looked up by phone number
(SOSL over phone fields, Contact before Lead) for personalization, and every analyzed
call is logged as a completed call Task, exactly once. Settings in :mod:`.settings`; the
whole story in docs/plugins/salesforce.md."""

from __future__ import annotations

from gateway import hookimpl
from gateway.config import GatewayConfig
from gateway.oauth import OAuthProvider
from gateway.sync import CRM
from plugins.salesforce.oauth import build, session_expired
from plugins.salesforce.settings import NAME, SalesforceSettings, SalesforceTeamSettings

__all__ = ["NAME", "SalesforceSettings", "SalesforceTeamSettings", "session_expired"]


def load(config: GatewayConfig) -> SalesforceSettings:
    # The core warns when client_id/client_secret are missing and keeps the secret out
    # of every log line.
    return config.plugin_config(NAME, SalesforceSettings)


@hookimpl
def register_oauth_providers(config: GatewayConfig) -> list[OAuthProvider]:
    return [build(load(config))]


@hookimpl
def register_crms(config: GatewayConfig) -> list[CRM]:
    from plugins.salesforce.crm import build_crm

    return [build_crm(load(config))]


@hookimpl
def register_team_settings(config: GatewayConfig) -> type[SalesforceTeamSettings]:
    return SalesforceTeamSettings

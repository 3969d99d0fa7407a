"""Acme CRM settings: the operator's ``[plugins.acme_crm]`` table and what each team's
admin chooses (``/api/teams/<id>/settings/acme_crm``)."""

from __future__ import annotations

from gateway.config import HttpBaseURL, PluginSettings
from pydantic import BaseModel, Field, SecretStr

NAME = "acme_crm"  # the entry-point name: the table, the provider, the CRM


class AcmeSettings(PluginSettings):
    """``[plugins.acme_crm]``. Without ``client_id`` the plugin stays out of the way
    (installed is not configured): it registers no provider and no CRM."""

    client_id: str | None = None
    client_secret: SecretStr | None = None
    # Every third-party URL is configurable, so tests point them at a loopback fake.
    auth_url: HttpBaseURL = "https://login.acme-crm.example"
    api_url: HttpBaseURL = "https://api.acme-crm.example"
    scopes: list[str] = Field(default_factory=lambda: ["contacts.read", "calls.write"])
    requests_per_second: int = Field(default=10, ge=1)  # Acme's limit per account


class AcmeTeamSettings(BaseModel):
    """What a team admin decides for the team's Acme account."""

    log_calls: bool = Field(True, description="log every analyzed call on the contact")
    include_summary: bool = Field(True, description="put the call's summary in the note")
    call_type: str = Field(
        "AI call", max_length=40, description="the call type shown in Acme's timeline"
    )

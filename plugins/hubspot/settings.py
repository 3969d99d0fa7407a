"""HubSpot settings: the operator's ``[plugins.hubspot]`` table and what each team's
admin chooses (``/api/teams/<id>/settings/hubspot``)."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from gateway.config import HttpBaseURL, PluginSettings

NAME = "hubspot"


class HubSpotSettings(PluginSettings):
    client_id: str | None = None
    client_secret: SecretStr | None = None
    auth_base_url: HttpBaseURL = "https://app.hubspot.com"  # consent page, record links
    api_base_url: HttpBaseURL = "https://api.hubapi.com"  # token, introspect, revoke, CRM
    oauth_api_version: str = Field(default="2026-03", pattern=r"^(v[0-9]+|[0-9]{4}-[0-9]{2})$")
    scopes: list[str] = Field(
        default_factory=lambda: ["oauth", "crm.objects.contacts.read", "crm.objects.contacts.write"]
    )
    optional_scopes: list[str] = Field(default_factory=list)
    # Rate limits per installed account (portal). OAuth apps: 100 requests per 10 s;
    # the CRM search endpoints: 4 per second on top of that.
    burst_limit: int = Field(default=100, ge=1)
    burst_window_seconds: int = Field(default=10, ge=1)
    search_limit: int = Field(default=4, ge=1)
    search_window_seconds: int = Field(default=1, ge=1)
    daily_limit: int | None = Field(default=None, ge=1)  # private apps: 250,000 and up
    # How long a new record may take to show up in search (HubSpot indexes it later).
    search_lag_seconds: float = Field(default=10.0, ge=0)
    transcript_excerpt_chars: int = Field(default=2000, ge=0, le=60000)

    @property
    def oauth_base(self) -> str:
        return f"{self.api_base_url}/oauth/{self.oauth_api_version}"


class HubSpotTeamSettings(BaseModel):
    """What a team admin decides for the team's HubSpot portal."""

    log_calls: bool = Field(True, description="log every analyzed call as a Call engagement")
    create_contacts: bool = Field(
        False,
        description="create a contact for a caller HubSpot does not know (off by default: "
        "an unknown number may be a wrong number or spam)",
    )
    include_transcript: bool = Field(True, description="add a transcript excerpt to the call")
    default_region: str = Field(
        "US",
        pattern=r"^[A-Z]{2}$",
        description="country of phone numbers stored without a country code (ISO 3166)",
    )

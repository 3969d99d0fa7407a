"""Microsoft Teams settings: the operator's ``[plugins.microsoft_teams]`` table and what
each team's admin chooses (``/api/teams/<id>/settings/microsoft_teams``)."""

from __future__ import annotations

from urllib.parse import quote

from pydantic import BaseModel, Field, SecretStr, field_validator

from gateway.config import HttpBaseURL, PluginSettings

NAME = "microsoft_teams"
DEFAULT_SCOPES = ["openid", "profile", "offline_access", "User.Read", "ChannelMessage.Send"]
# Where Teams Workflows ("post to a channel when a webhook request is received") URLs
# live: Logic Apps hosts and the Power Platform endpoints.
DEFAULT_WEBHOOK_HOSTS = [
    "*.logic.azure.com",
    "*.api.powerplatform.com",
    "*.powerautomate.com",
    "*.flow.microsoft.com",
]


class MicrosoftTeamsSettings(PluginSettings):
    client_id: str | None = None
    client_secret: SecretStr | None = None
    # "organizations" (any work/school tenant), "common", or one tenant's id/domain.
    tenant: str = Field(default="organizations", pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]{0,99}$")
    login_base_url: HttpBaseURL = "https://login.microsoftonline.com"
    graph_base_url: HttpBaseURL = "https://graph.microsoft.com"
    scopes: list[str] = Field(default_factory=lambda: list(DEFAULT_SCOPES))
    prompt: str | None = Field(
        default="select_account", pattern=r"^(select_account|login|consent|)$"
    )
    # Posting: per tenant (Graph) or per webhook URL (Workflows), across processes.
    # Graph allows 4 requests per second per app on one team or channel.
    rate_limit_requests: int = Field(default=4, ge=1)
    rate_limit_seconds: int = Field(default=1, ge=1)
    # After a lost answer: how long a posted message may take to be listed, and how many
    # pages of 50 channel messages are read looking for its marker.
    reconcile_lag_seconds: float = Field(default=5.0, ge=0)
    reconcile_pages: int = Field(default=5, ge=1, le=40)
    # Hosts a team's Workflows webhook URL may point at (shell patterns): the gateway
    # must not become a way to POST into the operator's own network.
    webhook_hosts: list[str] = Field(default_factory=lambda: list(DEFAULT_WEBHOOK_HOSTS))
    webhook_allow_http: bool = False

    @field_validator("scopes")
    @classmethod
    def _offline(cls, value: list[str]) -> list[str]:
        # Without it the token response has no refresh token and every connection dies
        # after about an hour.
        if "offline_access" not in value:
            raise ValueError("must include offline_access")
        if any("," in s or " " in s for s in value):
            raise ValueError("one scope per list item (Microsoft joins them with spaces)")
        return value

    def authority(self) -> str:
        return f"{self.login_base_url}/{quote(self.tenant, safe='.-')}/oauth2/v2.0"


class TeamsTeamSettings(BaseModel):
    """Where a team's cards go and which ones it wants."""

    team_id: str | None = Field(
        None,
        max_length=100,
        pattern=r"^[A-Za-z0-9-]+$",
        description="the Microsoft Teams team (group) id, e.g. fbe2bf47-16c8-47cf-b4a5-...",
    )
    channel_id: str | None = Field(
        None,
        max_length=200,
        pattern=r"^[A-Za-z0-9:@._-]+$",
        description="the channel id, e.g. 19:4a95f7d8db4c4e7fae857bcebe0623e6@thread.tacv2",
    )
    webhook_url: SecretStr | None = Field(
        None,
        description="a Teams Workflows webhook URL (for tenants that forbid Graph posting); "
        "when set, cards go there instead of through Graph",
    )
    meeting_booked: bool = Field(True, description="a card when a call booked a meeting")
    call_failed: bool = Field(
        True, description="a card when a call failed (or could not be started)"
    )
    weekly_report: bool = Field(True, description="the weekly report as a card")
    meeting_field: str = Field(
        "meeting_start",
        min_length=1,
        max_length=100,
        description="the data-collection item whose value means a meeting was booked",
    )
    include_summary: bool = Field(True, description="the agent's summary of the call on cards")

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("https://", "http://")):
            raise ValueError("must be an https:// URL")
        return value

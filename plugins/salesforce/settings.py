"""Salesforce settings: the operator's ``[plugins.salesforce]`` table and what each team's
admin chooses (``/api/teams/<id>/settings/salesforce``)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator

from gateway.config import PluginSettings

NAME = "salesforce"


class SalesforceSettings(PluginSettings):
    client_id: str | None = None
    client_secret: SecretStr | None = None
    login_base_url: str = "https://login.salesforce.com"  # environment=production
    sandbox_base_url: str = "https://test.salesforce.com"  # environment=sandbox
    allow_my_domain: bool = True
    scopes: list[str] = Field(default_factory=lambda: ["api", "refresh_token", "id"])
    # The REST API version in every path (/services/data/<api_version>/...).
    api_version: str = Field(default="v62.0", pattern=r"^v[0-9]+\.[0-9]$")
    # The org's session timeout, if you want refreshes ahead of it instead of after the
    # first 401. Unset: expiry unknown (Salesforce does not say).
    session_seconds: int | None = Field(default=None, gt=60)
    # The share of the org's rolling 24-hour API allocation the gateway may use (the
    # whole org, every integration, shares one allocation: at least 100,000 on
    # Enterprise Edition, 15,000 on Developer Edition).
    daily_limit: int = Field(default=10_000, ge=1)
    # How long to wait after Salesforce answered REQUEST_LIMIT_EXCEEDED (the allocation
    # is a rolling window: capacity returns gradually).
    limit_retry_seconds: int = Field(default=900, ge=1, le=86_400)
    transcript_excerpt_chars: int = Field(default=2000, ge=0, le=30_000)

    @field_validator("login_base_url", "sandbox_base_url")
    @classmethod
    def _origin(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname or parts.path.strip("/"):
            raise ValueError("must be an http(s) origin, e.g. https://login.salesforce.com")
        return value.rstrip("/")

    def configured_origins(self) -> set[str]:
        return {self.login_base_url, self.sandbox_base_url}


class SalesforceTeamSettings(BaseModel):
    """What a team admin decides for the team's Salesforce org."""

    log_calls: bool = Field(True, description="log every analyzed call as a completed call Task")
    create_contacts: bool = Field(
        False,
        description="create a record for a caller Salesforce does not know (off by default: "
        "an unknown number may be a wrong number or spam)",
    )
    new_record_type: Literal["Lead", "Contact"] = Field(
        "Lead", description="what to create for an unknown caller"
    )
    include_transcript: bool = Field(True, description="add a transcript excerpt to the Task")
    task_status: str = Field(
        "Completed",
        min_length=1,
        max_length=40,
        description="the Task Status picklist value meaning done (orgs may rename it)",
    )
    default_region: str = Field(
        "US",
        pattern=r"^[A-Z]{2}$",
        description="country of phone numbers stored without a country code (ISO 3166)",
    )

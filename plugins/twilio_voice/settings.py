"""``[plugins.twilio_voice]``: credentials, the media host, and how calls reach the agent."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from gateway.config import GatewayConfig, HttpBaseURL, PluginSettings

NAME = "twilio_voice"
_ACCOUNT_SID = r"^AC[0-9a-fA-F]{32}$"


class Subaccount(PluginSettings):
    """A Twilio subaccount (usually one per team): its own Auth Token signs its webhooks
    and authenticates its media downloads."""

    auth_token: SecretStr
    previous_auth_token: SecretStr | None = None
    # When set, this subaccount's signature is only accepted for the team's own numbers
    # and calls: a leaked subaccount token cannot inject calls into another team.
    team_id: int | None = None


class TwilioVoiceSettings(PluginSettings):
    account_sid: str | None = Field(default=None, pattern=_ACCOUNT_SID)
    auth_token: SecretStr | None = None
    previous_auth_token: SecretStr | None = None  # still accepted during a rotation
    subaccounts: dict[str, Subaccount] = Field(default_factory=dict)
    # Webhooks SharedKey secrets by key id (Twilio's per-URL signing rules, HMAC-SHA256).
    shared_keys: dict[str, SecretStr] = Field(default_factory=dict)

    # Recordings are only ever fetched from this origin (scheme, host, port).
    api_base_url: HttpBaseURL = "https://api.twilio.com"
    # Extra hosts a media redirect may lead to (e.g. a CDN). Credentials never go there.
    media_redirect_hosts: list[str] = Field(default_factory=list)
    recording_max_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    recording_timeout_seconds: float = Field(default=120.0, gt=0)
    recording_format: Literal["wav", "mp3"] = "wav"
    default_retention_days: int = Field(default=90, ge=0)  # calls with no known team
    # Opt-in: when the gateway's copy of a recording expires (voice.recording.expired),
    # delete Twilio's copy too through the REST API (at api_base_url).
    delete_expired_recordings: bool = False
    rest_timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    # How an answered call reaches the voice agent: a media stream to this wss URL, or
    # the agent provider's register-call API (which answers with TwiML).
    stream_url: str | None = None
    agent_api_base_url: HttpBaseURL = "https://api.elevenlabs.io"
    agent_api_key: SecretStr | None = None
    agent_api_timeout_seconds: float = Field(default=5.0, gt=0, le=10)
    voice_language: str = "en-US"
    unknown_number_message: str = (
        "Sorry, this number is not available right now. Please try again later. Goodbye."
    )
    unavailable_message: str = (
        "Sorry, we cannot take your call right now. Please try again later. Goodbye."
    )

    @field_validator("subaccounts")
    @classmethod
    def _subaccount_sids(cls, value: dict[str, Subaccount]) -> dict[str, Subaccount]:
        import re

        for sid in value:
            if not re.match(_ACCOUNT_SID, sid):
                raise ValueError(f"'{sid}' is not an AccountSid (AC + 32 hex)")
        return value

    @field_validator("stream_url")
    @classmethod
    def _websocket(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in {"wss", "ws"}:
            raise ValueError("must be a wss:// URL")
        return value

    @model_validator(mode="after")
    def _one_voice_mode(self) -> TwilioVoiceSettings:
        if self.stream_url and self.agent_api_key:
            raise ValueError("set either stream_url or agent_api_key, not both")
        return self

    @property
    def voice_mode(self) -> str | None:
        if self.stream_url:
            return "stream"
        if self.agent_api_key:
            return "register_call"
        return None

    def has_credentials(self) -> bool:
        return self.auth_token is not None or bool(self.subaccounts) or bool(self.shared_keys)


def load(config: GatewayConfig) -> TwilioVoiceSettings:
    """Parse (once, cached by the config) and report what is missing as warnings."""
    settings = config.plugin_config(NAME, TwilioVoiceSettings)
    if not settings.has_credentials():
        config.warn(
            "plugin 'twilio_voice': no auth_token configured: every Twilio webhook will be "
            "answered 401 until one is set"
        )
    if settings.voice_mode is None:
        config.warn(
            "plugin 'twilio_voice': neither stream_url nor agent_api_key is set: inbound "
            "calls hear the unavailable message"
        )
    # Every SecretStr here, nested ones included, is kept out of logs by the core.
    return settings

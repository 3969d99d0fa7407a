"""``[plugins.elevenlabs]``: the webhook secret(s) and the limits of the main webhook,
the personalization route, and the API the reconciliation reads."""

from __future__ import annotations

from pydantic import Field, SecretStr, StrictBool, StrictFloat, StrictInt, StrictStr

from gateway.config import GatewayConfig, HttpBaseURL, PluginSettings

NAME = "elevenlabs"
SOURCE_NAME = "elevenlabs.webhook"  # the main webhook's WebhookSource
MB = 1024 * 1024
# What ElevenLabs accepts as a dynamic variable's value (string, number, boolean). Bool
# first: a JSON true must not become 1.
VariableValue = StrictBool | StrictInt | StrictFloat | StrictStr


class ElevenLabsSettings(PluginSettings):
    # The HMAC secret ElevenLabs shows once when the webhook is created, and the one
    # before it while a rotation is under way (both are accepted).
    webhook_secret: SecretStr | None = None
    previous_webhook_secret: SecretStr | None = None
    # A one-hour call's post_call_audio is ~75 MB of base64: allow twice that. Only
    # this route gets it; every other route keeps [gateway] max_body_bytes.
    audio_max_bytes: int = Field(default=150 * MB, gt=0)
    # The JSON around the audio, and every other event type (transcripts are a few
    # hundred KB), is parsed in memory up to this size.
    json_max_bytes: int = Field(default=16 * MB, gt=0)
    # The whole body must arrive within this (a slow sender is answered 408).
    body_timeout_seconds: float = Field(default=600.0, gt=0)
    # Retention for audio of conversations whose team is unknown (0 keeps it).
    default_retention_days: int = Field(default=90, ge=0)

    # --- personalization (POST /api/webhooks/elevenlabs/personalize) -----------------
    # The shared secret ElevenLabs sends in X-Webhook-Secret or Authorization: Bearer
    # (teams may set their own in their team settings).
    personalize_secret: SecretStr | None = None
    # Answered for every call, under the team's own variables; all that an unknown
    # number or agent gets.
    default_dynamic_variables: dict[str, VariableValue] = Field(default_factory=dict)
    # The answer is sent by then, whatever the contact lookup is doing.
    lookup_deadline_seconds: float = Field(default=1.0, gt=0, le=10)
    # How long a lookup's answer (a contact, or nobody) is reused for the same caller.
    lookup_cache_seconds: float = Field(default=300.0, ge=0)
    lookup_cache_entries: int = Field(default=10_000, ge=1)
    # A number's team and the team's settings are read again after this long (an
    # admin's change reaches calls within it).
    team_cache_seconds: float = Field(default=5.0, ge=0)
    personalize_max_bytes: int = Field(default=64 * 1024, gt=0)

    # --- the ElevenLabs API (reconciliation) -----------------------------------------
    api_key: SecretStr | None = None
    api_base_url: HttpBaseURL = "https://api.elevenlabs.io"
    api_timeout_seconds: float = Field(default=30.0, gt=0)
    # Each scheduled run looks this far back for conversations the webhook never
    # delivered (ElevenLabs retries for at most about 40 minutes, when retries are on).
    reconcile_lookback_hours: float = Field(default=24.0, gt=0)
    reconcile_schedule: str = "17 * * * *"  # hourly, UTC (cron)

    def secrets(self) -> tuple[str, ...]:
        """The accepted secrets, current first."""
        return tuple(
            s.get_secret_value()
            for s in (self.webhook_secret, self.previous_webhook_secret)
            if s is not None and s.get_secret_value()
        )


def load(config: GatewayConfig) -> ElevenLabsSettings:
    """Parse (once, cached by the config) and warn when no secret is configured."""
    settings = config.plugin_config(NAME, ElevenLabsSettings)
    if not settings.secrets():
        config.warn(
            "plugin 'elevenlabs': no webhook_secret configured: /api/webhooks/elevenlabs "
            "answers 401 to everything until one is set"
        )
    return settings


def load_quietly(config: GatewayConfig) -> ElevenLabsSettings:
    """The settings, without the startup warning (already given by :func:`load`)."""
    return config.plugin_config(NAME, ElevenLabsSettings)

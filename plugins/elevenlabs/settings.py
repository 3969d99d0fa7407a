"""``[plugins.elevenlabs]``: the webhook secret(s) and the limits of the main webhook."""

from __future__ import annotations

from pydantic import Field, SecretStr

from gateway.config import GatewayConfig, PluginSettings

NAME = "elevenlabs"
MB = 1024 * 1024


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

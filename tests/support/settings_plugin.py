"""A plugin with team settings (nested models, a dict, secrets at two depths), for the
team-settings tests. Register with ``make_app(extra_plugins=[("acme_voice", plugin)])``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from gateway import hookimpl

NAME = "acme_voice"


class Crm(BaseModel):
    pipeline: str = "default"
    api_key: SecretStr | None = None


class VoiceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    greeting: str = "Hello"
    max_minutes: int = Field(default=10, ge=1, le=60)
    variables: dict[str, str] = Field(default_factory=dict)
    crm: Crm = Field(default_factory=Crm)
    webhook_secret: SecretStr | None = None


class SettingsPlugin:
    def __init__(self, model: Any = VoiceSettings) -> None:
        self.model = model

    @hookimpl
    def register_team_settings(self, config: Any) -> Any:
        return self.model

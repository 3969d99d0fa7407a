"""What a team admin sets for the ElevenLabs agent (``/api/teams/<id>/settings/elevenlabs``):
the dynamic variables the personalization answers, where their values come from, the
overrides, and optionally the team's own personalization secret.

Facts from ElevenLabs' docs
(https://elevenlabs.io/docs/eleven-agents/customization/personalization/dynamic-variables,
https://elevenlabs.io/docs/eleven-agents/customization/personalization/overrides):
values are strings, numbers or booleans; the ``system__`` prefix is reserved; the answer
must carry every variable the agent declares (a missing one fails the call); an override
is only accepted for a field enabled in the agent's Security tab.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    model_validator,
)

from plugins.elevenlabs.settings import VariableValue


def _not_reserved(name: str) -> str:
    if name.startswith("system__"):
        raise ValueError("the system__ prefix is reserved by ElevenLabs")
    return name


VariableName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"),
    AfterValidator(_not_reserved),
]
ContactField = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")]


class AgentOverrides(BaseModel):
    """Overrides of the agent's configuration for this team's calls; unset ones are not
    sent (enable each one you set in the agent's Security tab at ElevenLabs)."""

    model_config = ConfigDict(extra="forbid")

    first_message: str | None = Field(
        None, max_length=5000, description="what the agent says first"
    )
    prompt: str | None = Field(None, max_length=100_000, description="the agent's system prompt")
    language: str | None = Field(
        None, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$", description="e.g. en, pt-br"
    )
    voice_id: str | None = Field(None, max_length=64, description="an ElevenLabs voice id")


class ElevenLabsTeamSettings(BaseModel):
    """A team's personalization settings."""

    model_config = ConfigDict(extra="forbid")

    dynamic_variables: dict[VariableName, VariableValue] = Field(
        default_factory=dict,
        description="every variable the team's agent declares, with the value sent when "
        "nothing better is known (string, number or boolean)",
    )
    contact_variables: dict[VariableName, ContactField] = Field(
        default_factory=dict,
        description="variable <- field of the contact the lookup found (e.g. customer_name: "
        "name; a dotted path reads a nested field); each variable must be declared above",
    )
    overrides: AgentOverrides = Field(default_factory=AgentOverrides)
    personalize_secret: SecretStr | None = Field(
        None, description="this team's own secret for the personalization webhook"
    )

    @model_validator(mode="after")
    def _mapped_variables_are_declared(self) -> ElevenLabsTeamSettings:
        undeclared = sorted(set(self.contact_variables) - set(self.dynamic_variables))
        if undeclared:
            raise ValueError(
                "contact_variables maps undeclared variables (declare them with a "
                f"default in dynamic_variables): {', '.join(undeclared)}"
            )
        return self

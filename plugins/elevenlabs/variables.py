"""The personalization answer, from the plugin's defaults, the team's settings and the
contact the lookup found (pure functions: no I/O).

The answer's shape is ElevenLabs' conversation initiation client data
(https://elevenlabs.io/docs/eleven-agents/customization/personalization/twilio-personalization)::

    {"type": "conversation_initiation_client_data",
     "dynamic_variables": {"customer_name": "Jo"},
     "conversation_config_override": {
         "agent": {"prompt": {"prompt": "..."}, "first_message": "...", "language": "en"},
         "tts": {"voice_id": "..."}}}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plugins.elevenlabs.team_settings import ElevenLabsTeamSettings

ANSWER_TYPE = "conversation_initiation_client_data"
_MISSING = object()


def contact_field(contact: Mapping[str, Any], path: str) -> Any:
    """``contact[a][b]`` for ``"a.b"``; ``_MISSING`` when any step is absent."""
    value: Any = contact
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def coerce(value: Any, default: Any) -> Any:
    """``value`` as the type of the variable's ``default`` (what the agent expects), or
    ``_MISSING`` when it cannot be (the default is then sent)."""
    if value is None or value is _MISSING:
        return _MISSING
    if isinstance(default, bool):
        return value if isinstance(value, bool) else _MISSING
    if isinstance(value, bool):
        return str(value).lower() if isinstance(default, str) else _MISSING
    if isinstance(default, str):
        return value if isinstance(value, str) else str(value) if _scalar(value) else _MISSING
    try:
        if isinstance(default, int):
            return int(value) if not isinstance(value, float) or value.is_integer() else _MISSING
        return float(value)
    except (TypeError, ValueError):
        return _MISSING


def _scalar(value: Any) -> bool:
    return isinstance(value, int | float | str)


def dynamic_variables(
    defaults: Mapping[str, Any],
    team: ElevenLabsTeamSettings | None,
    contact: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Every declared variable: the plugin's defaults, then the team's, then what the
    contact says for the mapped ones."""
    values = dict(defaults)
    if team is None:
        return values
    values.update(team.dynamic_variables)
    for variable, path in team.contact_variables.items():
        found = coerce(contact_field(contact, path), values[variable]) if contact else _MISSING
        if found is not _MISSING:
            values[variable] = found
    return values


def config_override(team: ElevenLabsTeamSettings | None) -> dict[str, Any]:
    """Only what the team set; ``{}`` when nothing."""
    if team is None:
        return {}
    o = team.overrides
    agent: dict[str, Any] = {}
    if o.prompt is not None:
        agent["prompt"] = {"prompt": o.prompt}
    if o.first_message is not None:
        agent["first_message"] = o.first_message
    if o.language is not None:
        agent["language"] = o.language
    override: dict[str, Any] = {}
    if agent:
        override["agent"] = agent
    if o.voice_id is not None:
        override["tts"] = {"voice_id": o.voice_id}
    return override


def answer(variables: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": ANSWER_TYPE,
        "dynamic_variables": variables,
        "conversation_config_override": override,
    }

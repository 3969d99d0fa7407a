"""Which plugins have team settings: the ``register_team_settings`` hook, collected once
while the app is created."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from gateway.errors import NotFound, StartupError

HOOK = "register_team_settings"
KEY = "gateway_team_settings"


def collect(pm: Any, config: Any) -> dict[str, type[BaseModel]]:
    """``{plugin name: settings model}``.

    :raises StartupError: (one line naming the plugin) for a result that is not a pydantic
        model class, a plugin answering twice, a model that cannot start empty (every
        field needs a default: a team that never saved anything reads the defaults), or
        one without a JSON schema (the console renders its form from it).
    """
    from gateway.plugins import call_each_sync

    models: dict[str, type[BaseModel]] = {}
    for plugin, result in call_each_sync(pm, HOOK, config=config):
        if not (isinstance(result, type) and issubclass(result, BaseModel)):
            raise StartupError(
                f"plugin '{plugin}': {HOOK} must return a pydantic model class, "
                f"not {type(result).__name__}"
            )
        if plugin in models:
            raise StartupError(f"plugin '{plugin}': team settings are already registered")
        try:
            result.model_validate({})
        except PydanticValidationError as exc:
            field = ".".join(str(p) for p in exc.errors()[0]["loc"])
            raise StartupError(
                f"plugin '{plugin}': team settings field '{field}' needs a default"
            ) from None
        try:
            result.model_json_schema()
        except Exception as exc:  # pydantic raises several kinds for unschemable types
            raise StartupError(
                f"plugin '{plugin}': team settings have no JSON schema ({type(exc).__name__})"
            ) from None
        models[plugin] = result
    return models


def registered(app: Any) -> dict[str, type[BaseModel]]:
    """The settings models of the enabled plugins, by plugin name."""
    return app.extensions.get(KEY, {})


def model_of(app: Any, plugin: str) -> type[BaseModel]:
    """:raises NotFound: for a plugin that is unknown, disabled, or has no team settings."""
    model = registered(app).get(plugin)
    if model is None:
        raise NotFound(f"No team settings for plugin '{plugin}'")
    return model

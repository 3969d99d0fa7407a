"""The ``register_*`` hooks whose results are named things (providers, sources, handlers,
tasks): collected once while the app is created, each item checked for its type and for
a name no other plugin took. A wrong result stops startup with one line naming the
plugin and the hook, never a traceback from deep inside the core."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any

import pluggy

from gateway.dispatch import call_each_sync
from gateway.errors import StartupError


@dataclass(frozen=True)
class RegistrySpec:
    """What one ``register_*`` hook registers.

    :param kind: the word used in messages and in ``gateway plugins``.
    :param item_type: ``"module:Class"`` of the expected items, imported when the app is
        created (so a subsystem that is not installed is not imported for nothing).
    """

    kind: str
    item_type: str

    def resolve_type(self) -> type | None:
        """The item class, or ``None`` when its subsystem is not part of this build."""
        module_name, _, class_name = self.item_type.partition(":")
        try:
            module = import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                return None
            raise
        return getattr(module, class_name)

    @property
    def type_name(self) -> str:
        return self.item_type.replace(":", ".")


# register_* hook -> what it registers.
REGISTRIES: dict[str, RegistrySpec] = {
    "register_oauth_providers": RegistrySpec("OAuth provider", "gateway.oauth:OAuthProvider"),
    "register_webhook_sources": RegistrySpec("webhook source", "gateway.webhooks:WebhookSource"),
    "register_scheduled_tasks": RegistrySpec("scheduled task", "gateway.scheduling:ScheduledTask"),
    "register_event_handlers": RegistrySpec("event handler", "gateway.events:EventHandler"),
    "register_crms": RegistrySpec("CRM", "gateway.sync:CRM"),
}


def flatten(results: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """``[(plugin, item | [items])]`` to ``[(plugin, item)]``."""
    flat: list[tuple[str, Any]] = []
    for plugin, result in results:
        items = result if isinstance(result, list | tuple) else [result]
        flat.extend((plugin, item) for item in items if item is not None)
    return flat


def _checked(hook_name: str, spec: RegistrySpec, results: list[tuple[str, Any]]) -> None:
    """Every result is an item of the expected type or a list/tuple of them.

    :raises StartupError: naming the plugin, the hook and what it returned instead.
    """
    item_type = spec.resolve_type()
    for plugin, result in results:
        items = result if isinstance(result, list | tuple) else [result]
        for item in items:
            ok = isinstance(item, item_type) if item_type else hasattr(item, "name")
            if item is None or ok:
                continue
            got = type(result).__name__
            if isinstance(result, list | tuple):
                got = f"a {got} containing {type(item).__name__}"
            raise StartupError(
                f"plugin '{plugin}': {hook_name} must return a list of {spec.type_name}, not {got}"
            )


def collect_registry(
    pm: pluggy.PluginManager,
    hook_name: str,
    spec: RegistrySpec | str,
    key: Callable[[Any], str] = lambda item: item.name,
    **kwargs: Any,
) -> dict[str, tuple[str, Any]]:
    """Call a ``register_*`` hook, check the items' type and index them by ``key``.

    :param spec: what the hook registers (a bare string: only the word for messages, no
        type check).
    :return: ``{key: (plugin_name, item)}``.
    :raises StartupError: a wrong type, or two plugins (or one plugin twice) using the
        same key.
    """
    results = call_each_sync(pm, hook_name, **kwargs)
    if isinstance(spec, RegistrySpec):
        _checked(hook_name, spec, results)
    kind = spec.kind if isinstance(spec, RegistrySpec) else spec
    registry: dict[str, tuple[str, Any]] = {}
    for plugin, item in flatten(results):
        name = key(item)
        if name in registry:
            other = registry[name][0]
            raise StartupError(
                f"plugin '{plugin}': {kind} '{name}' is already registered by plugin '{other}'"
            )
        registry[name] = (plugin, item)
    return registry

"""The plugin manager: discovery, the allowlist, and calling hooks.

Built-in and third-party plugins are found the same way, through the ``gateway.plugins``
entry-point group. A fresh manager is built per app (no import-time globals), so every
test gets its own.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

import pluggy

import hookspecs
from gateway.config import GatewayConfig
from gateway.dispatch import (  # noqa: F401  (re-exported: plugins and other modules call these)
    adapt_implementations,
    await_me_maybe,
    call_each,
    call_each_sync,
    first_result,
    pending_calls,
)
from gateway.errors import StartupError
from gateway.registries import collect_registry, flatten  # noqa: F401  (re-exported)

log = logging.getLogger("gateway.plugins")

ENTRY_POINT_GROUP = "gateway.plugins"

# Parts of the core that are written as plugins, like pytest's default plugins. They are
# always on and are not listed in plugins.toml.
CORE_PLUGINS: tuple[str, ...] = (
    "gateway.health",
    "gateway.introspect",
    "gateway.auth.plugin",
    "gateway.oauth.plugin",
    "gateway.webhooks.plugin",
    "gateway.jobs.plugin",
    "gateway.team_settings.plugin",
    "gateway.sync.plugin",
    "gateway.calls.plugin",
    "gateway.metrics",
    "gateway.scheduling.plugin",
    "gateway.storage.plugin",
)


@dataclass
class PluginInfo:
    name: str
    module: ModuleType
    version: str | None
    builtin: bool  # part of the core (CORE_PLUGINS)


def distribution_version(ep: Any) -> str | None:
    dist = getattr(ep, "dist", None)
    return getattr(dist, "version", None)


def build_plugin_manager(
    config: GatewayConfig,
    *,
    extra_plugins: Iterable[tuple[str, object]] = (),
) -> pluggy.PluginManager:
    """Load the enabled plugins.

    :param extra_plugins: ``(name, module_or_object)`` pairs registered after the entry
        points, for tests and embedding; one named like an installed plugin replaces it.
    :raises StartupError: unknown plugin name, import failure, or a hookimpl with no spec.
    """
    pm = pluggy.PluginManager("gateway")
    pm.add_hookspecs(hookspecs)
    pm.gateway_info = {}  # type: ignore[attr-defined]
    for module_name in CORE_PLUGINS:
        module = import_module(module_name)
        _register(pm, module_name, module)
        pm.gateway_info[module_name] = PluginInfo(module_name, module, None, True)  # type: ignore[attr-defined]

    eps = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    extras = dict(extra_plugins)
    known = set(eps) | set(extras)
    config.plugin_names = known
    if config.allowlist is not None:
        unknown = sorted(config.allowlist - known)
        if unknown:
            raise StartupError(
                f"plugins.toml: unknown plugin '{unknown[0]}' "
                f"(installed: {', '.join(sorted(known)) or 'none'})"
            )
    for name in sorted(eps):
        if name in extras:  # replaced by the embedder's (or the test's) own plugin
            continue
        if not config.is_enabled(name):
            pm.set_blocked(name)
            continue
        ep = eps[name]
        try:
            module = ep.load()
        except Exception as exc:  # any import-time failure must stop startup cleanly
            raise StartupError(
                f"plugin '{name}' failed to import: {type(exc).__name__}: {exc}"
            ) from None
        _register(pm, name, module)
        pm.gateway_info[name] = PluginInfo(name, module, distribution_version(ep), False)  # type: ignore[attr-defined]
    for name, extra in extras.items():
        if not config.is_enabled(name):
            continue
        _register(pm, name, extra)
        pm.gateway_info[name] = PluginInfo(name, extra, None, False)  # type: ignore[attr-defined, arg-type]
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or "?"
        raise StartupError(f"plugin '{name}': {exc}") from None
    if os.environ.get("GATEWAY_TRACE_HOOKS"):
        # pluggy writes a call and its arguments on several indented lines: one line
        # per record keeps JSON logs and grep usable.
        pm.trace.root.setwriter(lambda msg: log.info("hook trace: %s", " ".join(msg.split())))
        pm.enable_tracing()
    return pm


def _register(pm: pluggy.PluginManager, name: str, module: object) -> None:
    try:
        pm.register(module, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise StartupError(f"plugin '{name}': {exc}") from None
    adapt_implementations(pm, module)

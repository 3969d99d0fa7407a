"""The plugin manager: discovery, the allowlist, and calling hooks.

Built-in and third-party plugins are found the same way, through the ``gateway.plugins``
entry-point group. A fresh manager is built per app (no import-time globals), so every
test gets its own.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

import pluggy

import hookspecs
from gateway.config import GatewayConfig
from gateway.errors import StartupError

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
    "gateway.metrics",
    "gateway.scheduling.plugin",
)


async def await_me_maybe(value: Any) -> Any:
    """Await ``value`` if it is awaitable; hook implementations may be sync or async."""
    if inspect.isawaitable(value):
        return await value
    return value


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
        points, for tests and embedding.
    :raises StartupError: unknown plugin name, import failure, or a hookimpl with no spec.
    """
    pm = pluggy.PluginManager("gateway")
    pm.add_hookspecs(hookspecs)
    pm.gateway_info = {}  # type: ignore[attr-defined]
    for module_name in CORE_PLUGINS:
        module = import_module(module_name)
        pm.register(module, name=module_name)
        pm.gateway_info[module_name] = PluginInfo(module_name, module, None, True)

    eps = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    extras = dict(extra_plugins)
    known = set(eps) | set(extras)
    if config.allowlist is not None:
        unknown = sorted(config.allowlist - known)
        if unknown:
            raise StartupError(
                f"plugins.toml: unknown plugin '{unknown[0]}' "
                f"(installed: {', '.join(sorted(known)) or 'none'})"
            )
    for name in sorted(eps):
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
        pm.gateway_info[name] = PluginInfo(name, module, distribution_version(ep), False)
    for name, module in extras.items():
        if not config.is_enabled(name):
            continue
        _register(pm, name, module)
        pm.gateway_info[name] = PluginInfo(name, module, None, False)  # type: ignore[arg-type]
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or "?"
        raise StartupError(f"plugin '{name}': {exc}") from None
    if os.environ.get("GATEWAY_TRACE_HOOKS"):
        pm.trace.root.setwriter(lambda msg: log.info("hook trace: %s", msg.rstrip()))
        pm.enable_tracing()
    return pm


def _register(pm: pluggy.PluginManager, name: str, module: object) -> None:
    try:
        pm.register(module, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise StartupError(f"plugin '{name}': {exc}") from None


def hook_impls(pm: pluggy.PluginManager, hook_name: str) -> list[Any]:
    """Implementations in pluggy's call order (tryfirst first, then newest first)."""
    return list(reversed(getattr(pm.hook, hook_name).get_hookimpls()))


def call_impl(impl: Any, **kwargs: Any) -> Any:
    """Call one hook implementation with the keyword arguments it names."""
    return impl.function(**{k: kwargs[k] for k in impl.argnames if k in kwargs})


async def call_each(
    pm: pluggy.PluginManager, hook_name: str, **kwargs: Any
) -> list[tuple[str, Any]]:
    """Call every implementation of a hook, awaiting each, and say who answered what.

    Implementations receive only the keyword arguments they name. Results that are
    ``None`` are dropped.
    """
    out: list[tuple[str, Any]] = []
    for impl in hook_impls(pm, hook_name):
        result = call_impl(impl, **kwargs)
        result = await await_me_maybe(result)
        if result is not None:
            out.append((impl.plugin_name, result))
    return out


async def first_result(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> Any:
    """The first non-``None`` result in call order; later implementations are not run."""
    for impl in hook_impls(pm, hook_name):
        result = call_impl(impl, **kwargs)
        result = await await_me_maybe(result)
        if result is not None:
            return result
    return None


def call_each_sync(
    pm: pluggy.PluginManager, hook_name: str, **kwargs: Any
) -> list[tuple[str, Any]]:
    """Call a registration hook while the app is being created (no event loop yet).

    ``register_*`` hooks return descriptions, so they must be plain functions; an
    implementation that returns a coroutine stops startup with a clear message.
    """
    out: list[tuple[str, Any]] = []
    for impl in hook_impls(pm, hook_name):
        result = call_impl(impl, **kwargs)
        if inspect.isawaitable(result):
            close = getattr(result, "close", None)
            if close:
                close()
            raise StartupError(
                f"plugin '{impl.plugin_name}': {hook_name} must return data, not a coroutine"
            )
        if result is not None:
            out.append((impl.plugin_name, result))
    return out


def flatten(results: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """``[(plugin, item | [items])]`` to ``[(plugin, item)]``."""
    flat: list[tuple[str, Any]] = []
    for plugin, result in results:
        items = result if isinstance(result, list | tuple) else [result]
        flat.extend((plugin, item) for item in items if item is not None)
    return flat


def collect_registry(
    pm: pluggy.PluginManager,
    hook_name: str,
    kind: str,
    key: Callable[[Any], str] = lambda item: item.name,
    **kwargs: Any,
) -> dict[str, tuple[str, Any]]:
    """Call a ``register_*`` hook and index the items by ``key``.

    :return: ``{key: (plugin_name, item)}``.
    :raises StartupError: when two plugins (or one plugin twice) use the same key.
    """
    registry: dict[str, tuple[str, Any]] = {}
    for plugin, item in flatten(call_each_sync(pm, hook_name, **kwargs)):
        name = key(item)
        if name in registry:
            other = registry[name][0]
            raise StartupError(
                f"plugin '{plugin}': {kind} '{name}' is already registered by plugin '{other}'"
            )
        registry[name] = (plugin, item)
    return registry

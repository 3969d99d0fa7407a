"""The application factory."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pluggy
from quart import Blueprint, Quart

from gateway import contract, direct_routes, inputs, responses
from gateway import db as dbmod
from gateway import get_gateway as get_gateway  # the one accessor, defined light
from gateway.clock import Clock
from gateway.config import GatewayConfig, load_config
from gateway.dispatch import await_me_maybe, call_each, call_each_sync, pending_calls
from gateway.errors import StartupError
from gateway.logs import install_redaction_everywhere, redactor
from gateway.plugins import build_plugin_manager
from gateway.registries import REGISTRIES, collect_registry
from gateway.secrets import OwnedSecrets, load_owned_secrets

log = logging.getLogger("gateway")


@dataclass
class Gateway:
    """Everything the core keeps per app, in ``app.extensions["gateway"]``."""

    config: GatewayConfig
    pm: pluggy.PluginManager
    clock: Clock
    secrets: OwnedSecrets
    db: dbmod.Database
    registries: dict[str, dict[str, tuple[str, Any]]] = field(default_factory=dict)
    http: aiohttp.ClientSession | None = None
    _items: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @asynccontextmanager
    async def http_session(self) -> AsyncIterator[aiohttp.ClientSession]:
        """The shared HTTP session while the app serves. In a process whose app never
        started serving (a command run with :func:`opened`, a plugin's own command),
        :attr:`http` is ``None``: the block then gets a session of its own, with the
        same timeouts, closed after it."""
        if self.http is not None and not self.http.closed:
            yield self.http
            return
        async with new_http_session() as http:
            yield http

    def registry(self, hook_name: str) -> dict[str, Any]:
        """``{name: item}`` of one ``register_*`` hook (built once: the registries are
        fixed when the app is created, and this is read per webhook batch and per job)."""
        items = self._items.get(hook_name)
        if items is None:
            registered = self.registries[hook_name]
            items = self._items[hook_name] = {n: item for n, (_p, item) in registered.items()}
        return items

    async def call(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a runtime hook on every plugin, awaited, with ``config`` supplied."""
        return await call_each(self.pm, hook_name, config=self.config, **kwargs)

    @property
    def warnings(self) -> list[str]:
        return self.config.warnings

    def warn(self, message: str) -> None:
        """A startup warning: logged once when the app starts serving, and listed by
        ``gateway check``."""
        self.config.warn(message)


def new_http_session() -> aiohttp.ClientSession:
    """An aiohttp session with the gateway's timeouts and User-Agent."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=30, connect=5),
        headers={"User-Agent": "renchi-gateway"},
    )


# Set by ``gateway serve`` for its worker processes: the warnings it already logged.
SHOWN_WARNINGS_ENV = "GATEWAY_SHOWN_WARNINGS"


def log_warnings(config: GatewayConfig) -> list[str]:
    """Log the startup warnings that were not logged yet in this process (and not by the
    ``gateway serve`` that started it); return them."""
    try:
        shown = set(json.loads(os.environ.get(SHOWN_WARNINGS_ENV, "[]")))
    except ValueError:
        shown = set()
    done: set[str] = getattr(config, "_warnings_logged", set())
    new = [m for m in config.warnings if m not in shown and m not in done]
    for message in new:
        logging.getLogger("gateway.config").warning("%s", message)
    config._warnings_logged = done | set(new)  # type: ignore[attr-defined]
    return new


@asynccontextmanager
async def opened(config: GatewayConfig) -> AsyncIterator[Gateway]:
    """A new app's gateway with its database open, for commands that run outside a
    server (migrate, keys rotate, jobs, the identity commands); closed on the way out."""
    gw = get_gateway(create_app(config))
    await gw.db.open()
    try:
        yield gw
    finally:
        await gw.db.close()


def create_app(
    config: GatewayConfig | None = None,
    *,
    extra_plugins: Iterable[tuple[str, object]] = (),
    clock: Clock | None = None,
    write_secrets: bool = True,
) -> Quart:
    """Build the gateway app: plugins, registries, routes. Nothing is opened until it
    serves (``before_serving``), so creating an app is cheap and side-effect free apart
    from generating the owned secrets on first use.

    :param write_secrets: ``False`` for an app that is only inspected (``gateway check``,
        ``plugins``, ``config``): missing owned secrets get throw-away values and no file
        is written.
    :raises StartupError: for any configuration or plugin problem.
    """
    config = config or load_config()
    pm = build_plugin_manager(config, extra_plugins=extra_plugins)
    secrets = load_owned_secrets(config, create=write_secrets)
    redactor.add(
        secrets.session_secret, secrets.cron_secret, secrets.setup_token, *secrets.encryption_keys
    )
    install_redaction_everywhere()
    database = dbmod.Database(
        dbmod.tortoise_config(config.gateway.resolved_database_url, dbmod.plugin_apps(pm, config))
    )
    app = Quart("gateway")
    app.config["MAX_CONTENT_LENGTH"] = config.gateway.max_body_bytes
    # Quart's default (60 s) is also how long the asyncio worker keeps a body alive after
    # the response (docs/operations.md): short for the small JSON/form bodies read this
    # way. Webhook bodies are read by the ingestion engine under their source's deadline.
    app.config["BODY_TIMEOUT"] = config.gateway.body_timeout_seconds
    app.config["JSON_SORT_KEYS"] = False
    gw = Gateway(config=config, pm=pm, clock=clock or Clock(), secrets=secrets, db=database)
    app.extensions["gateway"] = gw
    for hook_name, spec in REGISTRIES.items():
        gw.registries[hook_name] = collect_registry(pm, hook_name, spec, config=config)
    from gateway.sync.plugin import add_crm_handlers

    add_crm_handlers(gw)  # one <crm>.log_call handler per registered CRM
    responses.install(app)
    inputs.install(app)
    _register_blueprints(app, gw)
    contract.install(app, title="Renchi Gateway", version=_version())
    direct_routes.install(app)

    @app.before_serving
    async def open_everything() -> None:
        await _startup(app, gw)

    @app.after_serving
    async def close_everything() -> None:
        await _shutdown(app, gw)

    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("renchi-gateway")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0.0.0"


def _register_blueprints(app: Quart, gw: Gateway) -> None:
    seen_rules: dict[tuple[str, str], str] = {}
    for plugin, result in call_each_sync(gw.pm, "register_routes", app=app, config=gw.config):
        blueprints = result if isinstance(result, list | tuple) else [result]
        for bp in blueprints:
            if not isinstance(bp, Blueprint):
                raise StartupError(f"plugin '{plugin}': register_routes must return Blueprints")
            if bp.name in app.blueprints:
                raise StartupError(f"plugin '{plugin}': blueprint '{bp.name}' is already taken")
            before = {r.endpoint for r in app.url_map.iter_rules()}
            app.register_blueprint(bp)
            for rule in app.url_map.iter_rules():
                if rule.endpoint in before:
                    continue
                for method in rule.methods or ():
                    if method in {"HEAD", "OPTIONS"}:
                        continue
                    key = (rule.rule, method)
                    if key in seen_rules and seen_rules[key] != plugin:
                        raise StartupError(
                            f"plugin '{plugin}': route {method} {rule.rule} is already "
                            f"registered by plugin '{seen_rules[key]}'"
                        )
                    seen_rules[key] = plugin
            app.extensions.setdefault("gateway_routes", {})[bp.name] = plugin


async def _startup(app: Quart, gw: Gateway) -> None:
    await gw.db.open()
    try:
        await gw.db.ensure_schema(gw.config.gateway.auto_migrate)
    except StartupError:
        await gw.db.close()
        raise
    gw.http = new_http_session()
    await gw.call("startup", app=app)
    log_warnings(gw.config)


async def _shutdown(app: Quart, gw: Gateway) -> None:
    for plugin, call in pending_calls(gw.pm, "shutdown", app=app, config=gw.config):
        try:
            await await_me_maybe(call)
        except Exception:  # one plugin's failure must not stop the others' shutdown
            log.exception("shutdown hook of plugin '%s' failed", plugin)
    if gw.http is not None:
        await gw.http.close()
        gw.http = None
    await gw.db.close()

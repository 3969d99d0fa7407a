"""Storage: the Tortoise ORM configuration, opening and closing it, and migrations.

The core's models live in a few Tortoise apps, one per concept, each with its own
migrations package; plugins add apps through the ``register_models`` hook. Schema changes
only happen through those committed migrations (``gateway migrate``).
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

from tortoise import Tortoise, connections
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.migrations.executor import MigrationExecutor

from gateway.config import GatewayConfig
from gateway.errors import StartupError

log = logging.getLogger("gateway.db")

# Core apps: label -> models modules + migrations package.
CORE_APPS: dict[str, dict[str, Any]] = {
    "identity": {
        "models": ["gateway.identity.models"],
        "migrations": "gateway.identity.migrations",
    },
    "oauth": {"models": ["gateway.oauth.models"], "migrations": "gateway.oauth.migrations"},
    "webhooks": {
        "models": ["gateway.webhooks.models"],
        "migrations": "gateway.webhooks.migrations",
    },
    "jobs": {"models": ["gateway.jobs.models"], "migrations": "gateway.jobs.migrations"},
    "calls": {"models": ["gateway.calls.models"], "migrations": "gateway.calls.migrations"},
    "team_settings": {
        "models": ["gateway.team_settings.models"],
        "migrations": "gateway.team_settings.migrations",
    },
    "sync": {"models": ["gateway.sync.models"], "migrations": "gateway.sync.migrations"},
}


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite:")


def is_postgres(url: str) -> bool:
    return urlsplit(url).scheme in {"postgres", "postgresql", "asyncpg", "psycopg"}


def tortoise_config(url: str, plugin_apps: dict[str, dict[str, Any]] | None = None) -> dict:
    """The dict Tortoise wants, from a database URL and the plugins' apps."""
    apps: dict[str, dict[str, Any]] = {}
    for label, app in {**CORE_APPS, **(plugin_apps or {})}.items():
        apps[label] = {**app, "default_connection": "default"}
    if is_postgres(url):
        parts = urlsplit(url)
        # asyncpg is the driver we ship; accept the common spellings of the scheme.
        url = parts._replace(scheme="postgres").geturl()
    return {
        "connections": {"default": url},
        "apps": apps,
        "use_tz": True,
        "timezone": "UTC",
    }


def plugin_apps(pm: Any, config: GatewayConfig) -> dict[str, dict[str, Any]]:
    """Tortoise apps contributed by plugins through ``register_models``."""
    from gateway.plugins import call_each_sync

    apps: dict[str, dict[str, Any]] = {}
    for plugin, result in call_each_sync(pm, "register_models", config=config):
        for label, app in dict(result).items():
            if label in apps or label in CORE_APPS:
                raise StartupError(f"plugin '{plugin}': model app '{label}' is already taken")
            apps[label] = app
    return apps


class Database:
    """One open Tortoise context for this process.

    Tortoise keeps its connections in a process-wide context; several app instances in
    one process (tests, the worker beside the API) share it, so it is reference-counted.
    """

    _refs = 0
    _config: dict | None = None

    def __init__(self, config: dict) -> None:
        self.config = config
        self.url = config["connections"]["default"]

    async def open(self) -> None:
        cls = type(self)
        if cls._refs and cls._config is not None:
            if cls._config["connections"] != self.config["connections"]:
                raise StartupError("another database is already open in this process")
            cls._refs += 1
            return
        if is_sqlite(self.url):
            path = urlsplit(self.url).path
            if path and path != ":memory:":
                from pathlib import Path

                Path(path).parent.mkdir(parents=True, exist_ok=True)
        await Tortoise.init(config=self.config, _enable_global_fallback=True)
        cls._refs, cls._config = 1, self.config

    async def close(self) -> None:
        cls = type(self)
        if cls._refs == 0:
            return
        cls._refs -= 1
        if cls._refs == 0:
            await Tortoise.close_connections()
            cls._config = None
            # Tortoise caches compiled queries per connection *name*, not per dialect, so a
            # process that reopens "default" on another back end (tests, `gateway check`
            # after a switch) would reuse SQLite placeholders on PostgreSQL.
            EXECUTOR_CACHE.clear()

    async def migrate(self) -> list[str]:
        """Apply pending migrations; return the names applied."""
        applied: list[str] = []

        def progress(event: str, app_label: str, name: str) -> None:
            if event == "apply_done":
                applied.append(f"{app_label}.{name}")
                log.info("applied migration %s.%s", app_label, name)

        # Tortoise's migrate() re-initialises the global context; run the executor on our
        # open connection instead.
        executor = MigrationExecutor(connections.get("default"), self.config["apps"])
        await executor.migrate(None, progress=progress)
        return applied

    async def ensure_schema(self, auto_migrate: bool | None) -> None:
        """Apply pending migrations when allowed (default: only on SQLite, the embedded
        mode), else refuse to run on an old schema.

        :raises StartupError: migrations are pending and may not be applied here.
        """
        if auto_migrate is None:
            auto_migrate = is_sqlite(self.url)
        if auto_migrate:
            await self.migrate()
            return
        pending = await self.pending_migrations()
        if pending:
            raise StartupError(
                f"database: {len(pending)} migration(s) pending ({pending[0]}, ...); "
                "run `gateway migrate`"
            )

    async def pending_migrations(self) -> list[str]:
        executor = MigrationExecutor(connections.get("default"), self.config["apps"])
        plan = await executor.plan(None)
        return [f"{step.migration.app_label}.{step.migration.name}" for step in plan]

    async def ping(self) -> float:
        """Round-trip one query; return the latency in milliseconds."""
        start = time.perf_counter()
        await connections.get("default").execute_query("SELECT 1")
        return (time.perf_counter() - start) * 1000

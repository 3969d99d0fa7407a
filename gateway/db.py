"""Storage: the Tortoise ORM configuration, opening and closing it, and migrations.

The core's models live in a few Tortoise apps, one per concept, each with its own
migrations package; plugins add apps through the ``register_models`` hook. Schema changes
only happen through those committed migrations (``gateway migrate``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any
from urllib.parse import urlsplit

from tortoise import Tortoise, connections
from tortoise.backends.base.client import TransactionContextPooled
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.backends.sqlite.client import SqliteTransactionContext
from tortoise.connection import get_connections
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
    "scheduling": {
        "models": ["gateway.scheduling.models"],
        "migrations": "gateway.scheduling.migrations",
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


class _WithoutTraceback(logging.Filter):
    """asyncpg's pool logs a full traceback each time it fails to reconnect in the
    background (with its own backoff, 1 s to 60 s): during an outage that is the same
    "connection refused" again and again. One line each, with the error's type."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()} ({type(record.exc_info[1]).__name__})"
            record.args, record.exc_info, record.exc_text = None, None, None
        return True


_POOL_FILTER = _WithoutTraceback()


def _give_back_on_failed_begin() -> None:
    """Tortoise (1.1.9) takes what a transaction needs, a pooled connection
    (PostgreSQL) or the one connection's lock (SQLite), then sends BEGIN before anything
    would give it back: when BEGIN fails (the database has just gone away, the
    connection is dead) or the task is cancelled meanwhile (a client hanging up), the
    connection is lost to the pool, or the lock is never released. After a few such
    failures every later query or transaction waits forever, even once the database is
    back (tests/test_database_down.py). Both are given back here, then the error goes
    on."""
    pooled = TransactionContextPooled.__aenter__
    if getattr(pooled, "gateway_fixed", False):
        return

    async def pooled_enter(self: TransactionContextPooled) -> Any:
        try:
            return await pooled(self)
        except BaseException:
            client = self.client
            pool = client._parent._pool
            if client._connection is not None and pool is not None:
                with contextlib.suppress(Exception):
                    await pool.release(client._connection)
                client._connection = None
            token = getattr(self, "token", None)
            if token is not None:
                get_connections().reset(token)
            raise

    async def sqlite_enter(self: SqliteTransactionContext) -> Any:
        # The library's steps, with the lock released if any step after it fails.
        await self._trxlock.acquire()
        try:
            await self.ensure_connection()
            self.token = get_connections().set(self.connection_name, self.connection)
            await self.connection.begin()
        except BaseException:
            token = getattr(self, "token", None)
            if token is not None:
                get_connections().reset(token)
            self._trxlock.release()
            raise
        return self.connection

    pooled_enter.gateway_fixed = True  # type: ignore[attr-defined]
    TransactionContextPooled.__aenter__ = pooled_enter  # type: ignore[method-assign]
    SqliteTransactionContext.__aenter__ = sqlite_enter  # type: ignore[method-assign]


_give_back_on_failed_begin()


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


def owner_only_database(path: str) -> None:
    """Create the SQLite file owner-only (0600) before SQLite does (it would use the
    umask, typically 0644: every local user could read tokens' hashes, sessions'
    versions, call data), and tighten one an older version created. SQLite gives its
    ``-wal`` and ``-shm`` files the database file's mode, so they follow."""
    import os
    from pathlib import Path

    db = Path(path)
    if not db.parent.exists():
        db.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(db, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            with contextlib.suppress(OSError):  # not ours to change: leave it
                os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):
        side = Path(f"{db}{suffix}")
        with contextlib.suppress(OSError):
            if side.exists() and side.stat().st_mode & 0o077:
                side.chmod(0o600)


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
                owner_only_database(path)
        else:
            logging.getLogger("asyncpg.pool").addFilter(_POOL_FILTER)  # idempotent
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

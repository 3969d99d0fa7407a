"""Shared fixtures.

- ``make_app(**gateway_settings, plugins={...}, extra_plugins=[...])`` builds a gateway
  app on a fresh SQLite file (default) or on this run's PostgreSQL database
  (``db="postgres"``), started with ``app.test_app()`` so the serving hooks run.
- ``db_kind`` is parametrised over both back ends: a test that takes ``any_app`` (or
  ``db_kind``) runs twice.
- ``clock`` is a :class:`FrozenClock` that every app built here uses.

PostgreSQL: each pytest process creates its own database on 127.0.0.1:5432 and drops it
at the end, so concurrent runs never meet. Tables are emptied after each test.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from quart.testing.app import TestApp

from gateway.app import create_app
from gateway.clock import FrozenClock
from gateway.config import load_config

PG_HOST = os.environ.get("GATEWAY_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("GATEWAY_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("GATEWAY_TEST_PG_USER", "postgres")
PG_ADMIN_DB = os.environ.get("GATEWAY_TEST_PG_DB", "test")
REDIS_URL = os.environ.get("GATEWAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, database=PG_ADMIN_DB, timeout=3
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _run_sync(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, even inside a running loop."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def pg_database() -> Any:
    """``postgres://`` URL of a database created for this pytest process."""
    name = f"gwtest_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        _run_sync(_pg_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        if _in_ci():
            pytest.fail(f"PostgreSQL is required in CI and did not answer: {exc!r}")
        pytest.skip(f"PostgreSQL on {PG_HOST}:{PG_PORT} did not answer ({type(exc).__name__})")
    yield f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    _run_sync(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def truncate_postgres(url: str) -> None:
    import asyncpg

    from gateway.jobs.wakeups import asyncpg_dsn

    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'tortoise_migrations'"
        )
        if tables:
            names = ", ".join(f'"{t["tablename"]}"' for t in tables)
            await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def moto_server() -> Any:
    """A local S3 (moto's server mode) for this pytest process; see tests/support/s3.py."""
    from tests.support.s3 import start_moto

    yield from start_moto()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """``database_url("sqlite" | "postgres")``."""

    def url(kind: str) -> str:
        if kind == "postgres":
            return request.getfixturevalue("pg_database")
        return f"sqlite://{tmp_path / 'gateway.db'}"

    return url


MakeApp = Callable[..., Awaitable[Any]]


class SqliteSchemas:
    """Migrated empty SQLite files, one per set of model apps, for this pytest process.

    Tortoise's migration executor re-renders every model state per migration: a fresh
    file takes seconds to migrate on a loaded 2-core machine, and almost every test
    builds one. The first app with a given set of apps migrates for real; its schema
    (its rows deleted, ``tortoise_migrations`` kept) is copied for the next ones, whose
    startup then finds nothing pending. Tests of migrations themselves pass their own
    ``database_url`` and never meet this.
    """

    def __init__(self) -> None:
        import atexit
        import shutil
        import tempfile

        self.dir = Path(tempfile.mkdtemp(prefix="gateway-schemas-"))
        atexit.register(shutil.rmtree, self.dir, ignore_errors=True)
        self.files: dict[str, Path] = {}

    @staticmethod
    def _key(app: Any) -> str:
        import hashlib
        import json

        apps = app.extensions["gateway"].db.config["apps"]
        return hashlib.sha256(json.dumps(apps, sort_keys=True, default=str).encode()).hexdigest()

    @staticmethod
    def _path(url: str) -> Path:
        return Path(url.removeprefix("sqlite://"))

    def restore(self, app: Any, url: str) -> None:
        template = self.files.get(self._key(app))
        target = self._path(url)
        if template is not None and not target.exists():
            import shutil

            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(template, target)

    def keep(self, app: Any, url: str) -> None:
        import sqlite3

        key = self._key(app)
        if key in self.files:
            return
        template = self.dir / f"{key}.db"
        source = sqlite3.connect(self._path(url))
        copy = sqlite3.connect(template)
        try:
            source.backup(copy)
            tables = [
                name
                for (name,) in copy.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                if name != "tortoise_migrations" and not name.startswith("sqlite_stat")
            ]
            for name in tables:
                copy.execute(f'DELETE FROM "{name}"')  # noqa: S608 - names from the schema
            copy.commit()
            copy.execute("PRAGMA journal_mode = DELETE")
        finally:
            copy.close()
            source.close()
        self.files[key] = template


_SQLITE_SCHEMAS = SqliteSchemas()


@pytest.fixture
async def make_app(
    tmp_path: Path, clock: FrozenClock, database_url: Callable[[str], str]
) -> AsyncIterator[MakeApp]:
    """Build and start apps; all are stopped (and PostgreSQL emptied) after the test."""
    started: list[Any] = []
    pg_urls: set[str] = set()
    frozen = clock  # the test's FrozenClock, unless a test passes its own clock

    async def factory(
        *,
        db: str = "sqlite",
        plugins: dict[str, dict[str, Any]] | None = None,
        extra_plugins: list[tuple[str, object]] | None = None,
        start: bool = True,
        clock: Any = None,
        **gateway: Any,
    ) -> Any:
        explicit_url = gateway.pop("database_url", None)
        url = explicit_url or database_url(db)
        if db == "postgres" and not explicit_url:
            pg_urls.add(url)
        settings = {
            "data_dir": str(tmp_path / "data"),
            "database_url": url,
            "auto_migrate": True,
            "run_worker": False,
            "run_scheduler": False,
            "public_url": "https://gateway.test",
            **gateway,
        }
        data: dict[str, Any] = {"gateway": settings}
        if plugins is not None:
            data["plugins"] = plugins
        config = load_config(data=data, environ={})
        app = create_app(config, extra_plugins=extra_plugins or [], clock=clock or frozen)
        fresh_sqlite = start and db == "sqlite" and not explicit_url and settings["auto_migrate"]
        if fresh_sqlite:
            _SQLITE_SCHEMAS.restore(app, url)
        if start:
            # Quart's default of 6 s is short for a fresh SQLite file's migrations on a
            # loaded 2-core machine; a startup that still fails is shut down, so its
            # open database cannot leak into every later test.
            test_app = TestApp(app, startup_timeout=60, shutdown_timeout=60)
            started.append(test_app)
            await test_app.startup()
            if fresh_sqlite:
                _SQLITE_SCHEMAS.keep(app, url)
        return app

    yield factory
    for test_app in reversed(started):
        try:
            await test_app.shutdown()
        except Exception:  # a startup that failed half-way: close what it opened
            await test_app.app.extensions["gateway"].db.close()
    for url in pg_urls:
        await truncate_postgres(url)


@pytest.fixture
async def app(make_app: MakeApp) -> Any:
    """The gateway with every installed plugin, on SQLite."""
    return await make_app()


@pytest.fixture
async def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
async def any_app(make_app: MakeApp, db_kind: str) -> Any:
    """The gateway on each back end in turn (SQLite, then PostgreSQL)."""
    return await make_app(db=db_kind)


@pytest.fixture(autouse=True)
def _hook_tests_call_their_hook(request: pytest.FixtureRequest, monkeypatch: Any) -> Any:
    """A test named ``test_hook_<name>...`` fails unless an app it builds calls hook
    ``<name>`` (tests/test_hookspecs.py requires one such test per hook)."""
    test_name = getattr(request.node, "originalname", request.node.name)
    if not test_name.startswith("test_hook_"):
        yield
        return
    import gateway.app
    import hookspecs

    names = [n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), "gateway_spec")]
    suffix = test_name.removeprefix("test_hook_")
    matching = [n for n in names if suffix == n or suffix.startswith(n + "_")]
    if not matching:
        yield
        return
    hook = max(matching, key=len)
    called: set[str] = set()
    build = gateway.app.build_plugin_manager

    def build_and_watch(*args: Any, **kwargs: Any) -> Any:
        pm = build(*args, **kwargs)
        pm.add_hookcall_monitoring(lambda name, _impls, _kw: called.add(name), lambda *a: None)
        return pm

    monkeypatch.setattr(gateway.app, "build_plugin_manager", build_and_watch)
    yield
    assert hook in called, f"{test_name} is named for the {hook} hook but never calls it"

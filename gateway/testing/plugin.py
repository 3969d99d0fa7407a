"""The pytest plugin of :mod:`gateway.testing`, loaded through the ``pytest11`` entry
point wherever the gateway is installed (a plugin's own tests need no conftest).

Fixtures:

- ``make_app(**gateway_settings, plugins={...}, extra_plugins=[...], db="sqlite")``:
  build and start a gateway app (its serving hooks run) on a fresh SQLite file or on this
  process's PostgreSQL database (``db="postgres"``); stopped, and PostgreSQL emptied,
  after the test. ``app`` / ``client``: one on SQLite with every installed plugin.
- ``db_kind`` (``"sqlite"``, ``"postgres"``) and ``any_app``: a test that takes them runs
  on both back ends. ``pg_database``: the PostgreSQL URL (skips without a server, fails
  in CI).
- ``clock``: the :class:`~gateway.clock.FrozenClock` every app built here uses.
- ``fake_oauth``: a started :class:`~gateway.testing.oauth_server.FakeOAuthServer`.
- ``signed_webhooks``: :class:`~gateway.testing.webhooks.SignedWebhooks` for ``app``.
- ``run_jobs``: ``await run_jobs(app)`` drains the job queue (:func:`gateway.testing.jobs.drain`).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def _async_fixture() -> Any:
    # pytest loads this module wherever the gateway is installed: without pytest-asyncio
    # it must still load (its async fixtures then cannot run; the kit needs it).
    try:
        from pytest_asyncio import fixture
    except ImportError:  # pragma: no cover
        return pytest.fixture
    return fixture


async_fixture: Any = _async_fixture()

MakeApp = Callable[..., Awaitable[Any]]


@pytest.fixture(autouse=True)
def _gateway_log_handler_removed() -> Iterator[None]:
    """A command run in-process (``gateway.cli.main``) installs the gateway's stderr
    handler on the root logger, bound to the stream pytest captured for that test; left
    there, a later test's database thread logs into a closed file ("--- Logging error
    ---"). Each test ends with the root logger as it found it."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if getattr(handler, "_gateway", False) and handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """``postgres://`` URL of a database created for this pytest process."""
    from gateway.testing.database import postgres_database

    yield from postgres_database()


@pytest.fixture
def clock() -> Any:
    from gateway.clock import FrozenClock

    return FrozenClock()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """``database_url("sqlite" | "postgres")``."""

    def url(kind: str) -> str:
        if kind == "postgres":
            return str(request.getfixturevalue("pg_database"))
        return f"sqlite://{tmp_path / 'gateway.db'}"

    return url


@functools.cache
def _patient_test_app() -> Any:
    # Built on first use: this module loads in every pytest run where the gateway is
    # installed, and imports nothing of Quart until a fixture needs it.
    from quart.testing.app import TestApp

    class PatientTestApp(TestApp):
        """Quart's test app with 60 s, not 6 s, to start and to stop."""

        def __init__(self, app: Any, startup_timeout: int = 60, shutdown_timeout: int = 60):
            super().__init__(app, startup_timeout, shutdown_timeout)

    return PatientTestApp


@async_fixture
async def make_app(
    tmp_path: Path, clock: Any, database_url: Callable[[str], str]
) -> AsyncIterator[MakeApp]:
    """Build and start apps; all are stopped (and PostgreSQL emptied) after the test."""
    import gateway.app
    from gateway.config import load_config
    from gateway.testing.database import truncate_postgres
    from gateway.testing.schemas import SCHEMAS

    PatientTestApp = _patient_test_app()
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
        **settings: Any,
    ) -> Any:
        explicit_url = settings.pop("database_url", None)
        url = explicit_url or database_url(db)
        if db == "postgres" and not explicit_url:
            pg_urls.add(url)
        values = {
            "data_dir": str(tmp_path / "data"),
            "database_url": url,
            "auto_migrate": True,
            "run_worker": False,
            "run_scheduler": False,
            "public_url": "https://gateway.test",
            **settings,
        }
        data: dict[str, Any] = {"gateway": values}
        if plugins is not None:
            data["plugins"] = plugins
        config = load_config(data=data, environ={})
        # Looked up at call time, so a test may wrap gateway.app.build_plugin_manager.
        app = gateway.app.create_app(
            config, extra_plugins=extra_plugins or [], clock=clock or frozen
        )
        # Quart's default of 6 s is short for a fresh SQLite file's migrations on a
        # loaded machine, also for an app the test starts itself (``app.test_app()``,
        # after ``start=False``); a startup that still fails is shut down, so its open
        # database cannot leak into every later test.
        app.test_app_class = PatientTestApp
        fresh_sqlite = start and db == "sqlite" and not explicit_url and values["auto_migrate"]
        if fresh_sqlite:
            SCHEMAS.restore(app, url)
        if start:
            test_app = PatientTestApp(app)
            started.append(test_app)
            await test_app.startup()
            if fresh_sqlite:
                SCHEMAS.keep(app, url)
        return app

    yield factory
    for test_app in reversed(started):
        try:
            await test_app.shutdown()
        except Exception:  # a startup that failed half-way: close what it opened
            await gateway.app.get_gateway(test_app.app).db.close()
    for url in pg_urls:
        await truncate_postgres(url)


@async_fixture
async def app(make_app: MakeApp) -> Any:
    """The gateway with every installed plugin, on SQLite."""
    return await make_app()


@async_fixture
async def client(app: Any) -> Any:
    return app.test_client()


@async_fixture
async def any_app(make_app: MakeApp, db_kind: str) -> Any:
    """The gateway on each back end in turn (SQLite, then PostgreSQL)."""
    return await make_app(db=db_kind)


@async_fixture
async def fake_oauth() -> AsyncIterator[Any]:
    """A loopback OAuth 2.0 provider (RFC 6749 + PKCE + revocation), started."""
    from gateway.testing.oauth_server import FakeOAuthServer

    server = FakeOAuthServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def signed_webhooks(app: Any) -> Any:
    from gateway.testing.webhooks import SignedWebhooks

    return SignedWebhooks(app)


@pytest.fixture
def run_jobs() -> Callable[..., Awaitable[int]]:
    from gateway.testing.jobs import drain

    return drain

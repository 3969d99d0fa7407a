"""Databases for tests: a PostgreSQL database per pytest process, emptied between tests.

The server is ``GATEWAY_TEST_PG_HOST``:``GATEWAY_TEST_PG_PORT`` (127.0.0.1:5432), user
``GATEWAY_TEST_PG_USER`` (postgres, trust auth), administered through the database
``GATEWAY_TEST_PG_DB`` (test). Without a server the PostgreSQL tests skip with a reason,
except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from collections.abc import Iterator
from typing import Any

PG_HOST = os.environ.get("GATEWAY_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("GATEWAY_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("GATEWAY_TEST_PG_USER", "postgres")
PG_ADMIN_DB = os.environ.get("GATEWAY_TEST_PG_DB", "test")
# One Redis database per pytest-xdist worker (gw0 -> 1, gw1 -> 2, ...; 0 without xdist),
# so rate-limit keys of tests running at once never meet.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_REDIS_DB = int(_WORKER[2:]) + 1 if _WORKER[2:].isdigit() else 0
REDIS_URL = os.environ.get("GATEWAY_TEST_REDIS_URL", f"redis://127.0.0.1:6379/{_REDIS_DB}")


def in_ci() -> bool:
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


def run_sync(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, even inside a running loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def postgres_database() -> Iterator[str]:
    """Create a database for this process, yield its ``postgres://`` URL, drop it."""
    import pytest

    name = f"gwtest_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        run_sync(_pg_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        if in_ci():
            pytest.fail(f"PostgreSQL is required in CI and did not answer: {exc!r}")
        pytest.skip(f"PostgreSQL on {PG_HOST}:{PG_PORT} did not answer ({type(exc).__name__})")
    yield f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    run_sync(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def truncate_postgres(url: str) -> None:
    """Empty every table but the migrations' own, identities restarted."""
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

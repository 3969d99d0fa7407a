"""Two gateway processes on one PostgreSQL database refresh a stale token at the same
moment: the row lock lets exactly one of them call the provider."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from pathlib import Path

import pytest

from gateway.testing import FakeOAuthServer, provider_plugin, run_connect, seed_admin

NAME = "acme_crm"
ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.postgres


async def spawn(args: dict) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.oauth_refresh_proc",
        json.dumps(args),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def read_line(proc: asyncio.subprocess.Process) -> str:
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    if not line:
        err = (await proc.stderr.read()).decode()[-2000:]
        raise AssertionError(f"worker exited early: {err}")
    return line.decode().strip()


async def test_two_processes_refresh_once(make_app, pg_database, tmp_path, clock):
    # The provider answers slowly, so both processes are inside the refresh together
    # unless the row lock serialises them.
    async with FakeOAuthServer(refresh_delay=0.5) as server:
        app = await make_app(db="postgres", extra_plugins=[provider_plugin(server, NAME)])
        admin = await seed_admin()
        assert (await run_connect(app.test_client(), admin, NAME)).status_code == 200
        stale = clock.now().replace(microsecond=0)
        from datetime import timedelta

        args = {
            "database_url": pg_database,
            "data_dir": str(tmp_path / "data"),  # same generated encryption keys
            "server_url": server.url,
            "provider": NAME,
            "team_id": admin.team.id,
            "now": (stale + timedelta(hours=1)).isoformat(),
        }
        procs = [await spawn(args), await spawn(args)]
        try:
            for p in procs:
                assert await read_line(p) == "ready"
            for p in procs:
                p.stdin.write(b"go\n")
                await p.stdin.drain()
            results = [await read_line(p) for p in procs]
        finally:
            for p in procs:
                if p.returncode is None:
                    p.stdin.close()
                await asyncio.wait_for(p.wait(), 30)
        assert server.refresh_calls == 1
        issued = list(server.access)[-1]  # the refreshed token
        digest = hashlib.sha256(issued.encode()).hexdigest()
        assert results == [f"token {digest}", f"token {digest}"]

"""``gateway keys rotate``: every connection keeps working under the new key and no row
is left under an old one."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from tortoise import connections

from gateway.oauth import get_access_token
from gateway.secrets import read_generated
from gateway.testing import FakeOAuthServer, provider_plugin, run_connect, seed_admin

NAME = "acme_crm"
ROOT = Path(__file__).resolve().parent.parent


async def gateway_cli(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    config = tmp_path / "plugins.toml"
    config.write_text(
        "[gateway]\n"
        f'data_dir = "{tmp_path / "data"}"\n'
        f'database_url = "sqlite://{tmp_path / "gateway.db"}"\n'
        "[plugins.admin]\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "--config",
        str(config),
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


async def ciphertexts() -> list[str]:
    _n, rows = await connections.get("default").execute_query(
        "SELECT access_token_enc, refresh_token_enc FROM oauth_connections"
    )
    return [v for r in rows for v in (r["access_token_enc"], r["refresh_token_enc"]) if v]


async def test_rotate_reencrypts_everything_and_connections_keep_working(make_app, tmp_path, clock):
    async with FakeOAuthServer() as server:
        plugins = [provider_plugin(server, NAME)]
        first = await make_app(extra_plugins=plugins, start=False)
        running = first.test_app()
        await running.startup()
        teams = [await seed_admin(f"a{i}@example.com") for i in range(3)]
        for admin in teams:
            assert (await run_connect(first.test_client(), admin, NAME)).status_code == 200
        before = await ciphertexts()
        await running.shutdown()
        [old_key] = read_generated(first.extensions["gateway"].config)["encryption_keys"]

        code, out, err = await gateway_cli(tmp_path, "keys", "rotate", "--prune")
        assert code == 0, err
        assert json.loads(out)["rotated"] == {
            "connections": 3,
            "states": 0,
            "team_settings": 0,
            "skipped": 0,
        }
        assert old_key not in out + err  # keys are never printed

        second = await make_app(extra_plugins=plugins)
        keys = second.extensions["gateway"].secrets.encryption_keys
        assert len(keys) == 1 and keys[0] != old_key
        after = await ciphertexts()
        assert len(after) == 6 and not set(after) & set(before)
        for value in after:  # the old key opens nothing any more
            try:
                Fernet(old_key.encode()).decrypt(value.encode())
            except InvalidToken:
                continue
            raise AssertionError("a token is still under the old key")
        async with second.app_context():
            for admin in teams:
                await get_access_token(admin.team, NAME)  # decrypts the access token
            clock.advance(3600)
            for admin in teams:  # refresh: decrypts the refresh token, server accepts it
                await get_access_token(admin.team, NAME)
        assert server.refresh_calls == 3


async def test_new_key_with_configured_keys_is_refused(tmp_path):
    key = Fernet.generate_key().decode()
    config = tmp_path / "plugins.toml"
    config.write_text(
        f'[gateway]\ndata_dir = "{tmp_path}"\nencryption_keys = ["{key}"]\n[plugins.admin]\n'
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "--config",
        str(config),
        "keys",
        "rotate",
        # One form for every key: a generated key may start with "-" (1 in 64), which
        # argparse would take for an option after a separate "--new-key".
        f"--new-key={Fernet.generate_key().decode()}",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await proc.communicate()
    assert proc.returncode == 2 and "put the new key first" in err.decode()

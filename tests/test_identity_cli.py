"""``gateway teams|users|tokens`` as an operator runs them, on SQLite and PostgreSQL;
the results are then used over HTTP against an app on the same database."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.app import create_app
from gateway.cli import main
from gateway.config import load_config
from tests.conftest import _run_sync, truncate_postgres


@pytest.fixture
def cli(tmp_path: Path, db_kind: str, database_url: Any, monkeypatch: Any, capsys: Any) -> Any:
    url = database_url(db_kind)
    config = tmp_path / "plugins.toml"
    config.write_text(
        f'[gateway]\ndata_dir = "{tmp_path / "data"}"\ndatabase_url = "{url}"\n'
        'auto_migrate = true\npublic_url = "https://gateway.test"\n'
    )

    def run(*argv: str, stdin: str = "") -> tuple[int, Any, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(["--config", str(config), *argv])
        out = capsys.readouterr()
        return code, (json.loads(out.out) if out.out.strip() else None), out.err

    run.config = config  # type: ignore[attr-defined]
    yield run
    if db_kind == "postgres":
        _run_sync(truncate_postgres(url))


# Argument handling and messages do not depend on the back end; the storage paths
# (create, list, revoke) run on both.
SQLITE_ONLY = pytest.mark.parametrize("db_kind", ["sqlite"])


def http(config_path: Path, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    async def go() -> tuple[int, Any]:
        app = create_app(load_config(config_path))
        test_app = app.test_app()
        await test_app.startup()
        try:
            resp = await app.test_client().open(path, method=method, **kwargs)
            return resp.status_code, await resp.get_json()
        finally:
            await test_app.shutdown()

    return asyncio.run(go())


def test_bootstrap_team_user_token(cli: Any) -> None:
    code, out, _ = cli(
        "users",
        "create",
        "--email",
        "Ann@Example.com",
        "--password-stdin",
        stdin="correct horse battery staple\n",
    )
    assert code == 0 and out["user"]["email"] == "ann@example.com"
    assert out["user"]["has_password"] is True
    code, out, _ = cli(
        "teams",
        "create",
        "--name",
        "Acme",
        "--owner",
        "ann@example.com",
        "--time-zone",
        "America/New_York",
    )
    assert code == 0
    team_id = out["team"]["id"]
    code, out, _ = cli(
        "users", "create", "--email", "bob@example.com", "--team", str(team_id), "--role", "admin"
    )
    assert code == 0 and out["user"]["has_password"] is False
    code, out, _ = cli("tokens", "create", "--email", "ann@example.com", "--label", "ci")
    assert code == 0 and out["token"].startswith("rgw_")
    token = out["token"]
    status, body = http(
        cli.config,
        "GET",
        f"/api/teams/{team_id}/members",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert status == 200
    assert {(m["user"]["email"], m["role"]) for m in body["members"]} == {
        ("ann@example.com", "owner"),
        ("bob@example.com", "admin"),
    }
    status, _ = http(
        cli.config,
        "POST",
        "/api/auth/login",
        json={"email": "ann@example.com", "password": "correct horse battery staple"},
    )
    assert status == 200


def test_tokens_list_and_revoke(cli: Any) -> None:
    cli("users", "create", "--email", "ann@example.com")
    _, created, _ = cli("tokens", "create", "--email", "ann@example.com", "--label", "deploy")
    code, listed, _ = cli("tokens", "list")
    assert code == 0
    [row] = listed["tokens"]
    assert row["label"] == "deploy" and row["prefix"] == created["prefix"]
    assert row["revoked_at"] is None
    assert created["token"] not in json.dumps(listed)  # only the prefix is ever shown
    headers = {"Authorization": f"Bearer {created['token']}"}
    assert http(cli.config, "GET", "/api/auth/me", headers=headers)[0] == 200
    code, _, _ = cli("tokens", "revoke", str(created["id"]))
    assert code == 0
    assert http(cli.config, "GET", "/api/auth/me", headers=headers)[0] == 401
    _, listed, _ = cli("tokens", "list", "--email", "ann@example.com")
    assert listed["tokens"][0]["revoked_at"] is not None
    code, _, err = cli("tokens", "revoke", "999")
    assert code == 1 and "no token 999" in err
    code, _, err = cli("tokens", "revoke", str(2**40))  # past the column: one line, no crash
    assert code == 1 and "Traceback" not in err and "positive integer" in err


@SQLITE_ONLY
def test_expiring_token(cli: Any) -> None:
    cli("users", "create", "--email", "ann@example.com")
    _, created, _ = cli("tokens", "create", "--email", "ann@example.com", "--expires-in-days", "0")
    headers = {"Authorization": f"Bearer {created['token']}"}
    assert http(cli.config, "GET", "/api/auth/me", headers=headers)[0] == 401


@SQLITE_ONLY
def test_errors_are_one_line(cli: Any) -> None:
    cli("users", "create", "--email", "ann@example.com")
    code, out, err = cli("users", "create", "--email", "ann@example.com")
    assert code == 1 and out is None and "already exists" in err
    code, _, err = cli(
        "users", "create", "--email", "x@example.com", "--password-stdin", stdin="short\n"
    )
    assert code == 1 and "at least" in err and "short" not in err.replace("at least", "")
    code, _, err = cli("teams", "create", "--name", "A", "--owner", "nobody@example.com")
    assert code == 1 and "no user" in err
    code, _, err = cli("teams", "create", "--name", "A", "--time-zone", "Nowhere/Land")
    assert code == 1 and "time_zone" in err


@SQLITE_ONLY
def test_set_password_enables_login(cli: Any) -> None:
    cli("users", "create", "--email", "ann@example.com")
    code, _, _ = cli(
        "users",
        "set-password",
        "--email",
        "ann@example.com",
        "--password-stdin",
        stdin="a long enough password\n",
    )
    assert code == 0
    status, _ = http(
        cli.config,
        "POST",
        "/api/auth/login",
        json={"email": "ann@example.com", "password": "a long enough password"},
    )
    assert status == 200

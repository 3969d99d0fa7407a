"""``gateway check --role``: a configuration that only works on one machine is refused
with one line per problem; a fit one passes, reaching the test's PostgreSQL, Redis and
local S3 (or nothing, with ``--offline``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from gateway.secrets import new_fernet_key
from tests.support.s3 import free_port

SECRETS = {
    "GATEWAY_SESSION_SECRET": "session-secret-for-role-tests-0123",
    "GATEWAY_ENCRYPTION_KEY": new_fernet_key(),
    "GATEWAY_CRON_SECRET": "cron-secret-for-role-tests-0123",
    "GATEWAY_SETUP_TOKEN": "setup-token-for-role-tests-0123",
    "S3_SECRET_ACCESS_KEY": "test-secret-key-0123456789",
}


def fit_config(tmp_path: Path, database_url: str, redis_url: str, s3: dict) -> Path:
    """A config fit for replicas: every secret and address by reference, as
    deploy/plugins.toml does it."""
    config = tmp_path / "plugins.toml"
    config.write_text(
        f"""
[gateway]
data_dir = "{tmp_path / "data"}"
database_url = "{database_url}"
public_url = "https://gateway.example.com"
rate_limit_storage = "{redis_url}"
recording_storage = "s3"
session_secret = {{ env = "GATEWAY_SESSION_SECRET" }}
encryption_keys = [{{ env = "GATEWAY_ENCRYPTION_KEY" }}]
cron_secret = {{ env = "GATEWAY_CRON_SECRET" }}
setup_token = {{ env = "GATEWAY_SETUP_TOKEN" }}

[gateway.s3]
bucket = "{s3["bucket"]}"
endpoint_url = "{s3["endpoint_url"]}"
path_style = true
access_key_id = "{s3["access_key_id"]}"
secret_access_key = {{ env = "S3_SECRET_ACCESS_KEY" }}

[plugins.admin]
"""
    )
    return config


def problems(err: str, role: str) -> list[str]:
    prefix = f"gateway: role {role}: "
    assert "Traceback" not in err
    return [line.removeprefix(prefix).split(":")[0] for line in err.splitlines()]


def test_one_machine_defaults_are_refused_line_by_line(tmp_path, capsys, monkeypatch):
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "plugins.toml"
    config.write_text(
        f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n'
        'cron_secret = { env = "GATEWAY_CRON_SECRET" }\n[plugins.admin]\n'
    )
    assert main(["--config", str(config), "check", "--role", "api", "--offline"]) == 2
    out, err = capsys.readouterr()
    assert problems(err, "api") == [
        "database_url",
        "session_secret",
        "encryption_keys",
        "cron_secret",
        "setup_token",
        "rate_limit_storage",
        "public_url",
        "recording_storage",
    ]
    assert "(environment variable GATEWAY_CRON_SECRET is not set)" in err
    assert 'encryption_keys = [{ env = "GATEWAY_ENCRYPTION_KEY" }]' in err
    assert "database: not reached (--offline)" in out
    assert not (tmp_path / "data").exists()  # check writes nothing

    # A worker has no rate limits and no public URL to get wrong.
    assert main(["--config", str(config), "check", "--role", "worker", "--offline"]) == 2
    assert "rate_limit_storage" not in capsys.readouterr().err


def test_a_fit_configuration_passes_offline(tmp_path, capsys, monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    s3 = {"bucket": "recs", "endpoint_url": "http://minio:9000", "access_key_id": "k"}
    config = fit_config(tmp_path, "postgres://gw@db:5432/gw", "redis://redis:6379/0", s3)
    assert main(["--config", str(config), "check", "--role", "all", "--offline"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "recordings: s3 bucket 'recs' (not reached: --offline)" in out
    assert out.splitlines()[-1] == "role all: fit for several replicas"


@pytest.mark.postgres
def test_check_names_the_service_it_cannot_reach(
    pg_database, moto_server, tmp_path, capsys, monkeypatch
):
    """(A fit configuration reaching everything is tests/test_deploy.py's last test.)"""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    missing = moto_server.settings(bucket="no-such-bucket")
    config = str(fit_config(tmp_path, pg_database, nowhere, missing))
    assert main(["--config", config, "migrate"]) == 0
    capsys.readouterr()
    assert main(["--config", config, "check", "--role", "api"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gateway: recordings: cannot reach s3 bucket 'no-such-bucket'")

    config = str(fit_config(tmp_path, pg_database, nowhere, moto_server.settings()))
    assert main(["--config", config, "check", "--role", "api"]) == 2
    err = capsys.readouterr().err
    assert problems(err, "api") == ["rate_limit_storage"]
    assert "cannot reach redis" in err

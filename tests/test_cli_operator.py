"""The ``gateway`` command as a new operator meets it: each warning once, JSON lines when
asked for, a busy port in one line, ``check`` as a deploy gate, and inspection commands
that write nothing. Real subprocesses, like tests/test_cli.py."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import free_port, gateway, wait_for
from tests.test_plugins import make_dist

pytestmark = pytest.mark.slow

TWILIO_WARNING = "plugin 'twilio_voice': no auth_token configured"


def write_config(
    tmp_path: Path, extra: str = "", plugins: str = "[plugins.twilio_voice]\n"
) -> Path:
    """A config with one plugin that warns at startup (Twilio without its token)."""
    config = tmp_path / "plugins.toml"
    config.write_text(f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n{extra}{plugins}')
    return config


def json_lines(text: str) -> list[dict]:
    """Every line parsed as JSON (fails the test on the first one that is not)."""
    return [json.loads(line) for line in text.splitlines()]


def test_inspecting_writes_nothing_warns_once_and_shows_effective_values(tmp_path):
    config = write_config(tmp_path)
    # --config after the subcommand works as well as before it.
    check = gateway("check", "--config", str(config))
    plugins = gateway("plugins", "--config", str(config))
    shown = gateway("--config", str(config), "config")
    for result in (check, plugins, shown):
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()  # no secrets.json, no database file

    assert check.stdout.count(TWILIO_WARNING) == 1 and TWILIO_WARNING not in check.stderr
    assert "secret cron_secret: would be generated" in check.stdout
    # Commands that do not serve do not repeat the warnings at all.
    assert TWILIO_WARNING not in plugins.stdout + plugins.stderr

    before = json.loads(shown.stdout)
    assert before["gateway"]["auto_migrate"] is True  # resolved: SQLite migrates itself
    assert before["gateway"]["cron_secret"] == "(would be generated)"
    assert before["owned_secrets"]["cron_secret"] == "would be generated"
    assert before["plugins"]["twilio_voice"]["auth_token"] is None

    assert gateway("--config", str(config), "migrate").returncode == 0  # generates them
    secrets = json.loads((tmp_path / "data" / "secrets.json").read_text())
    after = gateway("--config", str(config), "config")
    view = json.loads(after.stdout)
    assert view["gateway"]["cron_secret"] == "**********"
    assert view["gateway"]["encryption_keys"] == ["**********"]
    assert view["owned_secrets"]["cron_secret"] == "generated"
    assert secrets["cron_secret"] not in after.stdout


def test_check_fails_when_serve_would_refuse(tmp_path):
    config = write_config(tmp_path, "auto_migrate = false\n")
    result = gateway("--config", str(config), "check")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"gateway: database: {tmp_path / 'data' / 'gateway.db'} does not exist and "
        "auto_migrate is off: serve would refuse; run `gateway migrate`"
    ]
    assert not (tmp_path / "data").exists()


@pytest.fixture
def empty_postgres():
    """A database of its own, with no migration applied (the session's shared one is
    migrated by other tests)."""
    from gateway.testing.database import postgres_database

    yield from postgres_database()


@pytest.mark.postgres
def test_check_gates_a_deploy_on_pending_postgres_migrations(tmp_path, empty_postgres):
    config = write_config(tmp_path, f'database_url = "{empty_postgres}"\n', plugins="[plugins]\n")
    result = gateway("--config", str(config), "check")
    assert result.returncode == 2
    assert "migration(s) pending" in result.stdout
    line = result.stderr.strip()
    assert line.startswith("gateway: database: ") and "serve would refuse" in line
    assert "\n" not in line

    # (After `gateway migrate` it passes: test_cli.py::test_migrate_then_check.)


def test_busy_port_is_one_line_and_exit_2(tmp_path):
    config = write_config(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = gateway("--config", str(config), "serve", "--port", str(port))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"gateway: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
    assert result.stdout == ""
    assert not (tmp_path / "data").exists()  # stopped before doing anything else


def test_serve_in_json_warns_once_and_every_line_is_json(tmp_path):
    config = write_config(tmp_path, 'log_format = "json"\n')
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), "--no-worker",
         "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert wait_for(f"http://127.0.0.1:{port}/healthz", proc) == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    records = json_lines(proc.stdout.read()) + json_lines(proc.stderr.read())
    messages = [r["message"] for r in records]
    assert sum(TWILIO_WARNING in m for m in messages) == 1
    assert sum(m.startswith("Running on http://") for m in messages) == 1
    assert not any("Traceback" in m for m in messages)

    result = gateway("--config", str(config), "check")
    records = json_lines(result.stdout) + json_lines(result.stderr)
    warnings = [r for r in records if TWILIO_WARNING in r["message"]]
    assert len(warnings) == 1 and warnings[0]["level"] == "WARNING"


def test_version_and_serve_help(tmp_path):
    result = gateway("--version")
    assert result.returncode == 0 and result.stdout.startswith("gateway 0.")
    text = gateway("serve", "--help").stdout
    for option in ("--host HOST", "(default: 127.0.0.1)", "--port PORT", "(default: 8000)"):
        assert option in text
    assert "--workers" in text and "--no-worker" in text and "--config" in text


def test_wrong_registration_type_is_one_line_from_the_cli(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    source = """
        from gateway import hookimpl

        @hookimpl
        def register_oauth_providers(config):
            return {"name": "acme"}
    """
    make_dist(site, "acme", {"acme_wrong": source}, {"acme": "acme_wrong"})
    config = write_config(tmp_path, plugins="[plugins.acme]\n")
    result = gateway("--config", str(config), "check", env={"PYTHONPATH": str(site)})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "gateway: plugin 'acme': register_oauth_providers must return a list of "
        "gateway.oauth.OAuthProvider, not dict"
    ]


def test_json_documents_are_one_line_in_json_mode(tmp_path, capsys):
    from gateway.cli import main

    config = write_config(tmp_path, 'log_format = "json"\n')
    assert main(["config", "--config", str(config)]) == 0
    assert main(["plugins", "--config", str(config)]) == 0
    view, plugins = json_lines(capsys.readouterr().out)
    assert view["gateway"]["log_format"] == "json"
    assert any(row["name"] == "twilio_voice" and row["enabled"] for row in plugins)

"""The ``gateway`` command as an operator runs it: real subprocesses, real ports, and a
third-party plugin installed with pip as its own distribution."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

SAMPLE_PLUGIN = Path(__file__).parent / "support" / "sample_plugin"
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gateway(*args: str, env: dict[str, str] | None = None, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
        **kwargs,
    )


@pytest.fixture(scope="session")
def sample_site(tmp_path_factory) -> Path:
    """``pip install`` the sample plugin into its own directory, as another team would."""
    target = tmp_path_factory.mktemp("sample-site")
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
            "--no-build-isolation", "--target", str(target), str(SAMPLE_PLUGIN),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    return target


def write_config(tmp_path: Path, plugins: str = "") -> Path:
    config = tmp_path / "plugins.toml"
    config.write_text(f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n{plugins}')
    return config


def test_third_party_plugin_shows_up_and_serves(sample_site, tmp_path):
    config = write_config(tmp_path, '[plugins.sample_crm]\ngreeting = "hi there"\n')
    env = {"PYTHONPATH": str(sample_site)}
    result = gateway("--config", str(config), "plugins", "--json", env=env)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    sample = rows["sample_crm"]
    assert sample["version"] == "1.2.3" and sample["enabled"]
    assert sample["hooks"] == ["register_routes"]
    assert sample["routes"] == ["GET /api/sample-crm/ping"]
    # Built-in plugins not listed in this plugins.toml are installed but disabled.
    assert rows["hubspot"]["enabled"] is False

    text = gateway("--config", str(config), "plugins", env=env)
    assert "sample_crm 1.2.3 [enabled]" in text.stdout


async def test_third_party_plugin_route_in_app(sample_site, make_app, monkeypatch):
    monkeypatch.syspath_prepend(str(sample_site))
    app = await make_app(plugins={"sample_crm": {"greeting": "hello team"}})
    response = await app.test_client().get("/api/sample-crm/ping")
    assert (await response.get_json()) == {"greeting": "hello team"}


def wait_for(url: str, proc: subprocess.Popen, boot_timeout: float = 60.0) -> int:
    """Poll until the server answers. The wait is for a process to boot (slow on a busy
    2-core machine), not for time to pass, so the bound is generous."""
    deadline = time.monotonic() + boot_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            time.sleep(0.05)
    raise AssertionError("server did not start")


def test_serve_answers_health_and_stops_on_sigterm(tmp_path):
    config = write_config(tmp_path)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), "serve",
         "--port", str(port), "--no-worker"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_for(f"{base}/healthz", proc) == 200
        with urllib.request.urlopen(f"{base}/readyz", timeout=5) as response:
            assert json.loads(response.read())["status"] == "ready"
            assert response.headers["X-Request-Id"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = proc.stderr.read() if proc.stderr else ""
    assert "Traceback" not in stderr
    # The generated secrets file is announced, its contents never are.
    secrets = json.loads((tmp_path / "data" / "secrets.json").read_text())
    assert "secrets.json" in stderr
    assert secrets["cron_secret"] not in stderr and secrets["setup_token"] not in stderr


def test_migrate_then_check(tmp_path):
    config = write_config(tmp_path)
    result = gateway("--config", str(config), "migrate")
    assert result.returncode == 0, result.stderr
    assert "applied" in result.stdout
    result = gateway("--config", str(config), "check")
    assert result.returncode == 0, result.stderr
    assert "0 migration(s) pending" in result.stdout

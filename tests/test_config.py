"""Configuration: the file, environment overrides, secret references, redaction, and
the secrets the gateway generates for itself."""

from __future__ import annotations

import json
import stat

import pytest
from pydantic import SecretStr

from gateway.config import PluginSettings, load_config
from gateway.errors import StartupError
from gateway.secrets import load_owned_secrets


class DemoSettings(PluginSettings):
    api_key: SecretStr
    region: str = "us"
    retries: int = 3


def test_no_file_enables_every_plugin_and_defaults_to_sqlite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(environ={})
    assert config.path is None
    assert config.allowlist is None and config.is_enabled("anything")
    assert config.gateway.resolved_database_url.startswith(f"sqlite://{tmp_path}/data/gateway.db")


def test_plugin_tables_are_an_allowlist(tmp_path):
    path = tmp_path / "plugins.toml"
    path.write_text("[plugins.alpha]\n[plugins.beta]\nenabled = false\n")
    config = load_config(path, environ={})
    assert config.is_enabled("alpha")
    assert not config.is_enabled("beta")
    assert not config.is_enabled("gamma")


def test_environment_overrides_the_gateway_table(tmp_path):
    path = tmp_path / "plugins.toml"
    path.write_text('[gateway]\npublic_url = "https://file.example"\nlog_format = "text"\n')
    config = load_config(
        path,
        environ={
            "GATEWAY_PUBLIC_URL": "https://env.example",
            "GATEWAY_LOG_FORMAT": "json",
            "GATEWAY_CORS_ORIGINS": "https://a.example, https://b.example",
        },
    )
    assert config.gateway.public_url == "https://env.example"
    assert config.gateway.log_format == "json"
    assert config.gateway.cors_origins == ["https://a.example", "https://b.example"]
    # data_dir is resolved next to the config file, not the working directory.
    assert config.gateway.data_dir == (tmp_path / "data").resolve()


def test_secrets_by_env_and_file_reference(tmp_path, monkeypatch):
    (tmp_path / "key.txt").write_text("from-a-file-123456\n")
    path = tmp_path / "plugins.toml"
    path.write_text(
        '[plugins.demo]\napi_key = { file = "key.txt" }\n'
        '[plugins.other]\napi_key = { env = "DEMO_KEY" }\n'
    )
    monkeypatch.setenv("DEMO_KEY", "from-the-env-654321")
    config = load_config(path)
    assert config.plugin_config("demo", DemoSettings).api_key.get_secret_value() == (
        "from-a-file-123456"
    )
    other = config.plugin_config("other", DemoSettings)
    assert other.api_key.get_secret_value() == "from-the-env-654321"
    assert "from-the-env" not in repr(other)
    shown = json.dumps(config.redacted())
    assert "from-a-file" not in shown and "from-the-env" not in shown


def test_missing_or_invalid_setting_names_plugin_and_key(tmp_path):
    path = tmp_path / "plugins.toml"
    path.write_text('[plugins.demo]\napi_key = { env = "NOT_SET_ANYWHERE" }\n')
    with pytest.raises(StartupError) as info:
        load_config(path, environ={}).plugin_config("demo", DemoSettings)
    message = str(info.value)
    assert "plugin 'demo'" in message and "'api_key'" in message
    assert "NOT_SET_ANYWHERE" in message and "\n" not in message

    path.write_text('[plugins.demo]\napi_key = "x"\nretries = "many"\n')
    with pytest.raises(StartupError, match=r"plugin 'demo': key 'retries'"):
        load_config(path, environ={}).plugin_config("demo", DemoSettings)

    path.write_text('[plugins.demo]\napi_key = "x"\nretrys = 3\n')
    with pytest.raises(StartupError, match=r"plugin 'demo': key 'retrys'"):
        load_config(path, environ={}).plugin_config("demo", DemoSettings)


def test_bad_gateway_setting_and_bad_toml_are_one_line_errors(tmp_path):
    path = tmp_path / "plugins.toml"
    path.write_text('[gateway]\nlog_format = "xml"\n')
    with pytest.raises(StartupError, match=r"^gateway: key 'log_format'"):
        load_config(path, environ={})
    path.write_text("[gateway\n")
    with pytest.raises(StartupError, match="not valid TOML"):
        load_config(path, environ={})
    with pytest.raises(StartupError, match="does not exist"):
        load_config(tmp_path / "missing.toml", environ={})


def test_owned_secrets_are_generated_once_owner_only(tmp_path):
    config = load_config(data={"gateway": {"data_dir": str(tmp_path)}}, environ={})
    first = load_owned_secrets(config)
    path = tmp_path / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_owned_secrets(config)
    assert first == again  # stable across restarts
    assert len(first.encryption_keys) == 1 and len(first.cron_secret) >= 32
    assert first.cron_secret not in repr(first)


def test_configured_secrets_win_over_generated(tmp_path, monkeypatch):
    monkeypatch.setenv("CRON", "configured-cron-secret-value")
    config = load_config(
        data={"gateway": {"data_dir": str(tmp_path), "cron_secret": {"env": "CRON"}}}
    )
    assert load_owned_secrets(config).cron_secret == "configured-cron-secret-value"
    assert "configured-cron" not in json.dumps(config.redacted())


def test_plugins_report_startup_warnings_through_config(tmp_path, capsys):
    """A plugin missing a third party's credentials warns at startup (and `gateway
    check` repeats it) instead of failing or silently accepting input."""
    from gateway.cli import main
    from tests.test_plugins import make_dist

    site = tmp_path / "site"
    site.mkdir()
    source = """
        from gateway import hookimpl

        @hookimpl
        def register_routes(app, config):
            config.warn("plugin 'needs_token': auth_token is not set; its routes answer 401")
    """
    make_dist(site, "needs-token", {"needs_token_mod": source}, {"needs_token": "needs_token_mod"})
    import sys

    sys.path.insert(0, str(site))
    try:
        path = tmp_path / "plugins.toml"
        path.write_text(f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n[plugins.needs_token]\n')
        assert main(["--config", str(path), "check"]) == 0
    finally:
        sys.path.remove(str(site))
    out = capsys.readouterr().out
    assert "warning: plugin 'needs_token': auth_token is not set" in out


def test_the_shipped_plugins_toml_starts_with_no_environment(tmp_path):
    """The README's `gateway serve` runs with the repository's plugins.toml and no
    secrets set: it must start (degraded, with warnings), not stop."""
    from pathlib import Path

    from gateway.app import create_app

    shipped = Path(__file__).parent.parent / "plugins.toml"
    copy = tmp_path / "plugins.toml"
    copy.write_text(shipped.read_text())
    config = load_config(copy, environ={})
    app = create_app(config)
    assert app.extensions["gateway"].warnings  # providers without credentials say so
    assert not config.is_enabled("jwt_auth")
    assert config.is_enabled("twilio_voice") and config.is_enabled("admin")


def test_http_base_url_setting_type(tmp_path):
    from gateway.config import HttpBaseURL

    class Settings(PluginSettings):
        api_base_url: HttpBaseURL = "https://api.example.com"

    path = tmp_path / "plugins.toml"
    path.write_text('[plugins.demo]\napi_base_url = "http://127.0.0.1:8080/v1/"\n')
    settings = load_config(path, environ={}).plugin_config("demo", Settings)
    assert settings.api_base_url == "http://127.0.0.1:8080/v1"
    for bad in ("ftp://example.com", "https://", "https://example.com/?x=1", "example.com"):
        path.write_text(f'[plugins.demo]\napi_base_url = "{bad}"\n')
        with pytest.raises(StartupError, match="key 'api_base_url'"):
            load_config(path, environ={}).plugin_config("demo", Settings)


def test_every_gateway_secret_is_redacted_and_kept_out_of_logs(tmp_path):
    from gateway.logs import redactor

    token = "scrape-token-from-config-987654"
    config = load_config(data={"gateway": {"data_dir": str(tmp_path), "metrics_token": token}})
    assert config.gateway.metrics_token.get_secret_value() == token
    assert token not in json.dumps(config.redacted())
    assert token not in redactor.scrub(f"Authorization: Bearer {token}")

"""The [plugins] allowlist and table names, as an operator meets them: `gateway plugins`
says why an installed plugin is not loaded, and a plugin that reads its table under a
name other than its entry point's stops startup with one line."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.cli import main
from tests.test_plugins import make_dist, one_line, run_check, site  # noqa: F401


def plugins_json(tmp_path: Path, plugins_toml: str, capsys) -> dict[str, dict]:
    config = tmp_path / "plugins.toml"
    config.write_text(f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n' + plugins_toml)
    assert main(["--config", str(config), "plugins", "--json"]) == 0
    return {row["name"]: row for row in json.loads(capsys.readouterr().out)}


def test_a_plugins_table_blocks_every_plugin_it_does_not_list(tmp_path, capsys):
    rows = plugins_json(tmp_path, "[plugins.cron]\n", capsys)
    assert rows["cron"]["enabled"] is True and "blocked" not in rows["cron"]
    hubspot = rows["hubspot"]  # a built-in, blocked all the same
    assert hubspot["enabled"] is False
    assert hubspot["blocked"] == (
        "not listed in plugins.toml: a [plugins] table enables only the plugins it lists, "
        "built-ins included; add [plugins.hubspot] to enable it"
    )


def test_enabled_false_is_the_reason_shown(tmp_path, capsys):
    rows = plugins_json(tmp_path, "[plugins.cron]\n[plugins.hubspot]\nenabled = false\n", capsys)
    assert rows["hubspot"]["blocked"] == "enabled = false in [plugins.hubspot]"


def test_the_text_listing_says_why(tmp_path, capsys):
    config = tmp_path / "plugins.toml"
    config.write_text(f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n[plugins.cron]\n')
    assert main(["--config", str(config), "plugins"]) == 0
    out = capsys.readouterr().out
    assert "salesforce" in out
    assert "  blocked: not listed in plugins.toml" in out


def test_without_a_plugins_table_nothing_is_blocked(tmp_path, capsys):
    rows = plugins_json(tmp_path, "", capsys)
    assert all(row["enabled"] for row in rows.values()), rows


def test_a_plugin_reading_a_table_under_another_name_stops_startup(tmp_path, site, capsys):  # noqa: F811
    make_dist(
        site,
        "misnamed-plugin",
        {
            "misnamed_mod": """
                from gateway import hookimpl
                from gateway.config import PluginSettings

                class Settings(PluginSettings):
                    api_key: str = ""

                @hookimpl
                def register_oauth_providers(config):
                    config.plugin_config("misnamed_crm", Settings)  # installed as "misnamed"
                    return []
            """
        },
        {"misnamed": "misnamed_mod"},
    )
    rc, err = run_check(tmp_path, '[plugins.misnamed]\napi_key = "k"\n', capsys)
    assert rc == 2
    line = one_line(err)
    assert "reads [plugins.misnamed_crm], but no installed plugin is named 'misnamed_crm'" in line
    assert "a plugin's table is named after its entry point" in line


async def test_an_extra_plugin_replaces_an_installed_one_of_the_same_name(make_app, site):  # noqa: F811
    make_dist(site, "dup-plugin", {"dup_mod": "X = 1\n"}, {"dup": "dup_mod"})

    class Replacement:
        pass

    replacement = Replacement()
    app = await make_app(extra_plugins=[("dup", replacement)])
    from gateway import get_gateway

    assert get_gateway(app).pm.gateway_info["dup"].module is replacement

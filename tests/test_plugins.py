"""Plugin discovery and every way a plugin can stop startup: each prints one line and
exits non-zero. Plugins here are real installed distributions (a dist-info with an
entry point on sys.path), which is all ``importlib.metadata`` needs to find them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gateway.cli import main

ENTRY_GROUP = "gateway.plugins"


def make_dist(root: Path, dist: str, modules: dict[str, str], entry_points: dict[str, str]) -> None:
    """Write an installed distribution (module files + dist-info) into ``root``."""
    for name, source in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = [f"[{ENTRY_GROUP}]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


def run_check(tmp_path: Path, plugins_toml: str, capsys) -> tuple[int, str]:
    config = tmp_path / "plugins.toml"
    config.write_text(f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n' + plugins_toml)
    rc = main(["--config", str(config), "check"])
    return rc, capsys.readouterr().err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("gateway: ")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_unknown_plugin_name(tmp_path, capsys):
    rc, err = run_check(tmp_path, "[plugins.no_such_plugin]\n", capsys)
    assert rc == 2
    assert "unknown plugin 'no_such_plugin'" in one_line(err)


def test_plugin_that_fails_to_import(tmp_path, site, capsys):
    make_dist(
        site,
        "broken-plugin",
        {"broken_mod": "import not_a_real_module\n"},
        {"broken": "broken_mod"},
    )
    rc, err = run_check(tmp_path, "[plugins.broken]\n", capsys)
    assert rc == 2
    line = one_line(err)
    assert "plugin 'broken' failed to import" in line and "not_a_real_module" in line


def test_hookimpl_with_no_spec(tmp_path, site, capsys):
    source = """
        from gateway import hookimpl

        @hookimpl
        def register_route(app, config):  # misspelt: the spec is register_routes
            return None
    """
    make_dist(site, "typo-plugin", {"typo_mod": source}, {"typo": "typo_mod"})
    rc, err = run_check(tmp_path, "[plugins.typo]\n", capsys)
    assert rc == 2
    line = one_line(err)
    assert "plugin 'typo'" in line and "register_route" in line


ROUTE_PLUGIN = """
    from quart import Blueprint
    from gateway import hookimpl

    @hookimpl
    def register_routes(app, config):
        bp = Blueprint("{bp}", __name__)

        @bp.get("/api/dup")
        async def dup():
            return "x"

        return bp
"""


def test_two_plugins_with_the_same_route(tmp_path, site, capsys):
    make_dist(site, "one", {"one_mod": ROUTE_PLUGIN.format(bp="one")}, {"one": "one_mod"})
    make_dist(site, "two", {"two_mod": ROUTE_PLUGIN.format(bp="two")}, {"two": "two_mod"})
    rc, err = run_check(tmp_path, "[plugins.one]\n[plugins.two]\n", capsys)
    assert rc == 2
    line = one_line(err)
    assert "route GET /api/dup is already registered by plugin" in line


@pytest.mark.parametrize(
    ("hook", "kind"),
    [
        ("register_oauth_providers", "OAuth provider"),
        ("register_webhook_sources", "webhook source"),
        ("register_scheduled_tasks", "scheduled task"),
        ("register_event_handlers", "event handler"),
    ],
)
def test_two_plugins_registering_the_same_name(tmp_path, site, capsys, hook, kind):
    # Only the name matters for the duplicate check, which runs before anything else
    # looks at the registered descriptions.
    source = f"""
        from types import SimpleNamespace
        from gateway import hookimpl

        @hookimpl
        def {hook}(config):
            return [SimpleNamespace(name="same")]
    """
    # Module names differ per case: imported modules stay cached in sys.modules.
    first, second = f"first_{hook}", f"second_{hook}"
    make_dist(site, "first", {first: source}, {"first": first})
    make_dist(site, "second", {second: source}, {"second": second})
    rc, err = run_check(tmp_path, "[plugins.first]\n[plugins.second]\n", capsys)
    assert rc == 2
    assert f"{kind} 'same' is already registered by plugin" in one_line(err)


def test_bad_plugin_setting(tmp_path, site, capsys):
    sample = Path(__file__).parent / "support" / "sample_plugin" / "gateway_sample_plugin.py"
    make_dist(site, "sample", {"sample_mod": sample.read_text()}, {"sample_crm": "sample_mod"})
    rc, err = run_check(tmp_path, "[plugins.sample_crm]\ngreting = 'typo'\n", capsys)
    assert rc == 2
    assert "plugin 'sample_crm': key 'greting'" in one_line(err)


def test_async_registration_hook_is_refused(tmp_path, site, capsys):
    source = """
        from gateway import hookimpl

        @hookimpl
        async def register_routes(app, config):
            return None
    """
    make_dist(site, "asyncreg", {"asyncreg_mod": source}, {"asyncreg": "asyncreg_mod"})
    rc, err = run_check(tmp_path, "[plugins.asyncreg]\n", capsys)
    assert rc == 2
    assert "register_routes must return data" in one_line(err)


def test_disabled_plugin_is_not_even_imported(tmp_path, site, capsys):
    make_dist(
        site, "broken-plugin", {"broken_mod": "raise SystemExit(9)\n"}, {"broken": "broken_mod"}
    )
    rc, err = run_check(tmp_path, "[plugins.broken]\nenabled = false\n", capsys)
    assert rc == 0, err


def test_unreachable_database_fails_check(tmp_path, capsys):
    config = tmp_path / "plugins.toml"
    config.write_text(
        "[gateway]\n"
        f'data_dir = "{tmp_path / "data"}"\n'
        'database_url = "postgres://postgres:hunter2secret@127.0.0.1:1/nowhere"\n'
        "[plugins]\n"
    )
    rc = main(["--config", str(config), "check"])
    err = capsys.readouterr().err
    assert rc == 2
    line = one_line(err)
    assert line.startswith("gateway: database: cannot reach")
    assert "hunter2secret" not in err

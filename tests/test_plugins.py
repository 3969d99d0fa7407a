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


# One valid item per register_* hook, as a plugin module would build it.
ITEMS = {
    "register_oauth_providers": (
        "OAuth provider",
        "from gateway.oauth import OAuthProvider\n"
        "def item(name):\n"
        "    return OAuthProvider(name=name, display_name=name, client_id=None,\n"
        "        client_secret=None, authorize_url='https://x.test/a', token_url='https://x.test/t')\n",
    ),
    "register_webhook_sources": (
        "webhook source",
        "from gateway.webhooks import WebhookSource\n"
        "def item(name):\n"
        "    return WebhookSource(name=name, path=name, verify=bool, parse=list)\n",
    ),
    "register_scheduled_tasks": (
        "scheduled task",
        "try:\n"
        "    from gateway.scheduling import ScheduledTask\n"
        "except ImportError:  # the scheduling subsystem is not in this build\n"
        "    from types import SimpleNamespace as ScheduledTask\n"
        "async def run(ctx):\n"
        "    return None\n"
        "def item(name):\n"
        "    return ScheduledTask(name=name, schedule='@daily', handler=run)\n",
    ),
    "register_event_handlers": (
        "event handler",
        "from gateway.events import EventHandler\n"
        "async def handle(ctx):\n"
        "    return None\n"
        "def item(name):\n"
        "    return EventHandler(name=name, event_types=('x.*',), handler=handle)\n",
    ),
}


def registering_plugin(hook: str, returns: str) -> str:
    return ITEMS[hook][1] + textwrap.dedent(
        f"""
        from gateway import hookimpl

        @hookimpl
        def {hook}(config):
            return {returns}
        """
    )


@pytest.mark.parametrize("hook", sorted(ITEMS))
def test_two_plugins_registering_the_same_name(tmp_path, site, capsys, hook):
    source = registering_plugin(hook, "[item('same')]")
    # Module names differ per case: imported modules stay cached in sys.modules.
    first, second = f"first_{hook}", f"second_{hook}"
    make_dist(site, "first", {first: source}, {"first": first})
    make_dist(site, "second", {second: source}, {"second": second})
    rc, err = run_check(tmp_path, "[plugins.first]\n[plugins.second]\n", capsys)
    assert rc == 2
    kind = ITEMS[hook][0]
    # pluggy calls the newest registration first, so "first" is the one that collides.
    assert f"plugin 'first': {kind} 'same' is already registered by plugin 'second'" in (
        one_line(err)
    )


WRONG_RESULTS = [
    # (hook, what the plugin returns, what the message says it got)
    ("register_oauth_providers", "{'name': 'acme'}", "not dict"),
    ("register_oauth_providers", "[{'name': 'acme'}]", "not a list containing dict"),
    ("register_event_handlers", "WRONG", "not a list containing WebhookSource"),
    ("register_webhook_sources", "'acme'", "not str"),
]


@pytest.mark.parametrize(("hook", "returns", "got"), WRONG_RESULTS)
def test_a_registration_of_the_wrong_type_stops_startup_in_one_line(
    tmp_path, site, capsys, hook, returns, got
):
    source = registering_plugin(hook, returns)
    # A WebhookSource where an EventHandler is expected: the classic mix-up.
    source = source.replace(
        "return WRONG",
        "from gateway.webhooks import WebhookSource\n"
        "    return [WebhookSource(name='s', path='s', verify=bool, parse=list)]",
    )
    module = f"wrong_{abs(hash((hook, returns)))}"
    make_dist(site, "wrong", {module: source}, {"wrong": module})
    rc, err = run_check(tmp_path, "[plugins.wrong]\n", capsys)
    assert rc == 2
    line = one_line(err)
    assert line.startswith(f"gateway: plugin 'wrong': {hook} must return a list of gateway.")
    assert line.endswith(got)


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

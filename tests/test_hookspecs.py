"""Meta-tests that keep the plugin surface honest (after Datasette's
test_plugin_hooks_have_tests): every hook is documented and exercised by a test, and
every built-in plugin has its own test module."""

from __future__ import annotations

import inspect
import re
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import hookspecs

TESTS = Path(__file__).parent
HOOKS = sorted(
    name
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(fn, "gateway_spec")
)


def test_there_are_hooks():
    assert {"register_routes", "authenticate", "startup", "shutdown"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_useful_docstring(hook):
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert len(doc) > 150, f"{hook} needs a real docstring"
    assert "Called" in doc or "called" in doc, f"{hook}: say when it is called"
    assert ":return:" in doc, f"{hook}: say what to return"
    for param in inspect.signature(getattr(hookspecs, hook)).parameters:
        assert f":param {param}:" in doc, f"{hook}: document {param}"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_implemented_in_a_test(hook):
    """Some test (or a support module used by tests) implements or calls the hook."""
    pattern = re.compile(rf"\bdef {hook}\(|\b{hook}\b")
    users = [
        path
        for path in TESTS.rglob("*.py")
        if path.name != Path(__file__).name and pattern.search(path.read_text())
    ]
    assert users, f"no test mentions the {hook} hook"


def test_every_built_in_plugin_has_a_test_module():
    root = Path(__file__).parent.parent
    for ep in entry_points(group="gateway.plugins"):
        if not ep.value.startswith("plugins."):
            continue  # a third-party plugin installed in this environment
        name = ep.value.split(".", 1)[1]
        assert (root / "plugins").joinpath(name).exists() or (
            root / "plugins" / f"{name}.py"
        ).exists()
        assert list(TESTS.glob(f"plugins/test_{name}*.py")), f"plugins/{name} has no tests"

"""Meta-tests that keep the plugin surface honest (after Datasette's
test_plugin_hooks_have_tests): every hook is documented and has a test named for it that
calls it, and every built-in plugin has its own test module."""

from __future__ import annotations

import ast
import inspect
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


def named_tests(hook: str) -> list[str]:
    """``test_hook_<hook>`` or ``test_hook_<hook>_<what>`` functions in the test suite.
    tests/conftest.py makes each of them fail unless it calls the hook."""
    found = []
    for path in TESTS.rglob("test_*.py"):
        if path.name == Path(__file__).name:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                suffix = node.name.removeprefix("test_hook_")
                if suffix != node.name and (suffix == hook or suffix.startswith(hook + "_")):
                    found.append(f"{path.relative_to(TESTS)}::{node.name}")
    return found


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test_named_for_it(hook):
    """A new hook fails this until a test named ``test_hook_<hook>...`` calls it."""
    assert named_tests(hook), f"no test is named test_hook_{hook}... (one that calls it)"


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

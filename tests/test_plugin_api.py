"""The plugin contract (gateway/plugin_api.py): plugins import only the public API, never
each other, and the core never imports a plugin. When this fails, each line says which
import to change and to what."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from gateway.plugin_api import (
    PLUGIN_API,
    _imports,
    check_plugin,
    check_project,
    public_names,
    report,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "acme_crm" / "acme_crm"


def _extra() -> dict[str, Path]:
    return {"acme_crm": EXAMPLE} if EXAMPLE.is_dir() else {}


def test_plugins_and_core_keep_the_contract() -> None:
    violations = check_project(ROOT, extra_plugins=_extra())
    assert not violations, report(violations)


def test_every_public_module_imports_on_its_own() -> None:
    # A module that is public must load first, before any other part of the core (a
    # plugin may import it first), and name what it exports.
    for module in PLUGIN_API:
        assert public_names(module), module


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A copy of the project's layout with one real plugin and planted violations."""
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "__init__.py").write_text("")
    shutil.copytree(ROOT / "plugins" / "hubspot", tmp_path / "plugins" / "hubspot")
    (tmp_path / "plugins" / "hubspot" / "planted.py").write_text(
        "from gateway.calls.models import Call\n"
        "from gateway.sync.engine import request_for\n"
        "from gateway.db import Database\n"
        "from plugins.other import helper\n"
        "from gateway import get_gateway, hookimpl\n"
        "from gateway.oauth import get_access_token\n"
        "def f(app):\n"
        "    return app.extensions['gateway'].clock\n"
        "from gateway.db import is_postgres\n"
        "from gateway.app import get_gateway as gw\n"
    )
    (tmp_path / "plugins" / "other.py").write_text("def helper():\n    return 1\n")
    (tmp_path / "gateway").mkdir()
    (tmp_path / "gateway" / "core.py").write_text("from plugins.hubspot import crm\n")
    (tmp_path / "hookspecs.py").write_text("")
    return tmp_path


def test_a_planted_violation_fails_and_says_what_to_change(planted: Path) -> None:
    violations = check_project(planted)
    by_line = {(v.path, v.line): v.fix for v in violations}
    planted_file = "plugins/hubspot/planted.py"
    assert by_line.pop((planted_file, 1)) == "from gateway.calls import Call"
    assert by_line.pop((planted_file, 2)) == (
        "request_for is not in the plugin API: export it from gateway.sync (add to __all__ "
        "in gateway/sync/__init__.py), then: from gateway.sync import request_for"
    )
    assert "gateway.db is core-internal" in by_line.pop((planted_file, 3))
    # An internal module whose name the API exports elsewhere: the exact replacement.
    assert by_line.pop((planted_file, 9)) == "from gateway.sql import is_postgres"
    assert by_line.pop((planted_file, 10)) == "from gateway import get_gateway"
    assert "plugins never import each other" in by_line.pop((planted_file, 4))
    assert "get_gateway(app)" in by_line.pop((planted_file, 8))
    assert "never imports a plugin" in by_line.pop(("gateway/core.py", 1))
    assert not by_line, by_line  # lines 5 and 6 are the public API; the copy is clean
    text = report(violations)
    assert text.startswith("8 import(s) break the plugin contract")
    assert "plugins/hubspot/planted.py:1: from gateway.calls.models import Call" in text


def test_a_third_party_package_is_checked_the_same_way(tmp_path: Path) -> None:
    package = tmp_path / "acme"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from acme.crm import X\nfrom gateway.identity.service import create_user\n"
        "import plugins.hubspot\n"
    )
    violations = check_plugin(package, own="acme", other_plugins=["plugins"], root=tmp_path)
    assert [v.line for v in violations] == [2, 3]
    assert violations[0].fix == "from gateway.identity import create_user"


def _imports_of(path: Path) -> set[str]:
    """Every module a file (or every file under a directory) imports, and each
    ``module.name`` it imports from one (the project check's own walk)."""
    found: set[str] = set()
    for file in [path] if path.is_file() else path.rglob("*.py"):
        for _line, module, names, _statement in _imports(ast.parse(file.read_text())):
            found.add(module)
            found.update(f"{module}.{name}" for name in names)
    return found


@pytest.mark.parametrize(
    ("lower", "upper"),
    [
        ("identity", "gateway.auth"),  # who is calling depends on users, not back
        ("jobs", "gateway.webhooks"),  # webhooks enqueue jobs; jobs know only their rows
    ],
)
def test_package_layers_have_no_loop(lower: str, upper: str) -> None:
    reached = {m for m in _imports_of(ROOT / "gateway" / lower) if m.startswith(upper)}
    assert not reached, f"gateway.{lower} must not import {upper}: {sorted(reached)}"


def test_nothing_imports_the_cli_module() -> None:
    # Commands print through gateway.commands; gateway.cli only wires them up.
    for file in (ROOT / "gateway").rglob("*.py"):
        if file.name == "cli.py" and file.parent.name == "gateway":
            continue
        assert "gateway.cli" not in _imports_of(file), file


def test_a_relative_import_of_another_plugin_is_caught(planted: Path) -> None:
    """``from ..other import helper`` reaches another plugin as surely as its absolute
    spelling does."""
    (planted / "plugins" / "hubspot" / "planted.py").write_text(
        "from ..other import helper\nfrom .. import other\nfrom . import crm\nfrom .crm import X\n"
    )
    violations = check_project(planted)
    lines = sorted(v.line for v in violations if v.path == "plugins/hubspot/planted.py")
    assert lines == [1, 2], report(violations)  # its own modules (3, 4) are its business


@pytest.mark.parametrize("page", ["api.md", "writing-a-plugin.md", "typing.md"])
def test_the_docs_code_for_plugins_imports_only_the_api(page: str, tmp_path: Path) -> None:
    """A plugin author copies these snippets: their imports must pass the check the
    plugin will meet (the snippets' bodies are sketches, with ``...`` for the rest)."""
    import re

    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    snippets = re.findall(r"```python\n(.*?)```", text, re.S)
    imports = [
        line.strip()
        for code in snippets
        for line in code.splitlines()
        if line.strip().startswith(("from ", "import "))
    ]
    assert imports
    package = tmp_path / "doc_plugin"
    package.mkdir()
    (package / "__init__.py").write_text("\n".join(imports) + "\n")
    violations = check_plugin(package, own="doc_plugin", other_plugins=["plugins"])
    assert not violations, report(violations)

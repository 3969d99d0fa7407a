"""The public API for plugins, in one place, and the check that enforces it.

A plugin (built in under ``plugins/`` or installed from its own distribution) may import
from the gateway only the modules in :data:`PLUGIN_API`, and from each only the names
in its ``__all__`` (or, for a module without one, its names that do not start with an
underscore), and reaches the running gateway through ``gateway.get_gateway(app)``,
never ``app.extensions["gateway"]``. Everything else in ``gateway`` is the core's own
business and may change without notice. Two more rules keep plugins independent:

- a plugin never imports another plugin (they talk through events and hooks);
- the core (``gateway/`` and ``hookspecs.py``) never imports a plugin.

:func:`check_project` applies all three to this repository (``tests/test_plugin_api.py``
runs it in CI); :func:`check_plugin` applies the first two to one third-party plugin
package (``gateway.testing.assert_plugin_api_only`` wraps it for a plugin's own tests).
Each violation says exactly what to change.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

# module -> what a plugin finds there. The only list of what plugins may import.
PLUGIN_API: dict[str, str] = {
    "gateway": "hookimpl; Gateway and get_gateway(app), the typed accessor for the "
    "running gateway (config, clock, http, registries, call)",
    "hookspecs": "hookimpl and the hook specifications",
    "gateway.config": "GatewayConfig, PluginConfig: configuration and a plugin's table",
    "gateway.errors": "the error classes that become {error, code} bodies",
    "gateway.clock": "Clock: the injectable clock (never datetime.now)",
    "gateway.auth": "Principal, bearer_token, require_* checks, API tokens",
    "gateway.identity": "teams, users, memberships, phone numbers, voice agents",
    "gateway.oauth": "OAuthProvider and get_access_token (tokens in handlers)",
    "gateway.webhooks": "WebhookSource, ParsedEvent, ApplyContext, storing deliveries",
    "gateway.events": "emit_event, EventPayload, JobContext, RetryLater, PermanentFailure",
    "gateway.calls": "calls, recordings, call analyses and their event payloads",
    "gateway.storage": "BlobStorage: recordings on local disk or S3",
    "gateway.team_settings": "get_team_settings and the per-team settings row",
    "gateway.scheduling": "ScheduledTask, CronSchedule, TaskContext",
    "gateway.sync": "the CRM contract, effects ledger, ProviderSession, contact lookup",
    "gateway.mail": "send_mail, Message",
    "gateway.ratelimit": "hit, client_key: rate limits for a plugin's own routes",
    "gateway.sql": "placeholders and dialect checks for hand-written SQL",
    "gateway.commands": "create_app, print_json for a plugin's commands",
    "gateway.direct_routes": "@direct, DirectRequest, DirectResponse: a hot route served "
    "before Quart's request pipeline (a webhook answered under a deadline)",
    "gateway.contract": "@api and the auth schemes: a route's models in /openapi.json; "
    "json_body, the body checked against them",
}

CORE = ("gateway", "hookspecs")
WHERE = "gateway/plugin_api.py (PLUGIN_API)"


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    statement: str
    fix: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.statement}\n    fix: {self.fix}"


def public_names(module: str) -> set[str]:
    """The names a plugin may import from ``module`` (one of :data:`PLUGIN_API`)."""
    mod = importlib.import_module(module)
    names = getattr(mod, "__all__", None)
    if names is not None:
        return set(names)
    return {
        n
        for n, value in vars(mod).items()
        if not n.startswith("_") and not isinstance(value, ModuleType) and n != "annotations"
    }


def _public_home(module: str) -> str | None:
    """The public module a deep ``gateway.x.y`` belongs under (``gateway.x``), if any."""
    parts = module.split(".")
    for i in range(len(parts) - 1, 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in PLUGIN_API and candidate != "gateway":
            return candidate
    return None


def _init_path(module: str) -> str:
    mod = importlib.import_module(module)
    path = module.replace(".", "/")
    return f"{path}/__init__.py" if hasattr(mod, "__path__") else f"{path}.py"


def _is_core(module: str) -> bool:
    return module in CORE or module.startswith("gateway.")


def _imports(
    tree: ast.AST, package: str | None = None
) -> Iterator[tuple[int, str, list[str], str]]:
    """(line, module, imported names or [] for ``import x``, statement) per import,
    wherever it is (functions and ``TYPE_CHECKING`` blocks included). Relative imports
    are resolved against ``package`` (the file's package), so ``from ..other import x``
    is judged as the absolute import it is; without ``package`` they are skipped."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, [], ast.unparse(node)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module, [a.name for a in node.names], ast.unparse(node)
        elif isinstance(node, ast.ImportFrom) and node.level and package:
            relative = "." * node.level + (node.module or "")
            try:
                module = importlib.util.resolve_name(relative, package)
            except ImportError:  # beyond the top-level package: Python refuses it too
                continue
            yield node.lineno, module, [a.name for a in node.names], ast.unparse(node)


def _package_of(file: Path, path: Path, own: str) -> str:
    """The package a file of the plugin ``own`` (at ``path``) belongs to, dotted."""
    if path.is_file():
        return own.rpartition(".")[0]
    parts = list(file.relative_to(path).with_suffix("").parts)
    return ".".join([own, *parts[:-1]])


def _public_home_of(module: str, name: str) -> str | None:
    """The public module that exports the very object ``module.name`` is, if any."""
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    preferred = _public_home(module)
    candidates = ([preferred] if preferred else []) + sorted(PLUGIN_API)
    for candidate in candidates:
        if name in public_names(candidate):
            if getattr(importlib.import_module(candidate), name, None) is obj:
                return candidate
    return None


def _api_fix(module: str, names: list[str]) -> str | None:
    """None when ``from module import names`` (or ``import module``) is within the API;
    otherwise what to write instead."""
    if module in PLUGIN_API:
        public = public_names(module)
        names = [n for n in names if n not in public and n != "*"]
        if not names:
            return None
    elif not names:
        home = _public_home(module)
        if home is not None:
            return f"import {home} instead ({module} is internal)"
        return (
            f"{module} is core-internal; plugins import only from: "
            f"{', '.join(sorted(PLUGIN_API))} (see {WHERE})"
        )
    homes = {n: _public_home_of(module, n) for n in names}
    found: dict[str, list[str]] = {}
    for name, home in homes.items():
        if home is not None:
            found.setdefault(home, []).append(name)
    fixes = [f"from {home} import {', '.join(ns)}" for home, ns in found.items()]
    missing = [n for n, home in homes.items() if home is None]
    if missing:
        target = module if module in PLUGIN_API else _public_home(module)
        what = ", ".join(missing)
        if target is not None:
            fixes.append(
                f"{what} {'is' if len(missing) == 1 else 'are'} not in the plugin API: "
                f"export it from {target} (add to __all__ in {_init_path(target)}), then: "
                f"from {target} import {what}"
            )
        else:
            fixes.append(
                f"{module} is core-internal and {what} is exported by no public module: "
                f"export it from the public module it belongs to ({WHERE}), or do without"
            )
    return "; ".join(fixes)


def _python_files(path: Path) -> Iterable[Path]:
    return [path] if path.is_file() else sorted(path.rglob("*.py"))


def check_plugin(
    path: Path, *, own: str, other_plugins: Collection[str] = (), root: Path | None = None
) -> list[Violation]:
    """Violations in one plugin (a package directory or a module file).

    :param own: the plugin's own module name (``plugins.acme``, ``acme_crm``): it may
        import itself freely.
    :param other_plugins: module names of the other plugins, which it must not import.
    :param root: paths in the messages are relative to it.
    """
    found: list[Violation] = []
    for file in _python_files(path):
        shown = str(file.relative_to(root)) if root else str(file)
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        for line, module, names, statement in _imports(tree, _package_of(file, path, own)):
            if module == own or module.startswith(own + "."):
                continue
            other = next(
                (p for p in other_plugins if module == p or module.startswith(p + ".")), None
            )
            if other is not None:
                found.append(
                    Violation(
                        shown,
                        line,
                        statement,
                        f"plugins never import each other: emit an event (docs/events.md) "
                        f"or call a hook instead of importing {other}; shared code belongs "
                        f"in the core's public API ({WHERE})",
                    )
                )
                continue
            if module == "plugins" and own.startswith("plugins."):
                targets = [f"plugins.{n}" for n in names]
                if any(t != own for t in targets):
                    found.append(
                        Violation(shown, line, statement, "plugins never import each other")
                    )
                continue
            if not _is_core(module):
                continue
            if module == "gateway":
                # ``from gateway import sync`` is ``import gateway.sync``: judged as that.
                subs = [n for n in names if f"gateway.{n}" in PLUGIN_API]
                names = [n for n in names if n not in subs]
                bad = [
                    f"gateway.{n}"
                    for n in names
                    if f"gateway.{n}" not in PLUGIN_API
                    and importlib.util.find_spec(f"gateway.{n}") is not None
                ]
                if bad:
                    found.append(Violation(shown, line, statement, _api_fix(bad[0], []) or ""))
                    continue
                if not names:
                    continue
            fix = _api_fix(module, names)
            if fix is not None:
                found.append(Violation(shown, line, statement, fix))
        for node in ast.walk(tree):
            if isinstance(node, ast.Subscript) and _reaches_into_extensions(node):
                found.append(
                    Violation(
                        shown,
                        node.lineno,
                        ast.unparse(node),
                        "use the typed accessor: `from gateway import get_gateway`, then "
                        "get_gateway(app) (or get_gateway() inside a request or job)",
                    )
                )
    return found


def _reaches_into_extensions(node: ast.Subscript) -> bool:
    """``<anything>.extensions["gateway"]``."""
    return (
        isinstance(node.value, ast.Attribute)
        and node.value.attr == "extensions"
        and isinstance(node.slice, ast.Constant)
        and node.slice.value == "gateway"
    )


def check_core(
    paths: Iterable[Path], plugin_modules: Collection[str], root: Path
) -> list[Violation]:
    """The core never imports a plugin (by module name)."""
    found: list[Violation] = []
    for path in paths:
        for file in _python_files(path):
            tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
            for line, module, _names, statement in _imports(tree):
                top = module.split(".")[0]
                if any(module == p or module.startswith(p + ".") for p in plugin_modules) or (
                    top == "plugins"
                ):
                    found.append(
                        Violation(
                            str(file.relative_to(root)),
                            line,
                            statement,
                            "the core never imports a plugin: add a hook to hookspecs.py "
                            "(or an event) and let the plugin implement it",
                        )
                    )
    return found


def built_in_plugins(root: Path) -> dict[str, Path]:
    """``{module name: path}`` of the plugins under ``root/plugins``."""
    found: dict[str, Path] = {}
    for child in sorted((root / "plugins").iterdir()):
        if child.name.startswith(("_", ".")):
            continue
        if child.is_dir() and (child / "__init__.py").exists():
            found[f"plugins.{child.name}"] = child
        elif child.suffix == ".py":
            found[f"plugins.{child.stem}"] = child
    return found


def check_project(root: Path, *, extra_plugins: dict[str, Path] | None = None) -> list[Violation]:
    """All three rules over this repository: every plugin under ``plugins/`` (plus
    ``extra_plugins``, e.g. the example package) and the core."""
    plugins = {**built_in_plugins(root), **(extra_plugins or {})}
    found: list[Violation] = []
    for name, path in plugins.items():
        others = [p for p in plugins if p != name]
        found += check_plugin(path, own=name, other_plugins=others, root=root)
    core = [root / "gateway", root / "hookspecs.py"]
    found += check_core(core, [p for p in plugins if not p.startswith("plugins.")], root)
    return found


def report(violations: Iterable[Violation]) -> str:
    lines = [str(v) for v in violations]
    return (
        f"{len(lines)} import(s) break the plugin contract ({WHERE}):\n" + "\n".join(lines)
        if lines
        else ""
    )

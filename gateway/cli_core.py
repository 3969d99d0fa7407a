"""Core subcommands: serve, migrate, makemigrations, check, plugins, config."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import os
import sys
from typing import Any

from gateway.config import GatewayConfig
from gateway.errors import StartupError


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the HTTP server (Hypercorn)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--no-worker", action="store_true", help="do not run the job worker")
    p.set_defaults(handler=cmd_serve)

    p = sub.add_parser("migrate", help="apply database migrations")
    p.set_defaults(handler=cmd_migrate)

    p = sub.add_parser("makemigrations", help="write migrations for model changes (dev)")
    p.add_argument("apps", nargs="*", help="app labels (default: all)")
    p.add_argument("--name", help="migration name suffix")
    p.set_defaults(handler=cmd_makemigrations)

    p = sub.add_parser("check", help="validate configuration and reach the database")
    p.set_defaults(handler=cmd_check)

    p = sub.add_parser("plugins", help="list plugins, their hooks, routes and tasks")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_plugins)

    p = sub.add_parser("config", help="show the effective configuration (secrets redacted)")
    p.set_defaults(handler=cmd_config)


# -- serve -------------------------------------------------------------------------


async def _preflight(config: GatewayConfig) -> None:
    """Fail before binding a port: plugins, settings, database, migrations."""
    from gateway.app import create_app, get_gateway

    app = create_app(config)
    gw = get_gateway(app)
    try:
        await gw.db.open()
    except Exception as exc:
        raise StartupError(f"database: cannot connect ({type(exc).__name__}: {exc})") from None
    try:
        await gw.db.ensure_schema(config.gateway.auto_migrate)
    finally:
        await gw.db.close()
    for message in gw.warnings:
        print(f"gateway: warning: {message}", file=sys.stderr)


def cmd_serve(args: argparse.Namespace, config: GatewayConfig) -> int:
    from hypercorn.config import Config
    from hypercorn.run import run

    if config.path is not None:
        # Hypercorn's workers build their own app from the same file.
        os.environ["GATEWAY_CONFIG"] = str(config.path.resolve())
    if args.no_worker:
        os.environ["GATEWAY_RUN_WORKER"] = "false"
        config.gateway.run_worker = False
    asyncio.run(_preflight(config))
    hc = Config()
    hc.bind = [f"{args.host}:{args.port}"]
    hc.application_path = "gateway.asgi:app_from_environment()"
    hc.accesslog = None
    hc.errorlog = logging.getLogger("hypercorn.error")  # through our handler, once
    hc.graceful_timeout = 10
    # Bodies are limited per route by the app; keep Hypercorn from buffering more.
    hc.h11_max_incomplete_size = 64 * 1024
    # A connection that goes quiet mid-request is closed (bodies also have a deadline
    # per route in the app): no client holds a connection by trickling bytes.
    hc.read_timeout = config.gateway.read_timeout_seconds
    try:
        import uvloop  # noqa: F401  (only checking it is importable)

        hc.worker_class = "uvloop"
    except ImportError:
        hc.worker_class = "asyncio"
    # One worker runs in this process, so SIGTERM reaches Hypercorn's own handler.
    hc.workers = 0 if args.workers <= 1 else args.workers
    print(f"gateway: serving on http://{args.host}:{args.port}", file=sys.stderr)
    return run(hc)


# -- migrate ------------------------------------------------------------------------


async def _migrate(config: GatewayConfig) -> int:
    from gateway.app import opened

    async with opened(config) as gw:
        applied = await gw.db.migrate()
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return 0


def cmd_migrate(args: argparse.Namespace, config: GatewayConfig) -> int:
    return asyncio.run(_migrate(config))


async def _makemigrations(config: GatewayConfig, labels: list[str], name: str | None) -> int:
    from tortoise.migrations.autodetector import MigrationAutodetector
    from tortoise.migrations.writer import format_migration_name

    from gateway.app import create_app, get_gateway

    gw = get_gateway(create_app(config))
    apps_dict = gw.db.config["apps"]
    if labels:
        apps_dict = {k: v for k, v in apps_dict.items() if k in labels}
    await gw.db.open()
    try:
        from tortoise import Tortoise

        detector = MigrationAutodetector(Tortoise.apps, apps_dict)
        writers = await detector.changes()
        if inspect.isawaitable(writers):  # pragma: no cover - older Tortoise
            writers = await writers
    finally:
        await gw.db.close()
    if not writers:
        print("no changes detected")
    for writer in writers:
        if name:
            writer.name = format_migration_name(int(writer.name.split("_", 1)[0]), name)
        print(f"created {writer.app_label}.{writer.name}: {writer.write()}")
    return 0


def cmd_makemigrations(args: argparse.Namespace, config: GatewayConfig) -> int:
    return asyncio.run(_makemigrations(config, args.apps, args.name))


# -- check ------------------------------------------------------------------------


async def _check(config: GatewayConfig) -> int:
    from gateway.app import create_app, get_gateway
    from gateway.config import redact_url

    gw = get_gateway(create_app(config))
    try:
        await gw.db.open()
        latency = await gw.db.ping()
        pending = await gw.db.pending_migrations()
    except Exception as exc:
        raise StartupError(
            f"database: cannot reach {redact_url(gw.db.url)} ({type(exc).__name__})"
        ) from None
    finally:
        await gw.db.close()
    print(f"config: ok ({config.path or 'no file, defaults'})")
    print(f"database: ok ({latency:.1f} ms), {len(pending)} migration(s) pending")
    for message in gw.warnings:
        print(f"warning: {message}")
    return 0


def cmd_check(args: argparse.Namespace, config: GatewayConfig) -> int:
    return asyncio.run(_check(config))


# -- plugins / config ---------------------------------------------------------------


def plugin_report(config: GatewayConfig) -> list[dict[str, Any]]:
    from gateway.app import create_app
    from gateway.introspect import plugin_report as report_for

    return report_for(create_app(config), include_disabled=True)


def cmd_plugins(args: argparse.Namespace, config: GatewayConfig) -> int:
    from gateway.cli import print_json

    report = plugin_report(config)
    if args.json:
        print_json(report)
        return 0
    for row in report:
        state = "enabled" if row["enabled"] else "disabled"
        kind = " (core)" if row.get("builtin_core") else ""
        print(f"{row['name']} {row.get('version') or ''} [{state}]{kind}".replace("  ", " "))
        if row.get("hooks"):
            print(f"  hooks: {', '.join(row['hooks'])}")
        for route in row.get("routes", []):
            print(f"  route: {route}")
        for key, value in row.items():
            if key not in {"name", "version", "enabled", "builtin_core", "hooks", "routes"}:
                print(f"  {key}: {', '.join(value)}")
    return 0


def cmd_config(args: argparse.Namespace, config: GatewayConfig) -> int:
    from gateway.app import create_app
    from gateway.cli import print_json

    create_app(config)  # parses every enabled plugin's table
    print_json(config.redacted())
    return 0

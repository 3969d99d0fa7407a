"""Core subcommands: serve (see gateway.cli_serve), migrate, makemigrations, check,
plugins, config."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
from pathlib import Path
from typing import Any

from gateway.config import GatewayConfig
from gateway.errors import StartupError

SERVE_HELP = """Run the HTTP server (Hypercorn). It binds the port first (a busy port is
one line and exit status 2), then loads the plugins, opens the database and applies
pending migrations when auto_migrate allows it (SQLite by default), and only then
serves."""


CHECK_HELP = """Everything serve checks, changing nothing: the configuration, every enabled
plugin and its settings, the database and its pending migrations, the recordings bucket,
the data directory. With --role, also whether the configuration is fit for several
replicas of that role. Exit status 2, with one line per problem, when it is not."""


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="run the HTTP server (Hypercorn)",
        description=SERVE_HELP,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8000, help="TCP port to listen on")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes; 1 serves from this process, more start that many "
        "processes sharing the port",
    )
    p.add_argument(
        "--no-worker",
        action="store_true",
        help="do not run the job worker in the server process(es) (run `gateway worker`)",
    )
    p.add_argument(
        "--scheduler",
        action="store_true",
        help="also run the cron ticker in the server process(es) (or run `gateway scheduler`)",
    )
    p.set_defaults(handler=cmd_serve)

    p = sub.add_parser("migrate", help="apply database migrations")
    p.set_defaults(handler=cmd_migrate)

    p = sub.add_parser("makemigrations", help="write migrations for model changes (dev)")
    p.add_argument("apps", nargs="*", help="app labels (default: all)")
    p.add_argument("--name", help="migration name suffix")
    p.set_defaults(handler=cmd_makemigrations)

    p = sub.add_parser(
        "check",
        help="validate everything serve would check, without changing anything; "
        "non-zero when serve would refuse to start",
        description=CHECK_HELP,
    )
    p.add_argument(
        "--role",
        choices=["api", "worker", "scheduler", "all"],
        help="also require what several replicas of this role need (PostgreSQL, owned "
        "secrets set explicitly, shared rate limits, S3 recordings); one line per problem",
    )
    p.add_argument(
        "--offline",
        action="store_true",
        help="reach no service (database, bucket, Redis): check the configuration alone, "
        "e.g. while building an image",
    )
    p.set_defaults(handler=cmd_check)

    p = sub.add_parser("plugins", help="list plugins, their hooks, routes and tasks")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_plugins)

    p = sub.add_parser("config", help="show the effective configuration (secrets redacted)")
    p.set_defaults(handler=cmd_config)


# -- serve -------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace, config: GatewayConfig) -> int:
    from gateway.cli_serve import serve

    return serve(args, config)


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
    # Every app is given to the detector (a migration depends on other apps' ones);
    # only the requested apps' migrations are written.
    apps_dict = gw.db.config["apps"]
    await gw.db.open()
    try:
        from tortoise import Tortoise

        detector = MigrationAutodetector(Tortoise.apps, apps_dict)
        writers = await detector.changes()
        if inspect.isawaitable(writers):  # pragma: no cover - older Tortoise
            writers = await writers
    finally:
        await gw.db.close()
    if labels:
        writers = [w for w in writers if w.app_label in labels]
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


def _sqlite_file(url: str) -> Path | None:
    from urllib.parse import urlsplit

    from gateway.db import is_sqlite

    path = urlsplit(url).path if is_sqlite(url) else ""
    return Path(path) if path and path != ":memory:" else None


def _writable(directory: Path) -> bool:
    """Whether ``directory`` can be created (or is there) and written to."""
    while not directory.exists() and directory.parent != directory:
        directory = directory.parent
    return os.access(directory, os.W_OK)


async def _check(config: GatewayConfig, role: str | None = None, offline: bool = False) -> int:
    """Everything ``serve`` checks before it serves, writing nothing: plugins and their
    settings (by creating the app), the database and its migrations, the recordings
    bucket, the data directory; with ``role``, fitness for several replicas
    (:mod:`gateway.roles`). ``offline`` reaches no service.

    :raises StartupError: the first reason ``serve`` would refuse to start.
    """
    from gateway.app import create_app, get_gateway
    from gateway.config import redact_url
    from gateway.secrets import owned_secret_sources, secrets_path

    gw = get_gateway(create_app(config, write_secrets=False))
    settings = config.gateway
    auto_migrate = settings.resolved_auto_migrate
    sqlite_file = _sqlite_file(gw.db.url)
    print(f"config: ok ({config.path or 'no file, defaults'})")
    if offline:
        print("database: not reached (--offline)")
        pending: list[str] = []
        needs_dir = sqlite_file.parent if sqlite_file is not None else None
    elif sqlite_file is not None and not sqlite_file.exists():
        # Opening it would create it: say what serve will do instead.
        if not auto_migrate:
            raise StartupError(
                f"database: {sqlite_file} does not exist and auto_migrate is off: serve "
                "would refuse; run `gateway migrate`"
            )
        print(f"database: {sqlite_file} does not exist yet; serve creates it and migrates")
        pending = []
        needs_dir = sqlite_file.parent
    else:
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
        applies = "serve applies them" if auto_migrate else "run `gateway migrate`"
        print(
            f"database: ok ({latency:.1f} ms), {len(pending)} migration(s) pending"
            + (f" ({applies})" if pending else "")
        )
        needs_dir = None
    await _check_storage(config, offline)
    sources = owned_secret_sources(config)
    for name, source in sources.items():
        where = f" into {secrets_path(config)}" if source == "would be generated" else ""
        print(f"secret {name}: {source}{where}")
    if "would be generated" in sources.values():
        needs_dir = settings.data_dir
    for message in gw.warnings:
        print(f"warning: {message}")
    if pending and not auto_migrate:
        raise StartupError(
            f"database: {len(pending)} migration(s) pending ({pending[0]}, ...) and "
            "auto_migrate is off: serve would refuse; run `gateway migrate`"
        )
    if needs_dir is not None and not _writable(needs_dir):
        raise StartupError(f"data_dir: {needs_dir} is not writable: serve would fail")
    return await _check_role(config, role, offline) if role else 0


async def _check_storage(config: GatewayConfig, offline: bool) -> None:
    settings = config.gateway
    if settings.recording_storage != "s3":
        print("recordings: local disk")
        return
    where = f"s3 bucket '{settings.s3.bucket}'"
    if offline:
        print(f"recordings: {where} (not reached: --offline)")
        return
    from gateway.storage import StorageError
    from gateway.storage.s3 import S3Storage

    bucket = S3Storage(settings.s3)
    try:
        await bucket.ping()
    except StorageError as exc:
        raise StartupError(f"recordings: cannot reach {where} ({exc})") from None
    finally:
        await bucket.close()
    print(f"recordings: {where} ok")


async def _check_role(config: GatewayConfig, role: str, offline: bool) -> int:
    import sys

    from gateway.roles import reach_services, replica_problems

    problems = replica_problems(config, role)
    if not offline:
        answered, unreachable = await reach_services(config, role)
        for line in answered:
            print(line)
        problems += unreachable
    for problem in problems:
        print(f"gateway: role {role}: {problem}", file=sys.stderr)
    if problems:
        return 2
    print(f"role {role}: fit for several replicas")
    return 0


def cmd_check(args: argparse.Namespace, config: GatewayConfig) -> int:
    return asyncio.run(_check(config, args.role, args.offline))


# -- plugins / config ---------------------------------------------------------------


def plugin_report(config: GatewayConfig) -> list[dict[str, Any]]:
    from gateway.app import create_app
    from gateway.introspect import plugin_report as report_for

    return report_for(create_app(config, write_secrets=False), include_disabled=True)


def cmd_plugins(args: argparse.Namespace, config: GatewayConfig) -> int:
    from gateway.commands import print_json

    report = plugin_report(config)
    if args.json or config.gateway.log_format == "json":
        print_json(report)
        return 0
    for row in report:
        state = "enabled" if row["enabled"] else "disabled"
        kind = " (core)" if row.get("builtin_core") else ""
        print(f"{row['name']} {row.get('version') or ''} [{state}]{kind}".replace("  ", " "))
        if row.get("blocked"):
            print(f"  blocked: {row['blocked']}")
        if row.get("hooks"):
            print(f"  hooks: {', '.join(row['hooks'])}")
        for route in row.get("routes", []):
            print(f"  route: {route}")
        for key, value in row.items():
            skip = {"name", "version", "enabled", "builtin_core", "hooks", "routes", "blocked"}
            if key not in skip:
                print(f"  {key}: {', '.join(value)}")
    return 0


def effective_config(config: GatewayConfig) -> dict[str, Any]:
    """What ``serve`` would run with: defaults resolved, every plugin table parsed, the
    owned secrets shown as present (redacted) or as what would be generated."""
    from gateway.app import create_app
    from gateway.logs import REDACTED
    from gateway.secrets import owned_secret_sources, read_generated, secrets_path

    create_app(config, write_secrets=False)  # parses every enabled plugin's table
    view = config.redacted()
    gw = view["gateway"]
    gw["auto_migrate"] = config.gateway.resolved_auto_migrate
    sources = owned_secret_sources(config)
    generated = read_generated(config)
    for name, source in sources.items():
        if source == "would be generated":
            gw[name] = "(would be generated)"
        elif name == "encryption_keys":
            count = len(config.gateway.encryption_keys or generated.get(name) or [])
            gw[name] = [REDACTED] * count
        else:
            gw[name] = REDACTED
    view["owned_secrets"] = {"file": str(secrets_path(config)), **sources}
    return view


def cmd_config(args: argparse.Namespace, config: GatewayConfig) -> int:
    from gateway.commands import print_json

    print_json(effective_config(config))
    return 0

"""How the reconciliation is run: ``gateway elevenlabs reconcile [--since ISO | --hours
N]`` (``register_commands``) and the hourly scheduled task ``elevenlabs-reconcile``
(``register_scheduled_tasks``; run by the scheduling subsystem, which serves it at
``/api/cron/elevenlabs-reconcile`` and from its ticker)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway import get_gateway
from gateway.config import GatewayConfig
from gateway.errors import StartupError
from plugins.elevenlabs.api import ApiError
from plugins.elevenlabs.reconcile import NotConfigured, reconcile
from plugins.elevenlabs.settings import load_quietly

TASK_NAME = "elevenlabs-reconcile"


# -- the command line ----------------------------------------------------------------------


def _iso(value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date-time: {value!r}") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def add_commands(subparsers: Any) -> None:
    p = subparsers.add_parser("elevenlabs", help="ElevenLabs plugin: reconcile")
    sub = p.add_subparsers(dest="elevenlabs_command", required=True, metavar="COMMAND")
    r = sub.add_parser(
        "reconcile",
        help="store the conversations whose post-call webhook never arrived",
        description="List the conversations of every registered agent from the ElevenLabs "
        "API and store each finished one the gateway lacks, exactly as its "
        "post_call_transcription webhook would have. Prints the figures as JSON.",
    )
    window = r.add_mutually_exclusive_group()
    window.add_argument(
        "--since", type=_iso, help="conversations started after this ISO 8601 time (UTC)"
    )
    window.add_argument(
        "--hours",
        type=float,
        help="conversations started in the last N hours (default: reconcile_lookback_hours)",
    )
    r.set_defaults(handler=cmd_reconcile)


def cmd_reconcile(args: argparse.Namespace, config: GatewayConfig) -> int:
    return asyncio.run(_run(args, config))


async def _run(args: argparse.Namespace, config: GatewayConfig) -> int:
    from gateway.commands import create_app, print_json

    settings = load_quietly(config)
    if settings.api_key is None or not settings.api_key.get_secret_value():
        raise StartupError("elevenlabs reconcile: [plugins.elevenlabs] api_key is not configured")
    # A process of its own, like `gateway worker`: database, HTTP session, no job worker.
    config.gateway.run_worker = False
    app = create_app(config)
    gw = get_gateway(app)
    hours = args.hours if args.hours is not None else settings.reconcile_lookback_hours
    since = args.since or gw.clock.now() - timedelta(hours=hours)
    await app.startup()
    try:
        assert gw.http is not None
        report = await reconcile(app, since=since, http=gw.http)
    except NotConfigured as exc:
        raise StartupError(f"elevenlabs reconcile: {exc}") from None
    except ApiError as exc:
        print(f"gateway: elevenlabs reconcile: {exc}", file=sys.stderr)
        return 1
    finally:
        await app.shutdown()
    print_json(report.figures())
    return 0


# -- the scheduled task ----------------------------------------------------------------------


async def scheduled(ctx: Any) -> dict[str, Any]:
    """``elevenlabs-reconcile``: the last ``reconcile_lookback_hours``. Idempotent (a
    window run twice imports nothing the second time)."""
    settings = load_quietly(ctx.config)
    since = ctx.clock.now() - timedelta(hours=settings.reconcile_lookback_hours)
    try:
        # The serving app's session, else one with the gateway's timeouts and User-Agent.
        async with get_gateway(ctx.app).http_session() as http:
            return (await reconcile(ctx.app, since=since, http=http)).figures()
    except NotConfigured as exc:
        from gateway.scheduling import TaskSkipped  # only ever run by that subsystem

        raise TaskSkipped(str(exc)) from None


def scheduled_tasks(config: GatewayConfig) -> list[Any] | None:
    """The task, or ``None`` in a build without the scheduling subsystem."""
    try:
        from gateway.scheduling import ScheduledTask
    except ModuleNotFoundError as exc:
        if exc.name and "gateway.scheduling".startswith(exc.name):
            return None
        raise
    settings = load_quietly(config)
    return [
        ScheduledTask(
            name=TASK_NAME,
            schedule=settings.reconcile_schedule,
            handler=scheduled,
            description="store ElevenLabs conversations whose post-call webhook never arrived",
        )
    ]

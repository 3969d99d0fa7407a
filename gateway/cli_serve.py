"""``gateway serve``: bind the port, check everything, then hand over to Hypercorn."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os

from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets

from gateway.config import GatewayConfig
from gateway.counters import MULTIPROC_ENV
from gateway.errors import StartupError
from gateway.serve_workers import metrics_directory, supervise


class BoundConfig(HypercornConfig):
    """Hypercorn's config, serving on sockets bound before the app was prepared (so a
    busy port is reported before any other work, and nothing says "serving" before the
    bind succeeded)."""

    bound: Sockets | None = None

    def create_sockets(self) -> Sockets:
        # Handed out once; worker processes get them from Hypercorn, not from here.
        sockets, self.bound = self.bound, None
        return sockets if sockets is not None else super().create_sockets()


def _bind(hc: BoundConfig, host: str, port: int) -> None:
    try:
        hc.bound = hc.create_sockets()
    except OSError as exc:
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _close(sockets: Sockets | None) -> None:
    for sock in sockets.insecure_sockets if sockets else ():
        sock.close()


async def _preflight(config: GatewayConfig) -> None:
    """Plugins, settings, database, migrations: everything that can stop the server,
    before it serves. Logs the startup warnings, once."""
    from gateway.app import create_app, get_gateway, log_warnings

    gw = get_gateway(create_app(config))
    try:
        await gw.db.open()
    except Exception as exc:
        raise StartupError(f"database: cannot connect ({type(exc).__name__}: {exc})") from None
    try:
        await gw.db.ensure_schema(config.gateway.auto_migrate)
    finally:
        await gw.db.close()
    log_warnings(config)


def serve(args: argparse.Namespace, config: GatewayConfig) -> int:
    from hypercorn.run import run

    from gateway.app import SHOWN_WARNINGS_ENV

    hc = BoundConfig()
    hc.bind = [f"{args.host}:{args.port}"]
    _bind(hc, args.host, args.port)
    try:
        if config.path is not None:
            # Hypercorn's workers build their own app from the same file.
            os.environ["GATEWAY_CONFIG"] = str(config.path.resolve())
        if args.no_worker:
            os.environ["GATEWAY_RUN_WORKER"] = "false"
            config.gateway.run_worker = False
        if getattr(args, "scheduler", False):
            os.environ["GATEWAY_RUN_SCHEDULER"] = "true"
            config.gateway.run_scheduler = True
        asyncio.run(_preflight(config))
        os.environ[SHOWN_WARNINGS_ENV] = json.dumps(config.warnings)
    except BaseException:
        _close(hc.bound)
        raise
    hc.application_path = "gateway.asgi:app_from_environment()"
    hc.accesslog = None
    hc.errorlog = logging.getLogger("hypercorn.error")  # through our handler, once
    hc.graceful_timeout = 10
    # Bodies are limited per route by the app; keep Hypercorn from buffering more.
    hc.h11_max_incomplete_size = 64 * 1024
    # A connection that goes quiet mid-request is closed (bodies also have a deadline
    # per route in the app): no client holds a connection by trickling bytes.
    hc.read_timeout = config.gateway.read_timeout_seconds  # type: ignore[assignment]  # seconds, a float works
    try:
        import uvloop  # noqa: F401  (only checking it is importable)

        hc.worker_class = "uvloop"
    except ImportError:
        hc.worker_class = "asyncio"
    # Hypercorn logs "Running on http://host:port" once it accepts connections.
    if args.workers <= 1:
        # One worker runs in this process, so SIGTERM reaches Hypercorn's own handler:
        # it stops accepting and finishes in-flight requests within graceful_timeout.
        hc.workers = 0
        if os.environ.get(MULTIPROC_ENV):  # configured by the operator: honour it
            with metrics_directory():
                return run(hc)
        return run(hc)
    hc.workers = args.workers
    # Requests drain within graceful_timeout, then the app's shutdown runs (the job
    # worker's grace included); a worker past both is killed.
    stop_timeout = hc.graceful_timeout + config.gateway.job_shutdown_grace_seconds + 5
    with metrics_directory():
        return supervise(hc, args.workers, stop_timeout=stop_timeout)

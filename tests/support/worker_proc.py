"""A job worker in its own process, for tests that kill or race worker processes.

``python -m tests.support.worker_proc '<json settings>' <log file> <marker file>`` builds
the gateway with :class:`ProcPlugin` and runs :func:`gateway.jobs.cli.run_worker_process`
(what ``gateway worker`` runs). The handler appends ``start``/``done`` lines with its pid
to the log (O_APPEND, one write per line, so processes never interleave a line) and, if
the marker path is not ``-``, waits for that file before finishing.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from gateway import hookimpl
from gateway.events import EventHandler, JobContext
from tests.support.lines import append_line

HANDLER = "proc.record"


class ProcPlugin:
    """Registers the recording handler (the test process registers it too, so ingestion
    creates its jobs)."""

    def __init__(self, log: str, marker: str = "-", work_seconds: float = 0.0) -> None:
        self.log, self.marker, self.work_seconds = log, marker, work_seconds

    async def record(self, ctx: JobContext) -> None:
        ident = f"{ctx.event.payload['id']} {os.getpid()} {ctx.job.id}"
        append_line(self.log, f"start {ident}")
        if self.work_seconds:
            await asyncio.sleep(self.work_seconds)  # work that takes a while
        if self.marker != "-":
            while not Path(self.marker).exists():  # blocked until the test says so
                await asyncio.sleep(0.02)
        append_line(self.log, f"done {ident}")

    @hookimpl
    def register_event_handlers(self, config: Any) -> list[EventHandler]:
        return [EventHandler(HANDLER, ("proc.*",), self.record)]


def main() -> int:
    from gateway.app import create_app
    from gateway.config import load_config
    from gateway.jobs.cli import run_worker_process
    from gateway.logs import configure_logging

    settings, log, marker = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    work = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    # Only this plugin (and the core): a worker process that starts fast.
    config = load_config(data={"gateway": settings, "plugins": {"proc": {}}}, environ={})
    configure_logging("text", "WARNING")
    app = create_app(config, extra_plugins=[("proc", ProcPlugin(log, marker, work))])

    async def run() -> None:
        ready = asyncio.Event()

        async def announce() -> None:
            while "gateway_jobs_worker" not in app.extensions:
                await asyncio.sleep(0.01)
            append_line(log, f"ready {os.getpid()}")
            ready.set()
            listener = app.extensions["gateway_jobs_worker"].listener
            if listener is not None:  # PostgreSQL: LISTEN is up
                await listener.listening.wait()
                append_line(log, f"listening {os.getpid()}")

        task = asyncio.ensure_future(announce())
        await run_worker_process(app)
        task.cancel()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())

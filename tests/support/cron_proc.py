"""The scheduler in its own process, for tests that kill or race processes.

``python -m tests.support.cron_proc scheduler '<json settings>' <log>`` runs
:func:`gateway.scheduling.cli.run_scheduler_process` (what ``gateway scheduler`` runs)
on the real clock with the ``every-second`` task, whose runs append ``ran`` lines to the
log. ``... run '<json settings>' <log> <now ISO>`` runs ``nightly`` through
:func:`gateway.scheduling.cli.run_task_now` (what ``gateway cron run`` runs) on a
FrozenClock at ``now``, with a handler that never returns: it waits to be killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import datetime

from tests.support.cron_plugin import CronPlugin, append_line


def main() -> int:
    from gateway.app import create_app
    from gateway.clock import FrozenClock
    from gateway.config import load_config
    from gateway.logs import configure_logging
    from gateway.scheduling.cli import run_scheduler_process, run_task_now

    mode, settings, log = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    # Only this plugin (and the core): a process that starts fast.
    config = load_config(data={"gateway": settings, "plugins": {"crontest": {}}}, environ={})
    configure_logging("text", "WARNING")
    if mode == "run":
        clock = FrozenClock(datetime.fromisoformat(sys.argv[4]))
        plugin = CronPlugin(log, block_forever=True, tasks=("nightly",))
        app = create_app(config, extra_plugins=[("crontest", plugin)], clock=clock)
        return asyncio.run(run_task_now(app, "nightly"))
    plugin = CronPlugin(log, tasks=("every-second",))
    app = create_app(config, extra_plugins=[("crontest", plugin)])

    async def run() -> None:
        async def announce() -> None:
            while "gateway_scheduling_ticker" not in app.extensions:
                await asyncio.sleep(0.01)
            append_line(log, f"ready {os.getpid()}")

        task = asyncio.ensure_future(announce())
        await run_scheduler_process(app)
        task.cancel()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())

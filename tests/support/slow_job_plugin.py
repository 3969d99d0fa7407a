"""A plugin whose job handler blocks until a marker file exists, for tests that stop a
real ``gateway worker`` process while it runs a job. The test installs it as a
distribution (a dist-info on PYTHONPATH, see tests/test_plugins.py ``make_dist``), so
the command finds it through the ``gateway.plugins`` entry points like any plugin.

``[plugins.slowjob]``: ``marker`` (the file that lets the handler finish) and ``log``
(the file ``start``/``done`` lines with the event id and pid are appended to).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from gateway import hookimpl
from gateway.config import PluginSettings
from gateway.events import EventHandler, JobContext
from tests.support.lines import append_line

HANDLER = "slowjob.block"


class Settings(PluginSettings):
    marker: str
    log: str


@hookimpl
def register_event_handlers(config: Any) -> list[EventHandler]:
    settings = config.plugin_config("slowjob", Settings)

    async def block(ctx: JobContext) -> None:
        ident = f"{ctx.event.payload['id']} {os.getpid()}"
        append_line(settings.log, f"start {ident}")
        while not Path(settings.marker).exists():
            await asyncio.sleep(0.02)
        append_line(settings.log, f"done {ident}")

    return [EventHandler(HANDLER, ("slow.*",), block)]

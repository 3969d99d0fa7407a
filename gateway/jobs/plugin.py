"""Core plugin: runs the in-process job worker (``[gateway] run_worker``) and serves the
jobs API."""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from gateway import hookimpl

WORKER_KEY = "gateway_jobs_worker"


@hookimpl
def register_routes(app: Any, config: Any) -> list[Blueprint]:
    from gateway.jobs.api import bp

    return [bp]


# Start after every other plugin's startup (handlers may need what those set up) and
# stop before their shutdown (running handlers may still use it).
@hookimpl(trylast=True)
async def startup(app: Any, config: Any) -> None:
    from gateway.jobs.worker import Worker, wake_event

    wake_event(app)  # bound to the serving loop
    if config.gateway.run_worker:
        worker = Worker(app)
        worker.start()
        app.extensions[WORKER_KEY] = worker


@hookimpl(tryfirst=True)
async def shutdown(app: Any, config: Any) -> None:
    from gateway.jobs.worker import ANNOUNCER_KEY

    worker = app.extensions.pop(WORKER_KEY, None)
    if worker is not None:
        await worker.stop()
    announcer = app.extensions.pop(ANNOUNCER_KEY, None)
    if announcer is not None:
        await announcer.drain()  # a wake-up in flight, before the database closes

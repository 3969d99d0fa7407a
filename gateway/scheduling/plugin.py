"""Core plugin: validates the registered tasks, serves the cron routes, and runs the
ticker (``[gateway] run_scheduler``, ``gateway serve --scheduler``, ``gateway
scheduler``)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from gateway import hookimpl


@hookimpl
def register_routes(app: Any, config: Any) -> list[Blueprint]:
    from gateway.scheduling.routes import bp
    from gateway.scheduling.runner import runner_of

    runner_of(app)  # validates every task now: a bad schedule stops startup
    return [bp]


# After every other plugin's startup (tasks may need what those set up); stopped before
# their shutdown (running tasks may still use it).
@hookimpl(trylast=True)
async def startup(app: Any, config: Any) -> None:
    from gateway.scheduling.runner import runner_of
    from gateway.scheduling.ticker import TICKER_KEY, Ticker

    if config.gateway.run_scheduler:
        ticker = Ticker(runner_of(app))
        ticker.start()
        app.extensions[TICKER_KEY] = ticker


@hookimpl(tryfirst=True)
async def shutdown(app: Any, config: Any) -> None:
    from gateway.scheduling.runner import RUNNER_KEY
    from gateway.scheduling.ticker import TICKER_KEY

    ticker = app.extensions.pop(TICKER_KEY, None)
    if ticker is not None:
        await ticker.stop()
    runner = app.extensions.get(RUNNER_KEY)
    if runner is not None:
        await runner.stop()

"""What a plugin registers (:class:`ScheduledTask`) and what its handler receives
(:class:`TaskContext`)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from gateway.errors import StartupError
from gateway.scheduling.schedule import CronSchedule

if TYPE_CHECKING:  # pragma: no cover - imports for annotations only
    import aiohttp
    from quart import Quart

    from gateway.clock import Clock
    from gateway.config import GatewayConfig

# Task names are URL path segments (/api/cron/<name>); "runs" is the history listing.
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
RESERVED_NAMES = frozenset({"runs"})

Figures = Mapping[str, int | float | str | bool | None]


class TaskSkipped(Exception):
    """Raise from a handler when there was nothing it could do (e.g. mail is not
    configured): the run is recorded as ``skipped`` with ``reason`` and, optionally,
    the figures gathered so far. A skipped window is not retried."""

    def __init__(self, reason: str, figures: Figures | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.figures = dict(figures or {})


@dataclass(frozen=True)
class TaskContext:
    """What a scheduled task's handler receives.

    :param task: the :class:`ScheduledTask` being run.
    :param run_id: the run row's id (``GET /api/cron/runs``), unique per run.
    :param attempt: 1 for the window's first run; retries and forced runs count up.
    :param window_start: the fire time this run is for (the latest one <= now).
    :param window_end: the next fire time; the window is ``[window_start, window_end)``.
    :param previous_window_start: the fire time before ``window_start``: a report covers
        ``[previous_window_start, window_start)``, the period that just ended.
    :param forced: ``?force=true`` or ``gateway cron run --force``.
    :param trigger: ``"http"``, ``"ticker"`` or ``"cli"``.
    :param app: the Quart app (``app.extensions``).
    :param config: the gateway configuration.
    :param clock: the gateway clock (all time comes from it).
    :param http: the shared aiohttp session.
    """

    task: ScheduledTask
    run_id: int
    attempt: int
    window_start: datetime
    window_end: datetime
    previous_window_start: datetime
    forced: bool
    trigger: str
    app: Quart
    config: GatewayConfig
    clock: Clock
    http: aiohttp.ClientSession | None

    @property
    def window_key(self) -> str:
        """``"<task>@<window start ISO>"``: a stable key for "this task, this window",
        e.g. as the dedup key of work the run hands on, so a retried or forced run of
        the same window does not create it twice."""
        return f"{self.task.name}@{self.window_start.isoformat()}"


Handler = Callable[[TaskContext], Awaitable["Figures | None"]]


@dataclass(frozen=True)
class ScheduledTask:
    """A periodic task, returned from ``register_scheduled_tasks``.

    :param name: unique across plugins; lower case letters, digits, ``-`` and ``_``
        (it is the path of ``/api/cron/<name>``).
    :param schedule: a cron expression in UTC, e.g. ``"0 3 * * *"``; five fields, or
        six with seconds last (croniter's convention), or an alias such as ``@daily``.
    :param handler: ``async (TaskContext) -> Mapping[str, number] | None``. The mapping
        (counts, bytes, ...) is recorded as the run's figures. Raise
        :class:`TaskSkipped` for "nothing to do", any other exception for a failure
        (the window may then be retried).
    :param description: one line for ``gateway cron list`` and the docs.
    """

    name: str
    schedule: str
    handler: Handler
    description: str = ""

    @cached_property
    def cron(self) -> CronSchedule:
        """The parsed schedule. Parsed on first use (validate_tasks() at startup), not
        in the constructor, so a bad expression is reported naming the plugin.

        :raises ValueError: the expression is not valid."""
        return CronSchedule(self.schedule)


def validate_tasks(registered: Mapping[str, tuple[str, Any]]) -> dict[str, ScheduledTask]:
    """Check every registered task and parse its schedule.

    :param registered: ``{name: (plugin, item)}`` from the registry.
    :raises StartupError: one line naming the plugin and the task.
    """
    tasks: dict[str, ScheduledTask] = {}
    for name, (plugin, item) in registered.items():
        if not isinstance(item, ScheduledTask):
            raise StartupError(
                f"plugin '{plugin}': register_scheduled_tasks must return "
                f"gateway.scheduling.ScheduledTask objects, not {type(item).__name__}"
            )
        if not _NAME.match(name) or name in RESERVED_NAMES:
            raise StartupError(
                f"plugin '{plugin}': scheduled task name {name!r} must be 1-100 lower case "
                "letters, digits, '-' or '_' (and not 'runs')"
            )
        if not callable(item.handler):
            raise StartupError(
                f"plugin '{plugin}': scheduled task '{name}': handler is not callable"
            )
        try:
            item.cron  # noqa: B018 - parses and caches the schedule
        except ValueError as exc:
            raise StartupError(
                f"plugin '{plugin}': scheduled task '{name}': schedule {item.schedule!r}: {exc}"
            ) from None
        tasks[name] = item
    return tasks

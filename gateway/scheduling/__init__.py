"""Scheduled tasks: plugins register :class:`ScheduledTask` (``register_scheduled_tasks``);
the core serves ``/api/cron/<name>``, runs a ticker, and runs each schedule window once
across pingers, tickers and replicas (see docs/scheduling.md)."""

from __future__ import annotations

from gateway.scheduling.schedule import CronSchedule
from gateway.scheduling.task import Figures, ScheduledTask, TaskContext, TaskSkipped

__all__ = ["CronSchedule", "Figures", "ScheduledTask", "TaskContext", "TaskSkipped"]

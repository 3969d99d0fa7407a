"""scheduling models (Tortoise app ``scheduling``): one row per run of a scheduled task.

A run claims its window by inserting ``(task, window_start, attempt)``, which is unique:
of any number of pingers and tickers racing for a window, exactly one insert succeeds.
Later runs of the same window (a retry after a failure, a forced run) take the next
attempt number, so the history keeps every run.
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model

RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
SKIPPED = "skipped"
STATUSES = (RUNNING, SUCCEEDED, FAILED, SKIPPED)
SETTLED = frozenset({SUCCEEDED, SKIPPED})  # a window that needs no further run


class TaskRun(Model):
    """One run of a scheduled task for one schedule window."""

    id = fields.BigIntField(primary_key=True)
    task = fields.CharField(max_length=100)
    window_start = fields.DatetimeField()
    window_end = fields.DatetimeField()
    attempt = fields.IntField()
    status = fields.CharField(max_length=16, default=RUNNING)
    forced = fields.BooleanField(default=False)
    trigger = fields.CharField(max_length=16)  # http | ticker | cli
    # Who holds the run: "<host>:<pid>:<random>" of the process plus a per-claim token;
    # every later write is a compare-and-set on it.
    owner = fields.CharField(max_length=100)
    started_at = fields.DatetimeField()
    heartbeat_at = fields.DatetimeField()
    lease_until = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    figures: fields.JSONField[dict[str, Any] | None] = fields.JSONField(null=True)
    # Why: the error of a failed run, the reason of a skipped one.
    detail = fields.TextField(null=True)

    class Meta:
        table = "scheduled_runs"
        unique_together = (("task", "window_start", "attempt"),)
        indexes = (("status", "lease_until"),)

"""jobs models (Tortoise app ``jobs``): one row per (event, handler) run. The row is the
queue: workers claim it with a lease, so a dead worker's job comes back when the lease
ends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:  # annotations only: the models load as Tortoise apps
    from gateway.identity.models import Team

PENDING = "pending"
RUNNING = "running"
SUCCEEDED = "succeeded"
DEAD = "dead"
STATUSES = (PENDING, RUNNING, SUCCEEDED, DEAD)


class Job(Model):
    """A handler run for a stored event. attempts counts claims, it is also the
    compare-and-set token that makes a claim or a finish atomic."""

    id = fields.BigIntField(primary_key=True)
    # A gateway.webhooks.models.WebhookEvent, not named: jobs import nothing of webhooks.
    event: fields.ForeignKeyRelation[Any] = fields.ForeignKeyField(
        "webhooks.WebhookEvent", related_name="jobs", on_delete=fields.CASCADE
    )
    event_id: int
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "identity.Team", related_name="jobs", null=True, on_delete=fields.SET_NULL
    )
    team_id: int | None
    handler = fields.CharField(max_length=200, db_index=True)
    status = fields.CharField(max_length=16, default=PENDING)
    attempts = fields.IntField(default=0)
    max_attempts = fields.IntField()
    run_at = fields.DatetimeField()
    lease_until = fields.DatetimeField(null=True)
    locked_by = fields.CharField(max_length=64, null=True)
    last_error = fields.TextField(null=True)
    # The last attempts' outcomes, oldest first (gateway.jobs.queue.HISTORY_MAX at most):
    # {"attempt", "at", "error", "outcome": "retry" | "dead"} per failed attempt and
    # {"at", "outcome": "requeued"} when a dead job was retried. Kept across retries.
    history: fields.JSONField[list[dict[str, Any]] | None] = fields.JSONField(null=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "jobs"
        indexes = (("status", "run_at"),)

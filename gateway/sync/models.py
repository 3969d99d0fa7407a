"""sync models (Tortoise app ``sync``): the effects ledger and the shared windows of the
provider rate limiter (used on PostgreSQL when no Redis is configured)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:  # annotations only: the models load as Tortoise apps
    from gateway.identity.models import Team

PENDING = "pending"  # claimed or interrupted; ``sent`` says whether a request went out
DONE = "done"
SKIPPED = "skipped"  # nothing to do (not connected, the team's settings say no)
FAILED = "failed"  # given up (needs reconnect, the provider refused the data)
STATUSES = (PENDING, DONE, SKIPPED, FAILED)


class Effect(Model):
    """One side effect at a provider, per (subject, plugin, action): a call logged in a
    CRM, a calendar event, a channel message. The row is written before the request is
    sent (``sent``) and completed with the provider's id before the job completes, so a
    retry, a duplicate or a replay never does it twice (see gateway.sync.ledger)."""

    id = fields.BigIntField(primary_key=True)
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "identity.Team", related_name="sync_effects", null=True, on_delete=fields.SET_NULL
    )
    team_id: int | None
    subject = fields.CharField(max_length=128)  # "analysis:12", "event:40", ...
    plugin = fields.CharField(max_length=64)
    action = fields.CharField(max_length=64)
    status = fields.CharField(max_length=16, default=PENDING)
    # The idempotency marker stored on the provider's record (letters and digits).
    marker = fields.CharField(max_length=64)
    # A request that may have created the record went out (the marker is what finds it).
    sent = fields.BooleanField(default=False)
    sent_at = fields.DatetimeField(null=True)
    provider_id = fields.CharField(max_length=255, null=True)
    url = fields.CharField(max_length=2000, null=True)
    detail = fields.CharField(max_length=500, null=True)  # why skipped or failed
    # what a step found (a contact id), for retries
    data: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    attempts = fields.IntField(default=0)
    # Claimed by one job at a time: a replay running beside the original waits.
    lease_until = fields.DatetimeField(null=True)
    owner = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    completed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "sync_effects"
        unique_together = (("subject", "plugin", "action"),)


class RateWindow(Model):
    """The recent request times of one provider account's limit (a sliding log), shared
    by every worker process through the database (``SELECT ... FOR UPDATE``)."""

    key = fields.CharField(max_length=255, primary_key=True)
    hits: fields.JSONField[list[Any]] = fields.JSONField(default=list)  # unix times, oldest first

    class Meta:
        table = "sync_rate_windows"

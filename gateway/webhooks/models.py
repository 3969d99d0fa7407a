"""webhooks models (Tortoise app ``webhooks``): every accepted webhook event, routed to a
team or not. ``(source, dedup_key)`` is unique, so a redelivery can never become a second
event, whichever process receives it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:  # annotations only: the models load as Tortoise apps
    from gateway.identity.models import Team

ROUTED = "routed"
UNROUTED = "unrouted"


class WebhookEvent(Model):
    """One event parsed out of a verified webhook request. Unrouted events keep team null."""

    id = fields.BigIntField(primary_key=True)
    source = fields.CharField(max_length=100)
    dedup_key = fields.CharField(max_length=255)
    type = fields.CharField(max_length=100, db_index=True)
    status = fields.CharField(max_length=16, default=ROUTED, db_index=True)
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "identity.Team", related_name="webhook_events", null=True, on_delete=fields.SET_NULL
    )
    team_id: int | None
    payload: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    phone_number = fields.CharField(max_length=32, null=True)
    agent_id = fields.CharField(max_length=128, null=True)
    occurred_at = fields.DatetimeField(null=True)
    received_at = fields.DatetimeField()

    class Meta:
        table = "webhook_events"
        unique_together = (("source", "dedup_key"),)

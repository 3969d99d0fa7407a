"""calls models (Tortoise app ``calls``): phone calls and their recordings, in terms any
telephony plugin can fill in. ``external_id`` is the provider's id for the call or the
recording, unique so that every webhook about it lands on the same row."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Call(Model):
    """One phone call. Status only moves forward (see gateway.calls.status)."""

    id = fields.IntField(primary_key=True)
    team = fields.ForeignKeyField(
        "identity.Team", related_name="calls", null=True, on_delete=fields.SET_NULL
    )
    external_id = fields.CharField(max_length=64, unique=True)
    account_id = fields.CharField(max_length=64, null=True)
    direction = fields.CharField(max_length=32, null=True)
    from_number = fields.CharField(max_length=64, null=True)
    to_number = fields.CharField(max_length=64, null=True)
    status = fields.CharField(max_length=32)
    # Rank of ``status`` in the precedence order, and the highest sequence number seen:
    # together they decide whether a late callback may still change the row.
    status_rank = fields.SmallIntField(default=0)
    last_sequence = fields.IntField(null=True)
    started_at = fields.DatetimeField(null=True)
    answered_at = fields.DatetimeField(null=True)
    ended_at = fields.DatetimeField(null=True)
    duration_seconds = fields.IntField(null=True)
    agent_id = fields.CharField(max_length=128, null=True)
    conversation_id = fields.CharField(max_length=128, null=True, db_index=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "calls"


class Recording(Model):
    """A call recording: where it came from, where it is stored, and until when."""

    id = fields.IntField(primary_key=True)
    call = fields.ForeignKeyField(
        "calls.Call", related_name="recordings", null=True, on_delete=fields.SET_NULL
    )
    team = fields.ForeignKeyField(
        "identity.Team", related_name="recordings", null=True, on_delete=fields.SET_NULL
    )
    external_id = fields.CharField(max_length=64, unique=True)
    call_external_id = fields.CharField(max_length=64, null=True, db_index=True)
    account_id = fields.CharField(max_length=64, null=True)
    # pending -> stored, or failed / refused (error says why); expired once deleted.
    status = fields.CharField(max_length=16, default="pending")
    provider_status = fields.CharField(max_length=32, null=True)
    source_url = fields.CharField(max_length=1024, null=True)
    storage_key = fields.CharField(max_length=512, null=True)
    size_bytes = fields.BigIntField(null=True)
    duration_seconds = fields.IntField(null=True)
    channels = fields.SmallIntField(null=True)
    sha256 = fields.CharField(max_length=64, null=True)
    content_type = fields.CharField(max_length=64, null=True)
    expires_at = fields.DatetimeField(null=True, db_index=True)
    error = fields.CharField(max_length=64, null=True)
    attempts = fields.IntField(default=0)
    stored_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "recordings"

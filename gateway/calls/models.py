"""calls models (Tortoise app ``calls``): phone calls and their recordings, in terms any
telephony plugin can fill in. ``external_id`` is the provider's id for the call or the
recording, unique so that every webhook about it lands on the same row."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:  # annotations only: the models load as Tortoise apps
    from gateway.identity.models import Team


class Call(Model):
    """One phone call. Status only moves forward (see gateway.calls.status)."""

    id = fields.IntField(primary_key=True)
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "identity.Team", related_name="calls", null=True, on_delete=fields.SET_NULL
    )
    team_id: int | None
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
    call: fields.ForeignKeyNullableRelation[Call] = fields.ForeignKeyField(
        "calls.Call", related_name="recordings", null=True, on_delete=fields.SET_NULL
    )
    call_id: int | None
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "identity.Team", related_name="recordings", null=True, on_delete=fields.SET_NULL
    )
    team_id: int | None
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


class CallAnalysis(Model):
    """What a voice agent made of a call, in terms any agent plugin can fill in: the
    transcript, summary, outcome, evaluation and data collection, the variables the
    agent had, and the personalization it was given before the call (which arrives
    first, keyed by the telephony call id only).

    Found by the agent's ``conversation_id`` or the telephony ``call_sid`` (each unique
    when known), and joined to the :class:`Call` row through either, in whichever order
    they arrive (see gateway.calls.analysis)."""

    id = fields.IntField(primary_key=True)
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "identity.Team", related_name="call_analyses", null=True, on_delete=fields.SET_NULL
    )
    team_id: int | None
    call: fields.ForeignKeyNullableRelation[Call] = fields.ForeignKeyField(
        "calls.Call", related_name="analyses", null=True, on_delete=fields.SET_NULL
    )
    call_id: int | None
    provider = fields.CharField(max_length=64, null=True)  # the plugin that filled it
    conversation_id = fields.CharField(max_length=128, null=True, unique=True)
    call_sid = fields.CharField(max_length=64, null=True, unique=True)
    agent_id = fields.CharField(max_length=128, null=True, db_index=True)
    status = fields.CharField(max_length=32, null=True)  # the agent provider's, as sent
    direction = fields.CharField(max_length=16, null=True)
    from_number = fields.CharField(max_length=64, null=True)
    to_number = fields.CharField(max_length=64, null=True)
    # [{"role": "agent" | "user", "message": str | null, "offset_seconds": float}]
    transcript: fields.JSONField[list[Any]] = fields.JSONField(default=list)
    summary = fields.TextField(null=True)
    outcome = fields.CharField(max_length=16, null=True)  # success | failure | unknown
    # {criterion id: {"result", "rationale"}}
    evaluation: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    # {item id: {"value", "rationale"}}
    data_collection: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    duration_seconds = fields.IntField(null=True)
    cost = fields.FloatField(null=True)
    language = fields.CharField(max_length=32, null=True)
    dynamic_variables: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    started_at = fields.DatetimeField(null=True)
    analyzed_at = fields.DatetimeField(null=True)
    failure_reason = fields.CharField(max_length=128, null=True)  # as sent: busy, ...
    failed_at = fields.DatetimeField(null=True)
    # {"contact", "answered_by", "dynamic_variables", "overrides"}, see Personalization.
    personalization: fields.JSONField[dict[str, Any] | None] = fields.JSONField(null=True)
    personalized_at = fields.DatetimeField(null=True)
    audio: fields.ForeignKeyNullableRelation[Recording] = fields.ForeignKeyField(
        "calls.Recording", related_name="analyses", null=True, on_delete=fields.SET_NULL
    )
    audio_id: int | None
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "call_analyses"

"""The calls API's models, as ``/openapi.json`` shows them (see :mod:`gateway.calls.api`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from gateway.contract.admin_models import JobOut
from gateway.contract.models import Page, PageQuery
from gateway.inputs import INT4_MAX
from gateway.sync.api import EffectOut


class CallQuery(PageQuery):
    team_id: int | None = Field(None, ge=1, le=INT4_MAX, description="super admins: one team")
    from_: str | None = Field(
        None, alias="from", description="started at or after: a date or an ISO 8601 time"
    )
    to: str | None = Field(None, description="started at or before: a date or an ISO 8601 time")
    status: str | None = Field(None, description="the call's telephony status")
    outcome: str | None = Field(None, description="success, failure or unknown")
    number: str | None = Field(None, description="part of the caller's or the called number")
    agent: str | None = Field(None, description="the voice agent's id")


class CallOut(BaseModel):
    id: int
    team_id: int | None
    external_id: str
    direction: str | None
    from_number: str | None
    to_number: str | None
    status: str | None
    started_at: str | None
    answered_at: str | None
    ended_at: str | None
    duration_seconds: int | None
    agent_id: str | None
    conversation_id: str | None
    outcome: str | None
    summary: str | None
    created_at: str | None


CallPage = Page[CallOut]


class TimelineEvent(BaseModel):
    id: int
    source: str
    type: str
    status: str | None
    sequence: Any = None
    occurred_at: str | None
    received_at: str | None


class RecordingOut(BaseModel):
    id: int
    external_id: str | None
    status: str
    error: str | None
    duration_seconds: int | None
    channels: int | None
    size_bytes: int | None
    content_type: str | None
    sha256: str | None
    stored_at: str | None
    expires_at: str | None
    url: str | None = Field(description="the stream (range requests), when stored")


class AnalysisOut(BaseModel):
    id: int
    provider: str
    conversation_id: str | None
    agent_id: str | None
    status: str | None
    outcome: str | None
    summary: str | None
    transcript: list[Any]
    evaluation: dict[str, Any]
    data_collection: dict[str, Any]
    duration_seconds: int | None
    cost: Any = None
    language: str | None
    dynamic_variables: dict[str, Any]
    started_at: str | None
    analyzed_at: str | None
    failure_reason: str | None
    failed_at: str | None


class PersonalizationOut(BaseModel):
    at: str | None
    answered_by: str | None = Field(description="the plugin whose lookup answered")
    contact: Any = None
    dynamic_variables: dict[str, Any]
    overrides: dict[str, Any]


class Timeline(BaseModel):
    call: CallOut
    events: list[TimelineEvent]
    recordings: list[RecordingOut]
    analysis: AnalysisOut | None
    personalization: PersonalizationOut | None
    jobs: list[JobOut]
    effects: list[EffectOut]

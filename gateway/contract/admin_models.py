"""Response models of the operator routes (jobs, events, cron runs, health), for the
API contract. Shapes only: the views build the bodies."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from gateway.contract.models import Page, PageQuery
from gateway.inputs import INT4_MAX


class JobOut(BaseModel):
    id: int
    event_id: int | None
    team_id: int | None
    handler: str
    status: str
    attempts: int
    max_attempts: int
    run_at: str | None
    lease_until: str | None
    last_error: str | None
    history: list[Any]
    created_at: str | None
    finished_at: str | None


class JobQuery(PageQuery):
    team_id: int | None = Field(None, ge=1, le=INT4_MAX)
    status: str | None = None
    handler: str | None = None
    event_id: int | None = Field(None, ge=1)


class EventOut(BaseModel):
    id: int
    source: str
    type: str
    status: str
    team_id: int | None
    dedup_key: str | None
    phone_number: str | None
    agent_id: str | None
    occurred_at: str | None
    received_at: str | None


class EventDetail(EventOut):
    payload: Any = None
    jobs: list[JobOut]


class EventQuery(PageQuery):
    team_id: int | None = Field(None, ge=1, le=INT4_MAX)
    type: str | None = None
    status: str | None = None
    source: str | None = None


class Replayed(BaseModel):
    event_id: int
    jobs: list[JobOut]


class WebhookStats(BaseModel):
    """Counters per webhook source, and the group commit's."""

    model_config = {"extra": "allow"}
    group_commit: dict[str, Any]


class RunOut(BaseModel):
    id: int
    task: str
    window_start: str | None
    window_end: str | None
    attempt: int
    status: str
    forced: bool
    trigger: str | None
    started_at: str | None
    finished_at: str | None
    lease_until: str | None
    figures: Any = None
    detail: Any = None


class RunQuery(PageQuery):
    task: str | None = None
    status: str | None = None


class CronQuery(BaseModel):
    force: bool | None = Field(None, description="run the window again")


class CronAnswer(BaseModel):
    """200: the run's record when it finished now, or ``already_ran`` (with the earlier
    run's ``outcome``); 202: ``running``, still going in the background."""

    model_config = {"extra": "allow"}
    status: str
    run_id: int
    task: str
    window_start: str | None
    outcome: str | None = None


class Healthy(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    database_ms: float


class PluginsOut(BaseModel):
    plugins: list[dict[str, Any]]


class DebugDb(BaseModel):
    database: dict[str, Any]
    migrations: dict[str, Any]


JobPage = Page[JobOut]
EventPage = Page[EventOut]
RunPage = Page[RunOut]

"""The neutral voice events: typed payloads that voice-agent plugins emit and CRM,
report and console plugins subscribe to, without knowing which provider ran the call.

A handler reads one with ``VoiceCallAnalyzed.model_validate(ctx.event.payload)``. The
payloads stay small: the transcript stays in the analysis row
(:func:`gateway.calls.analysis.analysis_by_id` with ``analysis_id``, then
:func:`gateway.calls.analysis.turns`). docs/events.md lists them with the rest of the
catalogue; a test keeps the two in step.
"""

from __future__ import annotations

from datetime import date as Date
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from gateway.calls.analysis import OUTCOMES, call_for_analysis
from gateway.calls.models import Call, CallAnalysis
from gateway.events import EventPayload

ANALYZED = "voice.call.analyzed"
AUDIO_STORED = "voice.call.audio_stored"
INITIATION_FAILED = "voice.call.initiation_failed"
RECORDING_EXPIRED = "voice.recording.expired"
WEEKLY_REPORT_READY = "report.weekly.ready"


class EvaluationResult(BaseModel):
    result: str = Field("unknown", description='"success", "failure" or "unknown"')
    rationale: str | None = Field(None, description="why, in the agent's words")


class CollectedValue(BaseModel):
    value: Any = Field(None, description="any JSON value the agent collected")
    rationale: str | None = Field(None, description="why, in the agent's words")


class _VoiceCall(EventPayload):
    analysis_id: int | None = Field(None, description="the CallAnalysis row")
    conversation_id: str | None = Field(None, description="the agent provider's id")
    call_id: int | None = Field(None, description="the Call row, when already known")
    call_sid: str | None = Field(None, description="the telephony provider's call id")
    team_id: int | None = Field(None, description="the team (null: unrouted)")
    agent_id: str | None = Field(None, description="the voice agent's id")
    provider: str | None = Field(None, description="the plugin that reported it")


class VoiceCallAnalyzed(_VoiceCall):
    """``voice.call.analyzed``: the agent's analysis of a finished call is stored."""

    EVENT_TYPE = ANALYZED

    analysis_id: int = Field(description="the CallAnalysis row (transcript and all)")
    conversation_id: str = Field(description="the agent provider's id")
    direction: str | None = Field(None, description='"inbound" or "outbound"')
    from_number: str | None = Field(None, description="E.164 of the caller")
    to_number: str | None = Field(None, description="E.164 of the called party")
    started_at: datetime | None = Field(None, description="when the conversation started")
    duration_seconds: int | None = Field(None, description="length of the conversation")
    outcome: Literal["success", "failure", "unknown"] = Field(
        "unknown", description="the agent's verdict on the call"
    )
    summary: str | None = Field(None, description="the agent's summary of the call")
    data_collection: dict[str, CollectedValue] = Field(
        default_factory=dict, description="what the agent collected, by item id"
    )
    evaluation: dict[str, EvaluationResult] = Field(
        default_factory=dict, description="success criteria results, by criterion id"
    )
    language: str | None = Field(None, description="main language, e.g. en")
    transcript_turns: int = Field(0, description="turns in the analysis row's transcript")

    def dedup_key(self) -> str:
        return f"{ANALYZED}:{self.conversation_id}"


class VoiceCallAudioStored(_VoiceCall):
    """``voice.call.audio_stored``: the audio of a conversation is in the recording
    store."""

    EVENT_TYPE = AUDIO_STORED

    conversation_id: str = Field(description="the agent provider's id")
    recording_id: int | None = Field(None, description="the Recording row, if one was made")
    storage_key: str = Field(description="key in the recording store")
    content_type: str = Field("audio/mpeg", description="e.g. audio/mpeg")
    size_bytes: int | None = Field(None, description="size of the stored file")
    sha256: str | None = Field(None, description="hex digest of the stored file")

    def dedup_key(self) -> str:
        return f"{AUDIO_STORED}:{self.conversation_id}"


class VoiceCallInitiationFailed(_VoiceCall):
    """``voice.call.initiation_failed``: the agent could not start a call."""

    EVENT_TYPE = INITIATION_FAILED

    analysis_id: int = Field(description="the CallAnalysis row")
    failure_reason: str = Field(description="as the provider sent it: busy, no-answer, ...")
    direction: str | None = Field(None, description='"inbound" or "outbound"')
    from_number: str | None = Field(None, description="E.164 of the caller")
    to_number: str | None = Field(None, description="E.164 of the called party")
    failed_at: datetime | None = Field(None, description="when it failed")

    def dedup_key(self) -> str:
        key = self.conversation_id or self.call_sid or f"analysis:{self.analysis_id}"
        return f"{INITIATION_FAILED}:{key}"


class VoiceRecordingExpired(EventPayload):
    """``voice.recording.expired``: the gateway's copy of a recording was deleted at the
    end of its retention; the telephony plugin that made it may delete the provider's
    copy too."""

    EVENT_TYPE = RECORDING_EXPIRED

    recording_id: int = Field(description="the Recording row (now status expired)")
    external_id: str = Field(description="the provider's recording id, e.g. RE...")
    call_external_id: str | None = Field(None, description="the provider's call id")
    account_id: str | None = Field(None, description="the provider account it belongs to")
    team_id: int | None = Field(None, description="the team (null: unrouted)")

    def dedup_key(self) -> str:
        return f"{RECORDING_EXPIRED}:{self.external_id}"


class OutcomeCount(BaseModel):
    outcome: str = Field(description='"success", "failure" or "unknown"')
    count: int = Field(description="analyzed calls with this outcome")


class DayCalls(BaseModel):
    date: Date = Field(description="team-local date (YYYY-MM-DD)")
    calls: int = Field(description="calls started that day")


class WeeklyReportReady(EventPayload):
    """``report.weekly.ready``: a team's weekly figures, once per team and week, for
    plugins that post team notifications."""

    EVENT_TYPE = WEEKLY_REPORT_READY

    team_id: int = Field(description="the team")
    team_name: str = Field(description="the team's name")
    time_zone: str = Field(description="IANA zone the dates are in, e.g. Europe/Berlin")
    period_start: Date = Field(description="first team-local day reported (YYYY-MM-DD)")
    period_end: Date = Field(description="last team-local day reported (7 days in all)")
    calls: int = Field(description="calls in the period")
    previous_calls: int = Field(description="calls in the 7 days before it")
    answered: int = Field(description="calls answered")
    success_rate: float | None = Field(
        description="successes / analyzed calls, 0..1 (null: none analyzed)"
    )
    meetings_booked: int = Field(description="analyzed calls whose agent booked a meeting")
    total_duration_seconds: int = Field(description="summed call duration")
    top_outcomes: list[OutcomeCount] = Field(description="most frequent outcomes first")
    days: list[DayCalls] = Field(description="calls per team-local day, oldest first")

    def dedup_key(self) -> str:
        return f"{WEEKLY_REPORT_READY}:{self.team_id}:{self.period_start}:{self.period_end}"


# The neutral events, for docs/events.md and its test.
CATALOGUE: dict[str, type[EventPayload]] = {
    ANALYZED: VoiceCallAnalyzed,
    AUDIO_STORED: VoiceCallAudioStored,
    INITIATION_FAILED: VoiceCallInitiationFailed,
    RECORDING_EXPIRED: VoiceRecordingExpired,
    WEEKLY_REPORT_READY: WeeklyReportReady,
}


def _items(data: dict[str, Any] | None, model: type[BaseModel]) -> dict[str, Any]:
    """``{id: model}`` from what the provider stored, leniently (a bare value is the
    value; unknown keys are dropped)."""
    out: dict[str, Any] = {}
    for key, item in (data or {}).items():
        if not isinstance(item, dict):
            item = {"value": item} if model is CollectedValue else {"result": str(item)}
        out[str(key)] = model.model_validate(item)
    return out


def _numbers(analysis: CallAnalysis, call: Call | None) -> dict[str, Any]:
    """Direction and numbers: the call row's (the telephony side knows best), else the
    analysis's own."""

    def pick(name: str) -> Any:
        value = getattr(call, name, None) if call is not None else None
        return value if value is not None else getattr(analysis, name)

    return {name: pick(name) for name in ("direction", "from_number", "to_number")}


def _ids(analysis: CallAnalysis, call: Call | None) -> dict[str, Any]:
    return {
        "analysis_id": analysis.id,
        "conversation_id": analysis.conversation_id,
        "call_id": call.id if call is not None else None,
        "call_sid": analysis.call_sid or (call.external_id if call is not None else None),
        "team_id": analysis.team_id,
        "agent_id": analysis.agent_id,
        "provider": analysis.provider,
    }


async def analyzed_event(analysis: CallAnalysis, *, using_db: Any = None) -> VoiceCallAnalyzed:
    """The ``voice.call.analyzed`` payload of a stored analysis (call row joined)."""
    call = await call_for_analysis(analysis, using_db=using_db)
    started = analysis.started_at or (call.started_at if call is not None else None)
    outcome = analysis.outcome if analysis.outcome in OUTCOMES else "unknown"
    return VoiceCallAnalyzed(
        **_ids(analysis, call),
        **_numbers(analysis, call),
        started_at=started,
        duration_seconds=analysis.duration_seconds,
        outcome=outcome,
        summary=analysis.summary,
        data_collection=_items(analysis.data_collection, CollectedValue),
        evaluation=_items(analysis.evaluation, EvaluationResult),
        language=analysis.language,
        transcript_turns=len(analysis.transcript or []),
    )


async def initiation_failed_event(
    analysis: CallAnalysis, *, using_db: Any = None
) -> VoiceCallInitiationFailed:
    """The ``voice.call.initiation_failed`` payload of a recorded failure."""
    call = await call_for_analysis(analysis, using_db=using_db)
    return VoiceCallInitiationFailed(
        **_ids(analysis, call),
        **_numbers(analysis, call),
        failure_reason=analysis.failure_reason or "unknown",
        failed_at=analysis.failed_at,
    )

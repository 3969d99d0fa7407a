"""Voice calls and their recordings, provider-neutral.

:mod:`gateway.calls.models` holds the rows, :mod:`gateway.calls.status` the status
precedence that keeps out-of-order callbacks from moving a call backwards, and
:mod:`gateway.calls.recordings` the recording rows and their retention.
"""

from __future__ import annotations

from gateway.calls.analysis import (
    OUTCOMES,
    AnalysisUpdate,
    InitiationFailure,
    Personalization,
    TranscriptTurn,
    analysis_by_call_sid,
    analysis_by_conversation,
    analysis_by_id,
    analysis_for_call,
    attach_audio,
    call_for_analysis,
    record_initiation_failure,
    record_personalization,
    record_personalizations,
    turns,
    upsert_analysis,
)
from gateway.calls.events import (
    ANALYZED,
    AUDIO_STORED,
    INITIATION_FAILED,
    RECORDING_EXPIRED,
    WEEKLY_REPORT_READY,
    DayCalls,
    OutcomeCount,
    VoiceCallAnalyzed,
    VoiceCallAudioStored,
    VoiceCallInitiationFailed,
    VoiceRecordingExpired,
    WeeklyReportReady,
    analyzed_event,
    initiation_failed_event,
)
from gateway.calls.models import Call, CallAnalysis, Recording
from gateway.calls.recordings import RecordingUpdate, expiry, upsert_recording
from gateway.calls.status import TERMINAL, CallUpdate, upsert_call, upsert_calls

__all__ = [
    "ANALYZED",
    "AUDIO_STORED",
    "INITIATION_FAILED",
    "OUTCOMES",
    "RECORDING_EXPIRED",
    "TERMINAL",
    "WEEKLY_REPORT_READY",
    "AnalysisUpdate",
    "Call",
    "CallAnalysis",
    "CallUpdate",
    "DayCalls",
    "InitiationFailure",
    "OutcomeCount",
    "Personalization",
    "Recording",
    "RecordingUpdate",
    "TranscriptTurn",
    "VoiceCallAnalyzed",
    "VoiceCallAudioStored",
    "VoiceCallInitiationFailed",
    "VoiceRecordingExpired",
    "WeeklyReportReady",
    "analysis_by_call_sid",
    "analysis_by_conversation",
    "analysis_by_id",
    "analysis_for_call",
    "analyzed_event",
    "attach_audio",
    "call_for_analysis",
    "expiry",
    "initiation_failed_event",
    "record_initiation_failure",
    "record_personalization",
    "record_personalizations",
    "turns",
    "upsert_analysis",
    "upsert_call",
    "upsert_calls",
    "upsert_recording",
]

"""A small voice-agent plugin for the call-analysis tests: a signed JSON webhook shaped
like a post-call webhook (``post_call_transcription``, ``call_initiation_failure``), whose
``apply`` fills the neutral analysis and emits the neutral event in the same
transaction, and a CRM-like handler subscribed to ``voice.call.analyzed``.

It is what a real agent plugin does, minus the provider's signature scheme.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway import hookimpl
from gateway.calls.analysis import (
    AnalysisUpdate,
    InitiationFailure,
    TranscriptTurn,
    record_initiation_failure,
    upsert_analysis,
)
from gateway.calls.events import (
    VoiceCallAnalyzed,
    VoiceCallInitiationFailed,
    analyzed_event,
    initiation_failed_event,
)
from gateway.errors import ValidationError
from gateway.events import EventHandler, JobContext
from gateway.webhooks.source import ApplyContext, ParsedEvent, WebhookRequest, WebhookSource

NAME = "voice_agent"
SECRET = b"agent-webhook-secret-0123456789"
PATH = "/api/webhooks/agent/post-call"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "voice_agent"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def signed(payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    sig = hmac.new(SECRET, b"https://gateway.test" + PATH.encode() + body, hashlib.sha256)
    return body, {"Content-Type": "application/json", "X-Agent-Signature": sig.hexdigest()}


def _when(unix: Any) -> datetime | None:
    return datetime.fromtimestamp(int(unix), UTC) if unix is not None else None


def analysis_update(data: dict[str, Any], team_id: int | None) -> AnalysisUpdate:
    meta = data.get("metadata") or {}
    phone = meta.get("phone_call") or {}
    analysis = data.get("analysis") or {}
    inbound = phone.get("direction", "inbound") == "inbound"
    ours, theirs = phone.get("agent_number"), phone.get("external_number")
    client = data.get("conversation_initiation_client_data") or {}
    return AnalysisUpdate(
        conversation_id=data["conversation_id"],
        call_sid=phone.get("call_sid"),
        provider=NAME,
        team_id=team_id,
        agent_id=data.get("agent_id"),
        status=data.get("status"),
        direction=phone.get("direction"),
        from_number=theirs if inbound else ours,
        to_number=ours if inbound else theirs,
        transcript=[
            TranscriptTurn(
                role=t["role"], message=t.get("message"), offset_seconds=t.get("time_in_call_secs")
            )
            for t in data.get("transcript") or []
        ],
        summary=analysis.get("transcript_summary"),
        outcome=analysis.get("call_successful"),
        evaluation=analysis.get("evaluation_criteria_results"),
        data_collection=analysis.get("data_collection_results"),
        duration_seconds=meta.get("call_duration_secs"),
        cost=meta.get("cost"),
        language=meta.get("main_language"),
        dynamic_variables=client.get("dynamic_variables"),
        started_at=_when(meta.get("start_time_unix_secs")),
    )


class AgentPlugin:
    """Register with ``make_app(extra_plugins=[("voice_agent", AgentPlugin())])``."""

    __test__ = False

    def __init__(self) -> None:
        self.analyzed: list[VoiceCallAnalyzed] = []
        self.failed: list[VoiceCallInitiationFailed] = []

    def verify(self, req: WebhookRequest) -> bool:
        expected = hmac.new(SECRET, req.public_url.encode() + req.body, hashlib.sha256)
        return hmac.compare_digest(req.headers.get("X-Agent-Signature", ""), expected.hexdigest())

    def parse(self, req: WebhookRequest) -> list[ParsedEvent]:
        try:
            body = req.json()
            kind, data = body["type"], body["data"]
        except (ValueError, KeyError, TypeError):
            raise ValidationError("bad body") from None
        key = data.get("conversation_id") or json.dumps(data, sort_keys=True)
        return [
            ParsedEvent(
                type=f"{NAME}.{kind}",
                dedup_key=f"{kind}:{key}",
                payload=body,
                agent_id=data.get("agent_id"),
                occurred_at=_when(body.get("event_timestamp")),
            )
        ]

    async def apply(self, ctx: ApplyContext) -> None:
        body, conn = ctx.event.payload, ctx.connection
        data = body["data"]
        team_id = ctx.team.id if ctx.team is not None else None
        now = ctx.clock.now()
        if body["type"] == "post_call_transcription":
            row = await upsert_analysis(analysis_update(data, team_id), using_db=conn, now=now)
            await ctx.emit(await analyzed_event(row, using_db=conn))
        elif body["type"] == "call_initiation_failure":
            provider_body = (data.get("metadata") or {}).get("body") or {}
            failure = InitiationFailure(
                failure_reason=data.get("failure_reason") or "unknown",
                at=ctx.event.occurred_at or now,
                conversation_id=data.get("conversation_id"),
                call_sid=provider_body.get("CallSid"),
                provider=NAME,
                team_id=team_id,
                agent_id=data.get("agent_id"),
                from_number=provider_body.get("From"),
                to_number=provider_body.get("To"),
                dynamic_variables=(data.get("conversation_initiation_client_data") or {}).get(
                    "dynamic_variables"
                ),
            )
            row = await record_initiation_failure(failure, using_db=conn, now=now)
            await ctx.emit(await initiation_failed_event(row, using_db=conn))

    async def crm_log_call(self, ctx: JobContext) -> None:
        self.analyzed.append(VoiceCallAnalyzed.model_validate(ctx.event.payload))

    async def crm_log_failure(self, ctx: JobContext) -> None:
        self.failed.append(VoiceCallInitiationFailed.model_validate(ctx.event.payload))

    @hookimpl
    def register_webhook_sources(self, config: Any) -> list[WebhookSource]:
        return [
            WebhookSource(
                name=f"{NAME}.post_call",
                path="agent/post-call",
                verify=self.verify,
                parse=self.parse,
                apply=self.apply,
                form=False,
            )
        ]

    @hookimpl
    def register_event_handlers(self, config: Any) -> list[EventHandler]:
        return [
            EventHandler("crm.log_call", (VoiceCallAnalyzed.EVENT_TYPE,), self.crm_log_call),
            EventHandler(
                "crm.log_failure", (VoiceCallInitiationFailed.EVENT_TYPE,), self.crm_log_failure
            ),
        ]

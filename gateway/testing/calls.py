"""Analyzed calls for tests: an analysis row (with a transcript) and its
``voice.call.analyzed`` event, stored as a voice-agent plugin stores them; what a CRM or
calendar plugin reacts to."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tortoise.transactions import in_transaction

from gateway.calls import AnalysisUpdate, TranscriptTurn, analyzed_event, upsert_analysis
from gateway.events import emit_event

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
CALLER = "+14155550199"
AGENT_NUMBER = "+14155550100"
RATIONALE = "said so"  # why the agent collected each value
SECRET_WORDS = "my card number is 4111 1111 1111 1111"  # must never reach a log line


async def analyzed_call(
    app: Any,
    team_id: int,
    conversation_id: str = "conv_1",
    *,
    caller: str = CALLER,
    direction: str = "inbound",
    summary: str = "Asked about pricing <b>& plans</b>.",
    outcome: str = "success",
    collected: dict[str, Any] | None = None,
    personalization: dict[str, Any] | None = None,
    source: str = "voice_agent",
) -> Any:
    """Store an analysis and emit its event (as a voice-agent plugin would). Returns the
    :class:`gateway.events.Emitted`.

    :param collected: the agent's data collection, ``{key: value}`` (stored as
        ``{key: {"value": value, "rationale": RATIONALE}}``), say a meeting's start.
    :param source: the webhook source the event is recorded under."""
    collection = (collected or {}).items()
    update = AnalysisUpdate(
        conversation_id=conversation_id,
        provider="voice_agent",
        team_id=team_id,
        agent_id="agent_1",
        direction=direction,
        from_number=caller if direction == "inbound" else AGENT_NUMBER,
        to_number=AGENT_NUMBER if direction == "inbound" else caller,
        transcript=[
            TranscriptTurn(role="agent", message="Hello, Acme here.", offset_seconds=0),
            TranscriptTurn(role="user", message=SECRET_WORDS, offset_seconds=2.5),
        ],
        summary=summary,
        outcome=outcome,
        data_collection={k: {"value": v, "rationale": RATIONALE} for k, v in collection},
        duration_seconds=62,
        started_at=T0,
    )
    async with in_transaction() as conn:
        row = await upsert_analysis(update, using_db=conn, now=T0)
        if personalization is not None:
            row.personalization = personalization
            await row.save(using_db=conn, update_fields=["personalization"])
        payload = await analyzed_event(row, using_db=conn)
    return await emit_event(app, source=source, payload=payload, team_id=team_id)

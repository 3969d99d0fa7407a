"""Reconciliation: nothing lost even when ElevenLabs gives up on a webhook.

ElevenLabs retries only ``post_call_transcription``, only when retries are enabled, for
about 40 minutes, and disables a webhook after 10 straight failures
(https://elevenlabs.io/docs/eleven-api/resources/webhooks). So, for every registered
voice agent (of every team), this lists the conversations started since a point in
time (:mod:`plugins.elevenlabs.api`), and for each finished one whose transcription the
gateway never stored, fetches it and feeds it through the webhook's own path:
:func:`plugins.elevenlabs.events.parse_envelope` and the ingestion transaction of the
``elevenlabs.webhook`` source (same dedup key, same ``apply``: the analysis and
``voice.call.analyzed``). A webhook arriving later is then a duplicate, and a
conversation the webhook delivered is skipped here.

Run hourly as the scheduled task ``elevenlabs-reconcile`` and on demand with
``gateway elevenlabs reconcile [--since ISO | --hours N]``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import aiohttp

from gateway import get_gateway
from gateway.errors import ValidationError
from gateway.identity import VoiceAgent
from gateway.webhooks import Delivery, WebhookEvent, notify, store_batch
from gateway.webhooks import dedup_key as stored_key
from plugins.elevenlabs.analysis import TRANSCRIPTION, integer
from plugins.elevenlabs.api import ConversationsApi
from plugins.elevenlabs.events import dedup_key, parse_envelope
from plugins.elevenlabs.settings import SOURCE_NAME, load_quietly

log = logging.getLogger("gateway.plugins.elevenlabs")

# Conversations in these states are over: their post-call data will not change. The
# others (initiated, in-progress, processing) are left for a later run.
FINISHED = frozenset({"done", "failed"})


class NotConfigured(Exception):
    """No ``api_key``: the API cannot be read."""


@dataclass
class Report:
    since: str
    agents: int = 0
    listed: int = 0  # conversations the API listed
    unfinished: int = 0  # still in progress or processing: left for a later run
    already_stored: int = 0  # their webhook (or an earlier run) stored them
    imported: int = 0  # stored now: new analyses
    gone: int = 0  # listed, but no longer fetchable or not usable (logged)
    waited_seconds: float = 0.0  # waiting out the API's 429s

    def figures(self) -> dict[str, Any]:
        return asdict(self)


def _key(conversation_id: str) -> str:
    return stored_key(dedup_key(TRANSCRIPTION, conversation_id, {}))


async def _stored(conversation_ids: list[str]) -> set[str]:
    """The conversations whose transcription delivery is already stored."""
    if not conversation_ids:
        return set()
    keys = {_key(c): c for c in conversation_ids}
    found: list[Any] = await WebhookEvent.filter(
        source=SOURCE_NAME, dedup_key__in=list(keys)
    ).values_list("dedup_key", flat=True)
    return {keys[k] for k in found}


def _envelope(conversation: dict[str, Any]) -> dict[str, Any]:
    """The webhook envelope this conversation's delivery would have been. Its time is
    when the call ended; ``reconciled`` tells an operator where it came from."""
    meta = conversation.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    start, duration = (
        integer(meta.get("start_time_unix_secs")),
        integer(meta.get("call_duration_secs")),
    )
    envelope: dict[str, Any] = {"type": TRANSCRIPTION, "data": conversation, "reconciled": True}
    if start is not None:
        envelope["event_timestamp"] = start + (duration or 0)
    return envelope


async def reconcile(app: Any, *, since: datetime, http: aiohttp.ClientSession) -> Report:
    """Store every finished conversation since ``since`` that the gateway lacks.

    :raises NotConfigured: no ``api_key``.
    :raises plugins.elevenlabs.api.ApiError: the API refused or kept failing.
    """
    gw = get_gateway(app)
    settings = load_quietly(gw.config)
    if settings.api_key is None or not settings.api_key.get_secret_value():
        raise NotConfigured("[plugins.elevenlabs] api_key is not configured")
    api = ConversationsApi(
        http,
        base_url=settings.api_base_url,
        api_key=settings.api_key.get_secret_value(),
        clock=gw.clock,
        timeout_seconds=settings.api_timeout_seconds,
    )
    source = gw.registry("register_webhook_sources")[SOURCE_NAME]
    report = Report(since=since.isoformat())
    agent_ids: list[str] = await VoiceAgent.all().values_list("agent_id", flat=True)  # type: ignore[assignment]
    agents = sorted(set(agent_ids))
    report.agents = len(agents)
    for agent_id in agents:
        async for page in api.conversations(agent_id, int(since.timestamp())):
            report.listed += len(page)
            finished = []
            for item in page:
                cid = item.get("conversation_id")
                if not isinstance(cid, str) or not 0 < len(cid) <= 128:
                    report.gone += 1
                elif item.get("status") not in FINISHED:
                    report.unfinished += 1
                else:
                    finished.append(cid)
            stored = await _stored(finished)
            report.already_stored += len(stored)
            for cid in finished:
                if cid not in stored:
                    await _import(app, api, source, cid, report)
    report.waited_seconds = api.waited
    log.info("elevenlabs reconcile: %s", report.figures())
    return report


async def _import(app: Any, api: ConversationsApi, source: Any, cid: str, report: Report) -> None:
    gw = get_gateway(app)
    conversation = await api.conversation(cid)
    if conversation is None:
        log.warning("elevenlabs reconcile: conversation %s is listed but not found", cid)
        report.gone += 1
        return
    if conversation.get("status") not in FINISHED:
        report.unfinished += 1
        return
    try:
        event = parse_envelope(_envelope(conversation), gw.clock.now())
    except ValidationError as exc:
        log.warning("elevenlabs reconcile: conversation %s not usable: %s", cid, exc)
        report.gone += 1
        return
    if event.dedup_key != dedup_key(TRANSCRIPTION, cid, {}):  # it names another id
        log.warning("elevenlabs reconcile: conversation %s came back as another id", cid)
        report.gone += 1
        return
    [stored] = await store_batch([Delivery(source, [event])], gw)
    if stored.new:
        report.imported += 1
    else:  # a webhook arrived in the meantime
        report.already_stored += 1
    if stored.queued:
        notify(app)

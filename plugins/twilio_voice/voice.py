"""The incoming-call webhook: record the call, then answer TwiML that connects the
caller to the team's voice agent.

Twilio waits at most 15 s for this answer and plays an application error on anything
but TwiML, so every failure (unknown number, no agent, the agent API down or slow)
becomes a polite ``<Say>`` and a hangup, never an error page.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from quart import Response
from twilio.twiml.voice_response import Connect, Stream, VoiceResponse

from gateway.calls import CallUpdate, upsert_call
from gateway.identity import PhoneNumber, VoiceAgent
from gateway.webhooks import ApplyContext, ParsedEvent, WebhookRequest
from plugins.twilio_voice import params as p
from plugins.twilio_voice.settings import TwilioVoiceSettings

log = logging.getLogger("gateway.plugins.twilio_voice")

EVENT_TYPE = "voice.call.incoming"
REGISTER_CALL_PATH = "/v1/convai/twilio/register-call"


def parse(req: WebhookRequest) -> list[ParsedEvent]:
    form = req.form
    p.check(form)
    call_sid = p.sid(form, "CallSid", "CA")
    return [
        ParsedEvent(
            type=EVENT_TYPE,
            # Twilio retries the Voice URL on timeouts: the call is the identity.
            dedup_key=call_sid,
            payload=p.payload(form),
            phone_number=p.team_number(form),
            occurred_at=req.received_at,
        )
    ]


async def first_agent(team_id: int, using_db: Any = None) -> str | None:
    query = VoiceAgent.filter(team_id=team_id).order_by("id")
    if using_db is not None:
        query = query.using_db(using_db)
    agent = await query.first()
    return agent.agent_id if agent else None


async def apply(ctx: ApplyContext) -> None:
    form = ctx.event.payload
    team_id = ctx.team.id if ctx.team is not None else None
    await upsert_call(
        CallUpdate(
            external_id=form["CallSid"],
            status=form.get("CallStatus") or "ringing",
            at=ctx.event.occurred_at or ctx.clock.now(),
            team_id=team_id,
            account_id=form.get("AccountSid"),
            direction=form.get("Direction") or "inbound",
            from_number=p.caller(form),
            to_number=p.called(form),
            agent_id=await first_agent(team_id, ctx.connection) if team_id else None,
        ),
        using_db=ctx.connection,
        now=ctx.clock.now(),
    )


def twiml(body: str) -> Response:
    return Response(body, status=200, content_type="text/xml; charset=utf-8")


def goodbye(message: str, language: str) -> Response:
    response = VoiceResponse()
    response.say(message, language=language)
    response.hangup()
    return twiml(str(response))


def stream_twiml(url: str, agent_id: str, team_id: int, form: Any) -> Response:
    stream = Stream(url=url)
    # Custom parameters reach the media-stream consumer in its "start" message.
    for name, value in (
        ("agent_id", agent_id),
        ("team_id", str(team_id)),
        ("call_sid", form.get("CallSid", "")),
        ("from", form.get("From", "")),
        ("to", form.get("To", "")),
    ):
        stream.parameter(name=name, value=value)
    connect = Connect()
    connect.append(stream)
    response = VoiceResponse()
    response.append(connect)
    return twiml(str(response))


async def register_call(
    http: aiohttp.ClientSession, settings: TwilioVoiceSettings, agent_id: str, form: Any
) -> str | None:
    """Ask the agent provider to take the call; its answer is the TwiML to return."""
    assert settings.agent_api_key is not None
    body = {
        "agent_id": agent_id,
        "from_number": p.caller(form) or "",
        "to_number": p.called(form) or "",
        "direction": "inbound",
    }
    try:
        async with asyncio.timeout(settings.agent_api_timeout_seconds):
            async with http.post(
                settings.agent_api_base_url + REGISTER_CALL_PATH,
                json=body,
                headers={"xi-api-key": settings.agent_api_key.get_secret_value()},
                allow_redirects=False,
            ) as resp:
                text = await resp.text()
                if resp.status != 200:
                    log.warning("register-call answered %s for agent %s", resp.status, agent_id)
                    return None
    except (TimeoutError, aiohttp.ClientError) as exc:
        log.warning("register-call failed for agent %s: %s", agent_id, type(exc).__name__)
        return None
    if "<Response" not in text:
        log.warning("register-call for agent %s did not answer TwiML", agent_id)
        return None
    return text


def make_respond(settings: TwilioVoiceSettings) -> Any:
    async def respond(req: WebhookRequest, events: Any = (), teams: Any = ()) -> Response:
        try:
            return await _answer(settings, req, list(teams or ()))
        except Exception:  # the caller must hear words, whatever broke
            log.exception("voice answer failed; playing the unavailable message")
            return goodbye(settings.unavailable_message, settings.voice_language)

    return respond


async def number_team_id(req: WebhookRequest) -> int | None:
    """The team owning the request's team-side number (see ``params.team_number``)."""
    number = p.team_number(req.form)
    row = await PhoneNumber.filter(number=number).first() if number else None
    return row.team_id if row else None


async def _answer(settings: TwilioVoiceSettings, req: WebhookRequest, teams: list) -> Response:
    form = req.form
    team = teams[0] if teams else None
    team_id = getattr(team, "id", None)
    if team_id is None:
        # The engine may not hand us the team; the number is authoritative anyway.
        team_id = await number_team_id(req)
    if team_id is None:
        return goodbye(settings.unknown_number_message, settings.voice_language)
    agent_id = await first_agent(team_id)
    if agent_id is None or settings.voice_mode is None:
        return goodbye(settings.unavailable_message, settings.voice_language)
    if settings.voice_mode == "stream":
        assert settings.stream_url is not None
        return stream_twiml(settings.stream_url, agent_id, team_id, form)
    from gateway import get_gateway

    http = get_gateway().http
    answer = await register_call(http, settings, agent_id, form) if http else None
    if answer is None:
        return goodbye(settings.unavailable_message, settings.voice_language)
    return twiml(answer)

"""The sync engine: logs every analyzed call in each connected CRM, exactly once.

One job per (``voice.call.analyzed`` event, CRM), handler ``<crm>.log_call``:

1. the team has no connection to the CRM's provider: the ledger says ``skipped: not
   connected`` and the job completes; ``needs_reconnect``: the ledger says ``failed``
   and the job is dead-lettered with a reason an admin reads in the job list (the
   integration's status shows ``needs_reconnect`` too);
2. the ledger row ``(analysis:<id>, <crm>, log_call)`` is claimed; already ``done``: the
   job completes (a retry, a duplicate, a replay);
3. an earlier attempt sent the create request and died before recording the answer:
   the CRM is searched by the idempotency marker first (after ``search_lag_seconds``);
4. the contact: remembered by an earlier attempt, else the one the personalization
   lookup found in this CRM, else ``find_contact``, else ``create_contact`` (its own
   ledger row, so a contact is never created twice either);
5. a rate-limit slot is taken, the row is committed as ``sent``, ``log_call`` runs, and
   the CRM's id and link are committed before the job completes.
"""

from __future__ import annotations

import logging
from typing import Any

from gateway.calls.analysis import analysis_by_id, turns
from gateway.calls.events import ANALYZED, VoiceCallAnalyzed
from gateway.events import EventHandler, JobContext, PermanentFailure, RetryLater
from gateway.oauth.models import OAuthConnection
from gateway.oauth.tokens import NotConnected, ReconnectRequired
from gateway.sync import ledger
from gateway.sync.contract import CRM, CallToLog, Contact, CRMRequest, Skip
from gateway.sync.session import ProviderSession

log = logging.getLogger("gateway.sync")

NOT_CONNECTED = "not connected"


def request_for(app: Any, crm: CRM, team_id: int, connection: OAuthConnection) -> CRMRequest:
    """The :class:`CRMRequest` of a team's connection: a rate-limited session keyed by
    the provider account (two teams on one portal share its limit)."""
    account = dict(connection.account_data or {})
    api = ProviderSession(
        app,
        team_id,
        crm.provider,
        base_url=crm.base_url,  # a callable is read from the connection, again after refresh
        limits=crm.rate_limits,
        limit_key=f"{crm.provider}:{connection.account_id or f'team{team_id}'}",
        token_rejected=crm.token_rejected,
    )
    return CRMRequest(api=api, team_id=team_id, account=account, app=app)


def needs_reconnect_reason(crm: CRM, connection: OAuthConnection | None = None) -> str:
    why = f" ({connection.last_error})" if connection is not None and connection.last_error else ""
    return f"{crm.display_name} needs to be connected again by a team admin{why}"


def call_to_log(payload: VoiceCallAnalyzed, analysis: Any, marker: str) -> CallToLog:
    direction = payload.direction or (analysis.direction if analysis is not None else None)
    outbound = direction == "outbound"
    customer = payload.to_number if outbound else payload.from_number
    agent = payload.from_number if outbound else payload.to_number
    return CallToLog(
        analysis_id=payload.analysis_id,
        conversation_id=payload.conversation_id,
        marker=marker,
        direction=direction,
        customer_number=customer,
        agent_number=agent,
        from_number=payload.from_number,
        to_number=payload.to_number,
        started_at=payload.started_at,
        duration_seconds=payload.duration_seconds,
        outcome=payload.outcome,
        summary=payload.summary,
        transcript=tuple(turns(analysis)) if analysis is not None else (),
        data_collection={k: v.value for k, v in payload.data_collection.items()},
        agent_id=payload.agent_id,
    )


def _lag_left(crm: CRM, effect: ledger.EffectHandle, now: Any) -> float:
    if not crm.search_lag_seconds or effect.sent_at is None:
        return 0.0
    return crm.search_lag_seconds - (now - effect.sent_at).total_seconds()


async def _contact(
    ctx: JobContext,
    crm: CRM,
    req: CRMRequest,
    call: CallToLog,
    effect: ledger.EffectHandle,
    analysis: Any,
) -> Contact | None:
    remembered = effect.data.get("contact_id")
    if remembered:
        return Contact(id=str(remembered))
    personalized = ((analysis.personalization if analysis else None) or {}).get("contact") or {}
    if personalized.get("source") == crm.name and personalized.get("id"):
        await effect.remember(contact_id=str(personalized["id"]))
        return Contact(id=str(personalized["id"]))
    if not call.customer_number:
        return None
    contact = await crm.find_contact(req, call.customer_number)
    if contact is None and crm.create_contact is not None:
        contact = await _create_contact(ctx, crm, req, call)
    if contact is not None:
        await effect.remember(contact_id=contact.id)
    return contact


async def _create_contact(
    ctx: JobContext, crm: CRM, req: CRMRequest, call: CallToLog
) -> Contact | None:
    create = crm.create_contact
    assert create is not None
    subject = ledger.analysis_subject(call.analysis_id)
    async with ledger.effect(
        ctx.app, subject=subject, plugin=crm.name, action="create_contact", team_id=req.team_id
    ) as effect:
        if effect.done:
            return Contact(id=effect.provider_id or "", url=effect.url)
        if effect.sent:  # created by an attempt that died? the phone search says
            if _lag_left(crm, effect, ctx.clock.now()) > 0:
                raise RetryLater(_lag_left(crm, effect, ctx.clock.now()), count_attempt=False)
            found = await crm.find_contact(req, call.customer_number or "")
            if found is not None:
                await effect.created(found.id, found.url)
                return found
        await req.api.ready()
        try:
            contact = await effect.send(req.api, lambda: create(req, call))
        except Skip as skip:
            await effect.skip(skip.reason)
            return None
        if contact is None:
            await effect.skip("the team's settings do not create contacts")
            return None
        await effect.created(contact.id, contact.url)
        return contact


async def log_call(crm: CRM, ctx: JobContext) -> None:
    """The ``<crm>.log_call`` handler (see the module docstring)."""
    payload = VoiceCallAnalyzed.model_validate(ctx.event.payload)
    team_id = payload.team_id or ctx.event.team_id
    if team_id is None:
        return  # an unrouted call belongs to no team, so to no CRM
    subject = ledger.analysis_subject(payload.analysis_id)
    connection = await OAuthConnection.get_or_none(team_id=team_id, provider=crm.provider)
    req = None
    if connection is not None and connection.status != "needs_reconnect":
        req = request_for(ctx.app, crm, team_id, connection)
        # While the provider's limit is full, waiting jobs cost no ledger writes (a
        # backlog of hundreds is deferred again every window).
        await req.api.ready()
    async with ledger.effect(
        ctx.app, subject=subject, plugin=crm.name, action="log_call", team_id=team_id
    ) as effect:
        if effect.done:
            return
        if connection is None:
            await effect.skip(NOT_CONNECTED)
            return
        if connection.status == "needs_reconnect":
            reason = needs_reconnect_reason(crm, connection)
            await effect.fail(reason)
            raise PermanentFailure(reason)
        assert req is not None
        try:
            await _log(ctx, crm, payload, effect, req)
        except NotConnected:
            await effect.skip(NOT_CONNECTED)  # disconnected while the job ran
        except ReconnectRequired:
            reason = needs_reconnect_reason(crm)
            await effect.fail(reason)
            raise PermanentFailure(reason) from None
        except Skip as skip:
            await effect.skip(skip.reason)
        except PermanentFailure as exc:
            await effect.fail(str(exc))
            raise


async def _log(
    ctx: JobContext,
    crm: CRM,
    payload: VoiceCallAnalyzed,
    effect: ledger.EffectHandle,
    req: CRMRequest,
) -> None:
    analysis = await analysis_by_id(payload.analysis_id)
    call = call_to_log(payload, analysis, effect.marker)
    if effect.sent:
        wait = _lag_left(crm, effect, ctx.clock.now())
        if wait > 0:  # the record may exist and not be searchable yet
            raise RetryLater(wait, "waiting for the CRM's search to catch up", count_attempt=False)
        found = await crm.find_logged_call(req, call)
        if found is not None:
            log.info("%s: call of analysis %s found by its marker", crm.name, call.analysis_id)
            await effect.created(found.id, found.url)
            return
    contact = await _contact(ctx, crm, req, call, effect, analysis)
    await req.api.ready()  # a full limiter reschedules before anything is marked sent
    logged = await effect.send(req.api, lambda: crm.log_call(req, call, contact))
    await effect.created(logged.id, logged.url)
    log.info("%s: logged the call of analysis %s as %s", crm.name, call.analysis_id, logged.id)


def handlers_for(crms: dict[str, CRM]) -> list[EventHandler]:
    """One ``<crm>.log_call`` handler per registered CRM."""

    def bind(crm: CRM) -> Any:
        async def handler(ctx: JobContext) -> None:
            await log_call(crm, ctx)

        return handler

    return [EventHandler(crm.handler_name, (ANALYZED,), bind(crm)) for crm in crms.values()]

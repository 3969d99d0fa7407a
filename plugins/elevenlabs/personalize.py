"""``POST /api/webhooks/elevenlabs/personalize``: what the agent should know about an
inbound caller, asked by ElevenLabs while the phone rings
(https://elevenlabs.io/docs/eleven-agents/customization/personalization/twilio-personalization).

Not a signed webhook (ElevenLabs signs nothing here; it sends the headers configured
with the webhook), so a plain route rather than a ``WebhookSource``, and nothing is
stored as an event. The request is ``{caller_id, agent_id, called_number, call_sid}``.

1. Auth: ``X-Webhook-Secret: <secret>`` or ``Authorization: Bearer <secret>``, compared
   in constant time with ``personalize_secret`` or the team's own one. Else 401.
2. The team: the one owning ``called_number``, else ``agent_id``; its settings (one
   statement; parsed settings are reused until their version changes), the result
   kept for ``team_cache_seconds`` so that a warm call reads no database at all (see
   :mod:`plugins.elevenlabs.team_cache`: one read per key at a time, renewed in the
   background before it expires, so no call waits for a busy database).
3. The contact: ``lookup_contact`` through the cache, for whatever is left of
   ``lookup_deadline_seconds`` (the whole answer's budget) minus 20 ms kept for
   building and sending the answer.
4. The answer: every declared variable (see :mod:`plugins.elevenlabs.variables`), then
   the record of it queued for the call's analysis (:mod:`plugins.elevenlabs.writer`).

An unknown number and agent, a broken settings document, a slow database or a slow CRM
never fail the call: the plugin's default variables are answered.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from quart import Blueprint, Quart, current_app
from tortoise import connections

from gateway import get_gateway
from gateway.calls import Personalization
from gateway.contract import api
from gateway.direct_routes import DirectRequest, DirectResponse, direct
from gateway.errors import ServiceUnavailable, Unauthorized, ValidationError
from gateway.identity import PhoneNumber, Team, VoiceAgent
from gateway.sql import marks
from gateway.sync import MISSED, ContactAnswer, ContactCache
from gateway.team_settings import TeamPluginSettings, TeamSettingsInvalid, get_team_settings
from plugins.elevenlabs import contract, variables
from plugins.elevenlabs.settings import NAME, ElevenLabsSettings
from plugins.elevenlabs.team_cache import TeamCache
from plugins.elevenlabs.team_settings import ElevenLabsTeamSettings
from plugins.elevenlabs.writer import PersonalizationWriter

log = logging.getLogger("gateway.plugins.elevenlabs")

PATH = "/api/webhooks/elevenlabs/personalize"
EXTENSION = "elevenlabs"
ANSWER_RESERVE_SECONDS = 0.02


def _field(body: dict[str, Any], name: str, max_length: int) -> str | None:
    value = body.get(name)
    if isinstance(value, str):
        value = value.strip()
        if 0 < len(value) <= max_length:
            return value
    return None


def presented_secret(headers: Mapping[str, str]) -> str | None:
    """From lower-case header names (a :class:`DirectRequest`'s)."""
    value = headers.get("x-webhook-secret")
    if value:
        return value
    scheme, _, token = (headers.get("authorization") or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _matches(presented: str, secret: Any) -> bool:
    if secret is None or not secret.get_secret_value():
        return False
    return hmac.compare_digest(presented.encode(), secret.get_secret_value().encode())


@dataclass
class Resolved:
    team: Team | None = None
    settings: ElevenLabsTeamSettings | None = None


class Personalizer:
    """The route's state for one app: settings, the contact cache, the settings of the
    teams seen (by version), the writer."""

    def __init__(self, app: Quart, settings: ElevenLabsSettings) -> None:
        self.app = app
        self.settings = settings
        self.cache = ContactCache(
            app,
            ttl_seconds=settings.lookup_cache_seconds,
            max_entries=settings.lookup_cache_entries,
        )
        self.writer = PersonalizationWriter(get_gateway(app).clock)
        self._team_settings: dict[int, tuple[int, ElevenLabsTeamSettings]] = {}
        self.clock = get_gateway(app).clock
        # (called number, agent) -> Resolved: a warm call reads no database.
        self.teams: TeamCache[Resolved] = TeamCache(
            lambda key: self.resolve(*key),
            clock=self.clock,
            ttl_seconds=settings.team_cache_seconds,
            max_entries=settings.lookup_cache_entries,
            read_timeout=settings.lookup_deadline_seconds,
        )

    # -- the team and its settings ------------------------------------------------------

    async def resolve(self, called_number: str | None, agent_id: str | None) -> Resolved:
        """The team owning the number, else the agent, with its settings: one statement,
        plus reading the settings only when they changed since last time."""
        conn = connections.get("default")
        teams, numbers, agents = (m._meta.db_table for m in (Team, PhoneNumber, VoiceAgent))
        settings_table = TeamPluginSettings._meta.db_table
        p1, p2, p3 = marks(conn, 3)[1:-1].split(", ")
        sql = (
            "SELECT x.pri AS link_pri, s.version AS settings_version, t.* FROM ("  # noqa: S608
            f"SELECT team_id, 0 AS pri FROM {numbers} WHERE number = {p1} "
            f"UNION ALL SELECT team_id, 1 AS pri FROM {agents} WHERE agent_id = {p2}) x "
            f"JOIN {teams} t ON t.id = x.team_id "
            f"LEFT JOIN {settings_table} s ON s.team_id = t.id AND s.plugin = {p3} "
            "ORDER BY x.pri LIMIT 1"
        )
        rows = await conn.execute_query_dict(sql, [called_number or "", agent_id or "", NAME])
        if not rows:
            return Resolved()
        row = dict(rows[0])
        row.pop("link_pri")
        version = row.pop("settings_version")
        team = Team._init_from_db(**row)
        return Resolved(team, await self._settings_of(team.id, version))

    async def _settings_of(self, team_id: int, version: int | None) -> ElevenLabsTeamSettings:
        if version is None:  # the team saved nothing: the defaults
            return ElevenLabsTeamSettings()
        cached = self._team_settings.get(team_id)
        if cached is not None and cached[0] == version:
            return cached[1]
        parsed = await get_team_settings(team_id, NAME, ElevenLabsTeamSettings, app=self.app)
        self._team_settings[team_id] = (version, parsed)
        return parsed

    # -- the request --------------------------------------------------------------------

    async def handle(self, req: DirectRequest) -> DirectResponse:
        """The answer (the body is read, within ``personalize_max_bytes``, by the
        route)."""
        loop = asyncio.get_running_loop()
        deadline = req.received_at + self.settings.lookup_deadline_seconds
        presented = presented_secret(req.headers)
        if presented is None:
            raise Unauthorized("Missing webhook secret")
        try:
            body = json.loads(req.body)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ValidationError("Expected a JSON object")
        caller = _field(body, "caller_id", 64)
        called = _field(body, "called_number", 64)
        agent_id = _field(body, "agent_id", 128)
        call_sid = _field(body, "call_sid", 64)
        trusted = _matches(presented, self.settings.personalize_secret)

        resolved = await self._resolve_in_time(called, agent_id, deadline, trusted)
        team_secret = resolved.settings.personalize_secret if resolved.settings else None
        if not (trusted or _matches(presented, team_secret)):
            raise Unauthorized("Invalid webhook secret")
        if resolved.team is None:
            log.warning(
                "personalize: no team owns number %r or agent %r; answering the defaults",
                called,
                agent_id,
            )

        # The lookup stops a little before the deadline: the answer must be built and
        # sent by then, on a loop that may be busy with other answers.
        budget = deadline - ANSWER_RESERVE_SECONDS - loop.time()
        found = await self._contact(resolved, caller, budget)
        values = variables.dynamic_variables(
            self.settings.default_dynamic_variables, resolved.settings, found.contact
        )
        override = variables.config_override(resolved.settings)
        if call_sid is not None:
            self.writer.submit(
                Personalization(
                    call_sid=call_sid,
                    at=self.clock.now(),
                    team_id=resolved.team.id if resolved.team is not None else None,
                    agent_id=agent_id,
                    provider=NAME,
                    from_number=caller,
                    to_number=called,
                    contact=found.contact,
                    answered_by=found.answered_by,
                    dynamic_variables=values,
                    overrides=override,
                )
            )
        return DirectResponse(variables.answer(values, override))

    async def _resolve_in_time(
        self, called: str | None, agent_id: str | None, deadline: float, trusted: bool
    ) -> Resolved:
        """:meth:`resolve` through the team cache, within the deadline. When the database
        cannot answer (slow or down) a request with the plugin's secret gets the
        defaults; any other one cannot be checked (503). The failure itself is logged by
        the cache."""
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            return await self.teams.get((called or "", agent_id or ""), remaining)
        except TeamSettingsInvalid:
            log.error("personalize: the team's settings are invalid; answering the defaults")
            return Resolved()
        except Exception as exc:  # the database: never fail the call over it
            log.error("personalize: the team could not be read in time (%s)", type(exc).__name__)
            if trusted:
                return Resolved()
            raise ServiceUnavailable("Could not check the webhook secret; retry later") from None

    async def stop(self) -> None:
        """Stop reading teams, then write what was answered."""
        await self.teams.stop()
        await self.writer.stop()

    async def _contact(self, resolved: Resolved, caller: str | None, budget: float) -> Any:
        """The contact (``MISSED`` when there is no team, caller or time left)."""
        if resolved.team is None or caller is None or budget <= 0:
            return MISSED
        if not resolved.settings or not resolved.settings.contact_variables:
            return ContactAnswer(None, None)  # nothing to fill: nobody is asked
        try:
            answer, _cached = await self.cache.lookup(resolved.team, caller, deadline=budget)
        except Exception:  # a hook wrapper raising, say: the defaults, and say so
            log.exception("personalize: contact lookup failed")
            return MISSED
        return answer


def personalizer(app: Any = None) -> Personalizer:
    return (app or current_app).extensions[EXTENSION]


def blueprint(app: Quart, settings: ElevenLabsSettings) -> Blueprint:
    state = app.extensions[EXTENSION] = Personalizer(app, settings)
    bp = Blueprint("elevenlabs_personalize", __name__)

    # A direct route: answered before Quart's request pipeline (gateway.direct_routes),
    # since ElevenLabs waits for it while the phone rings.
    @bp.post(PATH)
    @api(
        contract.PersonalizeOut,
        auth=(contract.WEBHOOK_SECRET,),
        request=contract.PersonalizeIn,
        validate=False,  # the body is read raw here, under the answer's deadline
        errors=(401, 413),
    )
    @direct(max_body_bytes=settings.personalize_max_bytes)
    async def personalize(req: DirectRequest) -> DirectResponse:
        return await state.handle(req)

    return bp

"""``POST /api/webhooks/elevenlabs/personalize`` as ElevenLabs calls it while the phone
rings: the secret, the team's settings (set by its admin over HTTP), the contact lookup
under a deadline and its cache, the answer's shape, and the record kept with the call."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tortoise import connections
from tortoise.transactions import in_transaction

from gateway import hookimpl
from gateway.calls.analysis import analysis_by_call_sid, analysis_by_conversation
from gateway.identity.models import PhoneNumber, VoiceAgent
from gateway.webhooks.models import WebhookEvent
from plugins.elevenlabs.personalize import personalizer
from tests.support.fake_elevenlabs import AGENT, PATH, SECRET, conversation, delivery
from tests.support.identity import make_team, make_user, token_for

URL = "/api/webhooks/elevenlabs/personalize"
PSECRET = "psec-plugin-0123456789"
TEAM_SECRET = "psec-team-9876543210"
NUMBER = "+14155550100"
CALLER = "+14155550199"
STRANGER = "+14155550000"
SID = "CA" + "0123456789abcdef" * 2
CONV = "conv_personalized_0001"
DEADLINE = 0.2


class Crm:
    """A CRM that knows one caller; optionally slow (sleeps past any deadline)."""

    def __init__(self, name: str = "crm", delay: float = 0.0) -> None:
        self.name, self.delay = name, delay
        self.calls: list[str] = []

    @hookimpl
    async def lookup_contact(self, team, phone):
        self.calls.append(phone)
        if self.delay:
            await asyncio.sleep(self.delay)
        if phone != CALLER:
            return None
        return {"name": "Jo Smith", "company": {"name": "Initech"}, "seats": "12"}


def plugin_settings(**extra: Any) -> dict[str, Any]:
    return {
        "webhook_secret": SECRET,
        "personalize_secret": PSECRET,
        "default_dynamic_variables": {"greeting": "Hello", "vip": False},
        "lookup_deadline_seconds": DEADLINE,
        "lookup_cache_seconds": 60,
        **extra,
    }


TEAM_SETTINGS = {
    "dynamic_variables": {
        "customer_name": "there",
        "company": "",
        "seats": 0,
        "vip": True,
    },
    "contact_variables": {"customer_name": "name", "company": "company.name", "seats": "seats"},
    "overrides": {
        "first_message": "Hi {{customer_name}}!",
        "prompt": "Be brief.",
        "language": "en",
    },
}


async def start(make_app, *crms: Crm, db: str = "sqlite", **extra: Any) -> Any:
    return await make_app(
        db=db,
        plugins={"elevenlabs": plugin_settings(**extra), **{c.name: {} for c in crms}},
        extra_plugins=[(c.name, c) for c in crms],
    )


async def seed(app, settings: dict[str, Any] | None = TEAM_SETTINGS) -> Any:
    """A team owning the number and the agent, its settings saved by its owner."""
    owner = await make_user("owner@acme.example")
    team = await make_team("Acme", owner)
    await PhoneNumber.create(team=team, number=NUMBER)
    await VoiceAgent.create(team=team, agent_id=AGENT)
    if settings is not None:
        response = await app.test_client().put(
            f"/api/teams/{team.id}/settings/elevenlabs",
            json=settings,
            headers=await token_for(owner),
        )
        assert response.status_code == 200, await response.get_data(as_text=True)
    return team, owner


def request_body(caller: str = CALLER, called: str = NUMBER, **extra: Any) -> dict[str, Any]:
    return {
        "caller_id": caller,
        "agent_id": AGENT,
        "called_number": called,
        "call_sid": SID,
        **extra,
    }


async def ask(app, body: dict[str, Any] | None = None, secret: str | None = PSECRET, **headers):
    if secret is not None:
        headers.setdefault("X-Webhook-Secret", secret)
    return await app.test_client().post(URL, json=body or request_body(), headers=headers)


async def answer_of(app, body: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    response = await ask(app, body, **kw)
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await response.get_json()


# -- the answer -------------------------------------------------------------------------


async def test_a_known_caller_gets_the_contacts_values_and_the_overrides(make_app):
    crm = Crm()
    app = await start(make_app, crm)
    await seed(app)
    assert await answer_of(app) == {
        "type": "conversation_initiation_client_data",
        "dynamic_variables": {
            "greeting": "Hello",  # the plugin's default
            "vip": True,  # the team's default wins over the plugin's
            "customer_name": "Jo Smith",
            "company": "Initech",  # a nested field
            "seats": 12,  # converted to the type of the variable's default
        },
        "conversation_config_override": {
            "agent": {
                "prompt": {"prompt": "Be brief."},
                "first_message": "Hi {{customer_name}}!",
                "language": "en",
            },
        },
    }


async def test_an_unknown_caller_gets_every_declared_variable_with_its_default(make_app):
    app = await start(make_app, Crm())
    await seed(app, {**TEAM_SETTINGS, "overrides": {"voice_id": "voice_123"}})
    answer = await answer_of(app, request_body(caller=STRANGER))
    assert answer["dynamic_variables"] == {
        "greeting": "Hello",
        "vip": True,
        "customer_name": "there",
        "company": "",
        "seats": 0,
    }
    assert answer["conversation_config_override"] == {"tts": {"voice_id": "voice_123"}}


async def test_without_a_lookup_plugin_the_defaults_are_answered(make_app):
    app = await start(make_app)
    await seed(app)
    answer = await answer_of(app)
    assert answer["dynamic_variables"]["customer_name"] == "there"


async def test_the_team_is_found_by_agent_when_the_number_is_unknown(make_app):
    app = await start(make_app, Crm())
    await seed(app)
    answer = await answer_of(app, request_body(called="+19995550000"))
    assert answer["dynamic_variables"]["customer_name"] == "Jo Smith"


async def test_an_unknown_number_and_agent_still_get_the_plugin_defaults(make_app, caplog):
    crm = Crm()
    app = await start(make_app, crm)
    await seed(app)
    body = request_body(called="+19995550000", agent_id="agent_nobody")
    answer = await answer_of(app, body)
    assert answer == {
        "type": "conversation_initiation_client_data",
        "dynamic_variables": {"greeting": "Hello", "vip": False},
        "conversation_config_override": {},
    }
    assert crm.calls == [] and "no team owns number" in caplog.text


async def test_it_is_not_a_webhook_event(make_app):
    app = await start(make_app, Crm())
    await seed(app)
    await answer_of(app)
    assert await WebhookEvent.all().count() == 0


# -- the deadline -------------------------------------------------------------------------


async def test_a_slow_lookup_is_answered_with_the_defaults_by_the_deadline(make_app):
    slow = Crm("slow_crm", delay=5.0)
    app = await start(make_app, slow)
    await seed(app)
    started = time.monotonic()
    answer = await answer_of(app)
    elapsed = time.monotonic() - started
    assert answer["dynamic_variables"]["customer_name"] == "there"
    assert slow.calls == [CALLER]
    assert elapsed < 2.5, f"answered after {elapsed:.2f}s: it waited for the lookup"
    # A missed lookup is not cached: the next call asks again.
    await answer_of(app)
    assert slow.calls == [CALLER, CALLER]


async def test_a_fast_lookup_wins_over_a_slow_one(make_app):
    slow, fast = Crm("slow_crm", delay=5.0), Crm("fast_crm")
    # Newest registration first: the fast one answers, the slow one never runs.
    app = await start(make_app, slow, fast)
    await seed(app)
    answer = await answer_of(app)
    assert answer["dynamic_variables"]["customer_name"] == "Jo Smith"
    assert fast.calls == [CALLER] and slow.calls == []


async def test_a_failing_lookup_is_answered_with_the_defaults(make_app):
    class Broken:
        name = "broken"

        @hookimpl
        async def lookup_contact(self, phone):
            raise RuntimeError("crm down")

    app = await start(make_app, Broken())
    await seed(app)
    assert (await answer_of(app))["dynamic_variables"]["customer_name"] == "there"


# -- the cache ------------------------------------------------------------------------------


async def test_answers_and_nobody_are_cached_per_team_and_caller_until_expiry(make_app, clock):
    crm = Crm()
    app = await start(make_app, crm)
    await seed(app)
    for _ in range(2):
        assert (await answer_of(app))["dynamic_variables"]["customer_name"] == "Jo Smith"
        stranger = await answer_of(app, request_body(caller=STRANGER))
        assert stranger["dynamic_variables"]["customer_name"] == "there"
    assert crm.calls == [CALLER, STRANGER]  # once each, the negative answer too
    clock.advance(59)
    await answer_of(app)
    assert crm.calls == [CALLER, STRANGER]
    clock.advance(1)
    await answer_of(app)
    await answer_of(app, request_body(caller=STRANGER))
    assert crm.calls == [CALLER, STRANGER, CALLER, STRANGER]


async def test_settings_changes_reach_calls_within_team_cache_seconds(make_app, clock):
    app = await start(make_app, Crm(), team_cache_seconds=5)
    team, owner = await seed(app)
    await answer_of(app)
    changed = {"overrides": {"first_message": "Welcome back"}}
    response = await app.test_client().patch(
        f"/api/teams/{team.id}/settings/elevenlabs", json=changed, headers=await token_for(owner)
    )
    assert response.status_code == 200
    agent = (await answer_of(app))["conversation_config_override"]["agent"]
    assert agent["first_message"] == "Hi {{customer_name}}!"  # this process read it 0 s ago
    clock.advance(5)
    agent = (await answer_of(app))["conversation_config_override"]["agent"]
    assert agent["first_message"] == "Welcome back"


class HeldDatabase:
    """The database busy for as long as the test says: a transaction holding the one
    connection Tortoise gives SQLite, as a long write of the gateway's own would."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.held = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def _hold(self) -> None:
        async with in_transaction():
            self.held.set()
            await self.release.wait()

    async def __aenter__(self) -> HeldDatabase:
        self.task = asyncio.create_task(self._hold())
        await self.held.wait()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.release.set()
        assert self.task is not None
        await self.task


async def test_calls_after_the_team_cache_expires_never_wait_for_the_database(make_app, clock):
    """A call in the second half of the cached team's life is answered from the cache
    and reads the team again in the background, so under steady traffic the entry is
    renewed before it expires and no call waits for a busy database."""
    app = await start(make_app, Crm(), team_cache_seconds=5)
    team, owner = await seed(app)
    await answer_of(app)  # t=0: read
    changed = {"overrides": {"first_message": "Welcome back"}}
    response = await app.test_client().patch(
        f"/api/teams/{team.id}/settings/elevenlabs", json=changed, headers=await token_for(owner)
    )
    assert response.status_code == 200
    clock.advance(3)
    agent = (await answer_of(app))["conversation_config_override"]["agent"]
    assert agent["first_message"] == "Hi {{customer_name}}!"  # from the cache, read again
    await personalizer(app).teams.settle()
    clock.advance(2.2)  # past the first read's expiry, within the second's
    async with HeldDatabase():
        started = time.monotonic()
        answer = await answer_of(app)
        waited = time.monotonic() - started
    assert answer["conversation_config_override"]["agent"]["first_message"] == "Welcome back"
    assert answer["dynamic_variables"]["customer_name"] == "Jo Smith"
    assert waited < DEADLINE / 2  # answered without waiting for the held database


async def test_concurrent_calls_for_a_team_not_cached_share_one_read(make_app):
    app = await start(make_app, Crm())
    await seed(app)
    answers = await asyncio.gather(*(answer_of(app) for _ in range(20)))
    assert personalizer(app).teams.reads == 1
    assert {a["dynamic_variables"]["customer_name"] for a in answers} == {"Jo Smith"}


async def test_a_database_that_cannot_answer_in_time_never_fails_a_call_it_can_trust(
    make_app, caplog
):
    """The team cannot be read by the deadline: a call with the plugin's secret gets the
    defaults by the deadline; one with only a team's own secret cannot be checked: 503,
    so ElevenLabs' call goes on without personalization rather than with a guess."""
    app = await start(make_app, Crm())
    await seed(app, {**TEAM_SETTINGS, "personalize_secret": TEAM_SECRET})
    async with HeldDatabase():
        started = time.monotonic()
        answer = await answer_of(app)
        waited = time.monotonic() - started
        assert answer["dynamic_variables"] == {"greeting": "Hello", "vip": False}
        assert waited < DEADLINE + 0.5
        response = await ask(app, secret=TEAM_SECRET)
        assert response.status_code == 503
        body = await response.get_json()
        assert set(body) == {"error", "code"} and TEAM_SECRET not in str(body)
    assert "the team could not be read in time" in caplog.text
    # Once the database answers again, so does the team.
    answer = await answer_of(app, secret=TEAM_SECRET)
    assert answer["dynamic_variables"]["customer_name"] == "Jo Smith"


# -- the secret -----------------------------------------------------------------------------


WRONG = [
    {},
    {"X-Webhook-Secret": "wrong"},
    {"Authorization": "Bearer wrong"},
    {"Authorization": PSECRET},  # no scheme
    {"Authorization": f"Basic {PSECRET}"},
    {"X-Webhook-Secret": PSECRET[:-1]},
]


async def test_a_wrong_or_missing_secret_is_401(make_app):
    crm = Crm()
    app = await start(make_app, crm)
    await seed(app)
    for headers in WRONG:
        response = await ask(app, secret=None, **headers)
        assert response.status_code == 401, headers
        body = await response.get_json()
        assert body["code"] == "UNAUTHORIZED" and set(body) >= {"error", "code"}
    assert crm.calls == []


async def test_the_bearer_form_is_accepted(make_app):
    app = await start(make_app, Crm())
    await seed(app)
    response = await ask(app, secret=None, Authorization=f"Bearer {PSECRET}")
    assert response.status_code == 200


async def test_a_teams_own_secret_works_for_that_team_only(make_app):
    app = await start(make_app, Crm(), personalize_secret=None)
    assert any("personalize_secret" in w for w in app.extensions["gateway"].warnings)
    await seed(app, {**TEAM_SETTINGS, "personalize_secret": TEAM_SECRET})
    answer = await answer_of(app, secret=None, Authorization=f"Bearer {TEAM_SECRET}")
    assert answer["dynamic_variables"]["customer_name"] == "Jo Smith"
    # Not for a number and agent of no team (nor of another team).
    body = request_body(called="+19995550000", agent_id="agent_other")
    assert (await ask(app, body, secret=TEAM_SECRET)).status_code == 401
    assert (await ask(app, secret=PSECRET)).status_code == 401  # no plugin secret set


async def test_the_teams_secret_is_never_returned(make_app):
    app = await start(make_app)
    team, owner = await seed(app, {**TEAM_SETTINGS, "personalize_secret": TEAM_SECRET})
    response = await app.test_client().get(
        f"/api/teams/{team.id}/settings/elevenlabs", headers=await token_for(owner)
    )
    assert TEAM_SECRET not in await response.get_data(as_text=True)


BAD_SETTINGS = [
    ({"dynamic_variables": {"system__caller_id": "x"}}, "dynamic_variables"),
    ({"dynamic_variables": {"n": [1, 2]}}, "dynamic_variables"),
    ({"dynamic_variables": {}, "contact_variables": {"customer_name": "name"}}, ""),
    ({"overrides": {"prompt": {"prompt": "nested"}}}, "overrides.prompt"),
]


async def test_bad_team_settings_are_refused_naming_the_field(make_app):
    app = await start(make_app)
    team, owner = await seed(app, None)
    headers = await token_for(owner)
    for settings, field in BAD_SETTINGS:
        response = await app.test_client().put(
            f"/api/teams/{team.id}/settings/elevenlabs", json=settings, headers=headers
        )
        assert response.status_code == 400, settings
        assert (await response.get_json())["field"].startswith(field)


async def test_a_body_that_is_not_a_json_object_is_400(make_app):
    app = await start(make_app)
    response = await app.test_client().post(
        URL, data=b"[1]", headers={"X-Webhook-Secret": PSECRET, "Content-Type": "application/json"}
    )
    assert response.status_code == 400


# -- the record -----------------------------------------------------------------------------


async def test_the_answer_is_kept_with_the_call_and_merged_with_its_analysis(
    make_app, db_kind, clock
):
    app = await start(make_app, Crm(), db=db_kind)
    team, _ = await seed(app)
    answer = await answer_of(app)
    await personalizer(app).writer.flush()
    row = await analysis_by_call_sid(SID)
    assert row.team_id == team.id and row.personalized_at == clock.now()
    assert (row.from_number, row.to_number, row.direction) == (CALLER, NUMBER, "inbound")
    assert row.personalization == {
        "contact": {"name": "Jo Smith", "company": {"name": "Initech"}, "seats": "12"},
        "answered_by": "crm",
        "dynamic_variables": answer["dynamic_variables"],
        "overrides": answer["conversation_config_override"],
    }
    # The conversation's post-call webhook names the same call: one row, both halves.
    data = conversation(CONV, start=int(clock.now().timestamp()), call_sid=SID)
    body, head = delivery("post_call_transcription", data, int(clock.now().timestamp()))
    assert (await app.test_client().post(PATH, data=body, headers=head)).status_code == 200
    merged = await analysis_by_conversation(CONV)
    assert merged.id == row.id and merged.call_sid == SID
    assert merged.personalization["answered_by"] == "crm" and merged.summary is not None


async def test_a_write_that_keeps_failing_is_retried_then_logged_never_silent(
    make_app, caplog, clock
):
    app = await start(make_app, Crm())
    await seed(app)
    # A real failure of the database: the table is gone.
    await connections.get("default").execute_script("DROP TABLE call_analyses")
    before = clock.now()
    answer = await answer_of(app)
    assert answer["dynamic_variables"]["customer_name"] == "Jo Smith"  # the call goes on
    writer = personalizer(app).writer
    await writer.flush()
    assert writer.lost == 1 and writer.written == 0
    assert f"personalization of call {SID} not stored after 3 attempts" in caplog.text
    assert clock.now() > before  # it paused between attempts (on the gateway clock)


async def test_stopping_with_a_stuck_database_is_bounded_and_says_what_was_lost(
    make_app, caplog, tmp_path
):
    import sqlite3

    from gateway.clock import Clock

    app = await start(make_app, Crm())
    await seed(app)
    writer = personalizer(app).writer
    writer.stop_seconds = 0.3
    # Another process holds SQLite's write lock and the database stays locked for longer
    # than the server may take to stop (a real clock: the pause between attempts waits).
    writer.clock, writer.pause_seconds = Clock(), 30
    blocker = sqlite3.connect(tmp_path / "gateway.db", timeout=0)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        await answer_of(app)
        started = time.monotonic()
        await writer.stop()
        assert time.monotonic() - started < 3
    finally:
        blocker.rollback()
        blocker.close()
    assert f"personalization of 1 calls not stored at shutdown: {SID}" in caplog.text

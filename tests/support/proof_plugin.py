"""The plugin of the scale-out proof (tests/test_scaleout_proof.py), loaded by real
``gateway`` processes through the ``gateway.plugins`` entry points (the test installs it
as a distribution on PYTHONPATH, see tests/test_plugins.py ``make_dist``).

``[plugins.proof]``: ``api_url`` (a :class:`tests.support.proof_provider.NotesProvider`
on loopback) and ``log`` (a file the scheduled task appends its runs to).

- an OAuth provider ``proofcrm`` on that server;
- ``proof.post_note``: for every ``voice.call.analyzed``, one note at the provider, as
  a team, through a rate-limited :class:`gateway.sync.ProviderSession` (tokens refreshed
  when due or rejected) and recorded on the effects ledger (searched by marker when an
  earlier attempt may have created it);
- ``proof-tick``: a task every second that appends ``ran <window> <pid> <trigger>``.
"""

from __future__ import annotations

import os
from typing import Any

from gateway import hookimpl
from gateway.config import PluginSettings
from gateway.events import EventHandler, JobContext
from gateway.oauth import AccountInfo, IdentityRequest, OAuthProvider
from gateway.scheduling import ScheduledTask, TaskContext
from gateway.sync import RateLimit, effect, event_subject
from tests.support.lines import append_line

NAME = "proof"
PROVIDER = "proofcrm"
HANDLER = "proof.post_note"
TASK = "proof-tick"
CLIENT_ID, CLIENT_SECRET = "proof-client", "proof-client-secret-0123456789"


class Settings(PluginSettings):
    api_url: str
    log: str


def _settings(config: Any) -> Settings:
    return config.plugin_config(NAME, Settings)


@hookimpl
def register_oauth_providers(config: Any) -> list[OAuthProvider]:
    base = _settings(config).api_url

    async def identity(req: IdentityRequest) -> AccountInfo:
        head = {"Authorization": f"Bearer {req.token['access_token']}"}
        async with req.http.get(f"{base}/userinfo", headers=head) as resp:
            resp.raise_for_status()
            body = await resp.json()
        return AccountInfo(account_id=body["sub"], label=body["email"])

    return [
        OAuthProvider(
            name=PROVIDER,
            display_name="Proof CRM",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            authorize_url=f"{base}/authorize",
            token_url=f"{base}/token",
            scopes=("notes.write",),
            fetch_identity=identity,
        )
    ]


@hookimpl
def register_event_handlers(config: Any) -> list[EventHandler]:
    base = _settings(config).api_url

    async def post_note(ctx: JobContext) -> None:
        subject = event_subject(ctx.event.id)
        team = ctx.event.team_id
        async with effect(
            ctx.app, subject=subject, plugin=NAME, action="note", team_id=team
        ) as done:
            if done.done:
                return
            session = ctx.provider_session(PROVIDER, base_url=base, limits=(RateLimit(200, 1),))
            if done.sent:  # an attempt that died may have created it
                found = await session.request("GET", "/api/notes", params={"marker": done.marker})
                if found.body:
                    await done.created(found.body[0]["id"])
                    return
            await done.sending()
            made = await session.request(
                "POST",
                "/api/notes",
                json={"marker": done.marker, "team": team, "event": ctx.event.id},
            )
            await done.created(made.body["id"])

    return [EventHandler(HANDLER, ("voice.call.analyzed",), post_note)]


@hookimpl
def register_scheduled_tasks(config: Any) -> list[ScheduledTask]:
    log = _settings(config).log

    async def tick(ctx: TaskContext) -> None:
        append_line(log, f"ran {ctx.window_start.isoformat()} {os.getpid()} {ctx.trigger}")

    return [ScheduledTask(TASK, "* * * * * *", tick, "the proof's every-second task")]

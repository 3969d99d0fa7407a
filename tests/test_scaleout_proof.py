"""The scale-out proof: every role as its own OS process, one API process and one
worker killed outright midway.

On one PostgreSQL database (created for this test) with Redis rate limits and a local
S3 (moto), after one ``gateway migrate``: two ``gateway serve --no-worker``, two
``gateway worker`` and one ``gateway scheduler``. A bounded, concurrent workload on
loopback: Twilio voice, status and recording callbacks signed with the real ``twilio``
library, ElevenLabs post-call transcriptions and audio signed as ElevenLabs signs them
(a third of the calls' recording callbacks and transcriptions delivered twice), two cron
pingers on the same window, and a handler per analyzed call that needs the team's OAuth
token for a loopback provider. Tokens expire twice: the ones issued at connect are
already due, and midway the provider stops accepting every access token it issued.

Midway, while api-1 has requests in flight (one of them an audio upload held open) and,
when it can be caught doing so, worker-1 holds jobs, both get SIGKILL and are started
again. Senders retry what was not answered 2xx on whichever API process is ready, as
behind a load balancer. Then: every delivery answered 2xx is stored once; every job
succeeded, the killed worker's lost attempts in their history; no effect exists twice,
in the ledger or at the provider; each cron window ran once and no run is left running;
each connection refreshed once per expiry; every recording is in the bucket with its
sha256; nothing partial is left in the bucket; every process exits 0 on SIGTERM.
``pytest -s`` prints the counts (docs/operations.md#proof-under-faults).

The waits are for other processes to get somewhere, each bounded; nothing waits for
time to pass."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from quart.testing.app import TestApp as QuartTestApp

from gateway.app import create_app
from gateway.calls.events import ANALYZED, CATALOGUE
from gateway.calls.models import Call, CallAnalysis, Recording
from gateway.clock import Clock
from gateway.config import load_config
from gateway.identity.models import PhoneNumber, VoiceAgent
from gateway.jobs.models import Job
from gateway.jobs.queue import LEASE_LOST
from gateway.oauth.models import OAuthConnection
from gateway.scheduling.models import TaskRun
from gateway.scheduling.runs import LEASE_EXPIRED
from gateway.storage.s3 import S3Storage
from gateway.storage.settings import S3Settings
from gateway.sync.models import Effect
from gateway.testing import run_connect, seed_admin
from gateway.testing.database import postgres_database
from gateway.webhooks.models import WebhookEvent
from tests.plugins.test_twilio_voice import (
    ACCOUNT,
    TOKEN,
)
from tests.support import proof_plugin
from tests.support.fake_twilio import FakeTwilioMedia
from tests.support.processes import Server, until
from tests.support.proof_provider import NotesProvider
from tests.support.proof_workload import (
    BIG_AUDIO,
    CALLS,
    TEAMS,
    PlannedCall,
    Role,
    Senders,
    cut_upload,
    install_plugin,
    pingers,
    run_call,
    terminate,
    write_config,
)
from tests.support.s3 import bucket_contents

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


# -- the database, the config, the processes -----------------------------------------


@pytest.fixture
def proof_database() -> Iterator[str]:
    """A PostgreSQL database for this test alone, dropped afterwards."""
    yield from postgres_database()


# -- the test ------------------------------------------------------------------------------


async def test_every_role_apart_under_sigkill(tmp_path, proof_database, moto_server):
    started = time.monotonic()
    provider = NotesProvider(note_delay=0.3, access_ttl=60)  # 60 s: due at once
    media = FakeTwilioMedia(ACCOUNT, TOKEN)
    await provider.start()
    await media.start()
    s3 = moto_server.settings(part_size_mib=5)
    config = write_config(tmp_path, proof_database, s3, provider.url, media.base_url)
    env = install_plugin(tmp_path)
    processes: list[Any] = []
    seeder: QuartTestApp | None = None
    try:
        migrate = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "gateway.cli", "--config", str(config), "migrate"],
            env={**os.environ, **env}, capture_output=True, timeout=120,
        )  # fmt: skip
        assert migrate.returncode == 0, migrate.stderr.decode()[-3000:]

        # The roles, all at once (they share nothing but the database, Redis and S3).
        apis = [Server(config, env=env) for _ in range(2)]
        workers = [Role(config, "worker", env, "job worker") for _ in range(2)]
        scheduler = Role(config, "scheduler", env, "scheduler ticker started")
        processes += [*apis, *workers, scheduler]

        # Teams, their numbers and agents, and their connections, from this process.
        seeding = load_config(config)
        seeding.gateway.run_worker = False  # this process only seeds and reads
        app = create_app(seeding, extra_plugins=[("proof", proof_plugin)], clock=Clock())
        seeder = QuartTestApp(app, startup_timeout=90, shutdown_timeout=60)
        await seeder.startup()
        plan: list[PlannedCall] = []
        client = app.test_client()
        for t in range(TEAMS):
            admin = await seed_admin(f"admin{t}@example.com")
            number, agent = f"+1500555{t:04d}", f"agent_proof_{t}"
            await PhoneNumber.create(team=admin.team, number=number)
            await VoiceAgent.create(team=admin.team, agent_id=agent)
            assert (await run_connect(client, admin, proof_plugin.PROVIDER)).status_code == 200
            plan += [PlannedCall(n, admin.team, number, agent) for n in range(t, CALLS, TEAMS)]
        plan.sort(key=lambda c: c.n)
        for big in (plan[17], plan[21]):  # multipart uploads, after the kill
            big.audio_bytes = BIG_AUDIO
        extra = PlannedCall(CALLS, plan[0].team, plan[0].number, plan[0].agent, audio_bytes=400_000)
        provider.access_ttl = 3600  # tokens from refreshes are good for an hour
        connections = TEAMS

        for process in processes:
            await process.started()
        ready_at = time.monotonic()

        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            senders = Senders(apis, http)
            stop, pings = asyncio.Event(), Counter[str]()
            pinging = asyncio.create_task(pingers(http, apis, stop, pings))
            limit = asyncio.Semaphore(8)

            async def call(c: PlannedCall) -> None:
                async with limit:
                    await run_call(senders, c, media)

            # A first third of the calls, and a delivery held open on api-1 (an
            # ElevenLabs audio upload, stopped halfway), until every connection has
            # refreshed its expired token (so no refresh is in flight in the processes
            # killed). Then the second third, and the kill while api-1 has requests in
            # flight and, when it can be caught doing so, worker-1 holds a job.
            third = CALLS // 3
            first = asyncio.gather(*(call(c) for c in plan[:third]))
            victim_api, victim_worker = apis[0], workers[0]
            halfway, go = asyncio.Event(), asyncio.Event()
            cut = asyncio.create_task(cut_upload(senders, victim_api, extra.audio(), halfway, go))

            async def refreshed() -> bool:
                count = await OAuthConnection.filter(refreshed_at__isnull=False).count()
                return count == connections and halfway.is_set()

            await until(refreshed, "every connection to refresh", 90)
            second = asyncio.gather(*(call(c) for c in plan[third : 2 * third]))
            held: list[int] = []
            cut_in_flight = 0

            async def kill_time() -> bool:
                nonlocal cut_in_flight
                token = f":{victim_worker.proc.pid}:"
                held[:] = await Job.filter(status="running", locked_by__contains=token).values_list(
                    "id", flat=True
                )
                cut_in_flight = senders.in_flight[victim_api.base]
                return (bool(held) and cut_in_flight > 1) or second.done()

            await until(kill_time, "requests in api-1 and a job in worker-1", 90)
            os.kill(victim_api.proc.pid, signal.SIGKILL)
            os.kill(victim_worker.proc.pid, signal.SIGKILL)
            victim_api.proc.wait()
            victim_worker.proc.wait()
            killed_at = time.monotonic()
            go.set()  # the rest of the held upload meets a dead connection

            # Restarted at once; meanwhile the senders go on with api-2 (and retry what
            # api-1 refuses while it starts). The provider now stops accepting every
            # access token it issued: the second half's handlers get 401s and each
            # connection refreshes once.
            apis[0] = Server(config, env=env)
            workers[0] = Role(config, "worker", env, "job worker")
            processes += [apis[0], workers[0]]
            provider.expire_access_tokens()
            last = asyncio.gather(*(call(c) for c in plan[2 * third :]))
            await apis[0].started()
            await workers[0].started()
            restarted_at = time.monotonic()
            await asyncio.gather(first, cut, second, last)
            sent_at = time.monotonic()

            async def drained() -> bool:
                unfinished = await Job.exclude(status="succeeded").count()
                waiting = await Recording.exclude(status="stored").count()
                # A run whose process was killed is failed once its lease ends.
                now = datetime.now(UTC)
                stuck = await TaskRun.filter(status="running", lease_until__lt=now).count()
                return unfinished == 0 and waiting == 0 and stuck == 0

            await until(drained, "every job to finish", timeout=90)
            drained_at = time.monotonic()
            stop.set()
            await pinging

        codes = {}
        for name, process in (("api-1", apis[0]), ("api-2", apis[1]),
                              ("worker-1", workers[0]), ("worker-2", workers[1]),
                              ("scheduler", scheduler)):  # fmt: skip
            codes[name] = await terminate(process.proc)
        assert set(codes.values()) == {0}, codes

        # -- every delivery answered 2xx is stored, once -------------------------------
        # (Besides them: the neutral events the analyses emitted, voice.call.analyzed.)
        events = await WebhookEvent.exclude(type__in=list(CATALOGUE)).values_list(
            "source", "dedup_key"
        )
        stored = Counter(source for source, _key in events)
        answered = {(s, k) for s, keys in senders.answered.items() for k in keys}
        assert len(events) == len(set(events)) and set(events) == answered
        assert await WebhookEvent.filter(type=ANALYZED).count() == CALLS
        assert await Call.all().count() == CALLS
        # A row per conversation: the extra one, whose audio came alone, has one too.
        assert await CallAnalysis.all().count() == CALLS + 1

        # -- every job ran to completion, each effect once --------------------------------
        jobs = Counter(await Job.all().values_list("handler", flat=True))
        assert jobs[proof_plugin.HANDLER] == CALLS
        assert jobs["twilio_voice.download_recording"] == CALLS
        assert await Job.exclude(status="succeeded").count() == 0
        # The only attempts lost are the killed worker's, each one in its job's history.
        retried = await Job.filter(attempts__gt=1).values_list("attempts", "history")
        retried_jobs = len(retried)
        for attempts, history in retried:
            assert [h["error"] for h in history or []] == [LEASE_LOST] * (attempts - 1)
        earlier_attempts = Counter(h["outcome"] for _a, history in retried for h in history)
        effects = await Effect.all().values_list("subject", "status")
        assert len(effects) == CALLS and {s for _, s in effects} == {"done"}
        assert len({subject for subject, _ in effects}) == CALLS
        notes = provider.notes_per_marker()
        assert len(notes) == CALLS and set(notes.values()) == {1}, notes

        # -- each cron window ran once ----------------------------------------------------
        ran = [line.split() for line in (tmp_path / "cron.log").read_text().splitlines()]
        per_window = Counter(window for _ran, window, _pid, _trigger in ran)
        runs = await TaskRun.filter(task=proof_plugin.TASK).values_list(
            "window_start", "status", "attempt"
        )
        succeeded = Counter(w.isoformat() for w, status, _a in runs if status == "succeeded")
        assert per_window and set(per_window.values()) == {1}, per_window.most_common(3)
        assert set(succeeded.values()) == {1}
        # A run cut by the kill is failed by lease expiry (its window is over by then);
        # nothing is left running once every process has stopped.
        assert set(succeeded) <= set(per_window)
        assert len(set(per_window) - set(succeeded)) <= 1
        assert not [r for r in runs if r[1] == "running"]
        expired = await TaskRun.filter(detail=LEASE_EXPIRED).count()
        triggers = Counter(trigger for *_rest, trigger in ran)

        # -- each connection refreshed once per expiry (counted at the provider) -----------
        refreshes = Counter(
            r["refresh_token"]
            for r in provider.token_requests
            if r["grant_type"] == "refresh_token"
        )
        assert len(refreshes) == connections and set(refreshes.values()) == {2}, refreshes

        # -- every recording in the bucket with its sha256, nothing partial ------------------
        store = S3Storage(S3Settings(**s3))
        try:
            rows = await Recording.all().values_list("storage_key", "sha256", "external_id")
            expected = {c.recording_sid: hashlib.sha256(c.recording()).hexdigest() for c in plan}
            expected |= {
                f"{c.conversation_id}:audio": c.audio().audio_digest() for c in [*plan, extra]
            }
            assert {ext: sha for _k, sha, ext in rows} == expected
            contents = await bucket_contents(store)
            assert contents == {"objects": sorted(k for k, _s, _e in rows), "uploads": []}
            for key, sha, _ext in rows:
                async with await store.stream(key) as blob:
                    digest = hashlib.sha256()
                    async for chunk in blob:
                        digest.update(chunk)
                assert digest.hexdigest() == sha, key
        finally:
            await store.close()

        figures = {
            "processes": "2 api + 2 worker + 1 scheduler (+ migrate), then api-1 and worker-1 "
            "killed with SIGKILL and started again",
            "deliveries answered 2xx (requests)": senders.sent["2xx"],
            "requests in flight on api-1 when killed": cut_in_flight,
            "requests cut by the kill (held open on api-1)": senders.sent["cut by the kill"],
            "requests retried by the senders": {
                k: v for k, v in senders.sent.items() if k.startswith("retried")
            },
            "distinct deliveries stored": sum(stored.values()),
            "stored, by source": dict(stored),
            "calls / conversations": (CALLS, CALLS + 1),
            "jobs (all succeeded)": dict(jobs),
            "jobs that took more than one attempt": retried_jobs,
            "jobs held by the killed worker": len(held),
            "their lost attempts in the jobs' history (lease expired)": dict(earlier_attempts),
            "effects in the ledger / notes at the provider": (len(effects), sum(notes.values())),
            "ledger rows retried after sending (searched by marker)": provider.searches,
            "cron windows run (each once)": len(per_window),
            "cron runs by trigger": dict(triggers),
            "cron runs failed by lease expiry (killed mid-run)": expired,
            "cron pings": dict(pings),
            "token refreshes per connection": sorted(refreshes.values()),
            "401s from the provider": provider.rejected,
            "recordings in S3 (sha256 checked)": len(rows),
            "open multipart uploads": 0,
            "spool files left by the killed api-1 (removed after a day)": len(
                list((tmp_path / "data" / "spool").glob("*"))
            ),
            "seconds: start, to kill, kill to serving again, drain, total": (
                round(ready_at - started, 1),
                round(killed_at - ready_at, 1),
                round(restarted_at - killed_at, 1),
                round(drained_at - sent_at, 1),
                round(time.monotonic() - started, 1),
            ),
        }
        print("\nscale-out proof:")
        for name, value in figures.items():
            print(f"  {name}: {value}")
    finally:
        for process in processes:
            process.stop()
        if seeder is not None:
            await seeder.shutdown()
        await media.stop()
        await provider.stop()

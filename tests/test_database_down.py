"""The database goes away under a running gateway (PostgreSQL: its connections are
terminated and the database renamed, so every reconnect fails; SQLite: another process
holds the write lock). Every route class answers 503 JSON with ``Retry-After``, the log
gets one line per outage per loop, and everything works again once it is back."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import uuid
from typing import Any

import pytest

from gateway.identity.models import PhoneNumber
from gateway.jobs.worker import Worker
from tests.conftest import _pg_admin
from tests.support.fake_twilio import form_body, sid, signed
from tests.support.identity import make_team, make_user, token_for

ACCOUNT = "AC" + "11" * 16
TOKEN = "current-auth-token-0001"
METRICS = "metrics-scrape-token-0001"
NUMBER = "+15005550006"
BASE = "https://gateway.test/api/webhooks/twilio/"


async def take_down(name: str) -> None:
    """Terminate every connection to ``name`` and rename it away (retried: the pool
    may reconnect between the two statements)."""
    for _ in range(50):
        try:
            await _pg_admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f'WHERE datname = \'{name}\'; ALTER DATABASE "{name}" RENAME TO "{name}_away"'
            )
            return
        except Exception:  # "being accessed by other users": try again
            await asyncio.sleep(0.02)
    raise AssertionError("could not take the database down")


async def bring_back(name: str) -> None:
    await _pg_admin(f'ALTER DATABASE "{name}_away" RENAME TO "{name}"')


def twilio_requests() -> list[tuple[str, dict[str, str]]]:
    call = sid("CA")
    voice = {"AccountSid": ACCOUNT, "CallSid": call, "CallStatus": "ringing", "To": NUMBER}
    status = {**voice, "CallStatus": "completed", "SequenceNumber": "3"}
    recording = {
        "AccountSid": ACCOUNT,
        "CallSid": call,
        "RecordingSid": sid("RE"),
        "RecordingStatus": "completed",
        "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/x/Recordings/y",
    }
    return [("voice", voice), ("status", status), ("recording", recording)]


async def every_route_class(client: Any, bearer: dict[str, str], team_id: int) -> list[Any]:
    """One request of each kind the gateway serves; returns the responses."""
    out = [
        await client.get("/readyz"),
        await client.post(
            "/api/auth/login", json={"email": "root@example.com", "password": "x" * 12}
        ),
        await client.get("/api/auth/me", headers=bearer),
        await client.get(f"/api/teams/{team_id}", headers=bearer),
        await client.post(
            f"/api/teams/{team_id}/phone-numbers", json={"number": "+14155550111"}, headers=bearer
        ),
        await client.get("/api/events", headers=bearer),
        await client.get("/api/jobs", headers=bearer),
        await client.get("/api/integrations/status", headers={**bearer, "X-Team-Id": "1"}),
        await client.post(
            "/api/setup-super-admin",
            json={"email": "x@example.com"},
            headers={"X-Setup-Token": "anything"},
        ),
        await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS}"}),
        await client.get("/api/debug/db", headers=bearer),
    ]
    for route, form in twilio_requests():
        out.append(
            await client.post(
                f"/api/webhooks/twilio/{route}",
                data=form_body(form),
                headers=signed(TOKEN, BASE + route, form),
            )
        )
    return out


def lines(caplog: Any) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_postgres_outage_is_503_everywhere_and_logged_once(
    make_app: Any, pg_database: str, caplog: Any
) -> None:
    name = f"gwdown_{uuid.uuid4().hex[:10]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    url = pg_database.rsplit("/", 1)[0] + f"/{name}"
    try:
        app = await make_app(
            db="postgres",
            database_url=url,
            debug_endpoints=True,
            metrics_token=METRICS,
            plugins={
                "admin": {},
                "twilio_voice": {"account_sid": ACCOUNT, "auth_token": TOKEN},
            },
        )
        root = await make_user("root@example.com", super_admin=True)
        team = await make_team("Acme", root)
        await PhoneNumber.create(team=team, number=NUMBER)
        bearer = await token_for(root)
        client = app.test_client()
        before = await every_route_class(client, bearer, team.id)
        assert all(r.status_code < 500 for r in before), [r.status_code for r in before]

        await take_down(name)
        caplog.clear()
        with caplog.at_level(logging.INFO):
            for _round in range(3):
                for resp in await every_route_class(client, bearer, team.id):
                    assert resp.status_code == 503, (resp.status_code, resp.request.path)
                    body = await resp.get_json()
                    assert body["code"] == "SERVICE_UNAVAILABLE", body
                    assert int(resp.headers["Retry-After"]) >= 1
        warned = lines(caplog)
        assert not any(r.exc_info or r.levelno >= logging.ERROR for r in warned), warned
        outage_lines = [r.getMessage() for r in warned if "unavailable" in r.getMessage()]
        # One for requests, one for webhooks: not one per request (42 of them).
        assert sorted(m.split(" (")[0] for m in outage_lines) == [
            "requests: database unavailable",
            "webhooks: database unavailable",
        ], outage_lines
        assert len(warned) <= 6, [r.getMessage() for r in warned]

        await bring_back(name)
        caplog.clear()
        for _ in range(50):  # the pool reconnects on its next acquire
            if (await client.get("/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.05)
        after = await every_route_class(client, bearer, team.id)
        assert all(r.status_code < 500 for r in after), [r.status_code for r in after]
        assert any("reachable again" in r.getMessage() for r in caplog.records)
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}_away" WITH (FORCE)')


async def test_worker_backs_off_and_logs_one_line_per_outage(
    make_app: Any, pg_database: str, caplog: Any
) -> None:
    name = f"gwdown_{uuid.uuid4().hex[:10]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    url = pg_database.rsplit("/", 1)[0] + f"/{name}"
    worker = None
    try:
        app = await make_app(
            db="postgres", database_url=url, job_poll_seconds=0.01, job_concurrency=4
        )
        worker = Worker(app)
        worker.start()
        assert worker.listener is not None
        await asyncio.wait_for(worker.listener.listening.wait(), 10)
        caplog.clear()
        with caplog.at_level(logging.INFO):
            await take_down(name)
            for _ in range(400):  # the loops' own pace; bounded
                if worker.outage.failures >= 6 and worker.listener.outage.down:
                    break
                await asyncio.sleep(0.01)
        assert worker.outage.failures >= 6
        # Without the backoff, 4 loops polling every 10 ms would each log per poll.
        assert worker.outage.delay(0.01) > 0.01
        jobs_lines = [r for r in lines(caplog) if r.name == "gateway.jobs"]
        messages = [r.getMessage().split(" (")[0] for r in jobs_lines]
        # One line per outage and loop. take_down's retries may let the pool reconnect
        # once before the rename lands (seen under load): that short outage ends with
        # "reachable again" and counts as one more; per poll would be dozens.
        for loop in ("job worker", "job wake-up listener"):
            down = messages.count(f"{loop}: database unavailable")
            back = sum(m.startswith(f"{loop}: database reachable again") for m in messages)
            assert down == back + 1 and back <= 1, messages
        assert {m.split(":")[0] for m in messages} == {"job worker", "job wake-up listener"}
        assert not any(r.exc_info for r in lines(caplog))

        await bring_back(name)
        for _ in range(3000):  # the backoff is at most 30 s; usually well under 1 s here
            if not worker.outage.down:
                break
            await asyncio.sleep(0.01)
        assert not worker.outage.down
        assert any("job worker: database reachable again" in r.getMessage() for r in caplog.records)
    finally:
        if worker is not None:
            await worker.stop()
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}_away" WITH (FORCE)')


@pytest.fixture
async def locked_sqlite(make_app: Any, tmp_path: Any) -> Any:
    path = tmp_path / "locked.db"
    app = await make_app(database_url=f"sqlite://{path}?busy_timeout=50")
    return app, path


async def test_sqlite_write_lock_held_elsewhere_is_503_with_retry_after(
    locked_sqlite: Any,
) -> None:
    """SQLite's "database is locked" (another process holds the write lock past the
    busy timeout) is the embedded mode's outage: 503 and nothing half-stored."""
    app, path = locked_sqlite
    owner = await make_user("ann@example.com")
    team = await make_team("Acme", owner)
    bearer = await token_for(owner)
    client = app.test_client()
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        resp = await client.post(
            f"/api/teams/{team.id}/phone-numbers", json={"number": "+14155550111"}, headers=bearer
        )
        assert resp.status_code == 503, await resp.get_data(as_text=True)
        assert (await resp.get_json())["code"] == "SERVICE_UNAVAILABLE"
        assert int(resp.headers["Retry-After"]) >= 1
    finally:
        other.execute("ROLLBACK")
        other.close()
    resp = await client.post(
        f"/api/teams/{team.id}/phone-numbers", json={"number": "+14155550111"}, headers=bearer
    )
    assert resp.status_code == 201
    assert await PhoneNumber.filter(number="+14155550111").count() == 1


async def test_requests_cancelled_while_beginning_do_not_wedge_later_ones(
    make_app: Any, db_kind: str
) -> None:
    """A transaction's task is cancelled (its client hung up) at every point of its
    start in turn. What it took (SQLite: the connection's lock; PostgreSQL: a pooled
    connection) must be given back: afterwards transactions still work instead of
    waiting forever."""
    from tortoise.transactions import in_transaction

    await make_app(db=db_kind)

    async def one() -> None:
        async with in_transaction() as tx:
            await tx.execute_query("SELECT 1")

    for steps in range(40):  # cancel after 0, 1, 2, ... turns of the event loop
        for _ in range(3):
            task = asyncio.ensure_future(one())
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    async with asyncio.timeout(10):  # bounded: a leak would make this wait forever
        await asyncio.gather(*(one() for _ in range(8)))  # more than the pool holds

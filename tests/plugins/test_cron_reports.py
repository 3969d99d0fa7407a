"""``daily-summary`` and ``weekly-report`` as a pinger and a team see them: the task is
pinged with the cron secret, one job per team mails the report through a real SMTP
server on loopback, and the tests read the figures back out of the mails.

The data straddles DST changes: Europe/Berlin leaves summer time on 2026-10-25 and
America/Los_Angeles on 2026-11-01, so a local day there is 25 hours long and a report
that cut days at a fixed offset would put the calls near midnight on the wrong day.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import pytest

from gateway.calls.models import Call, CallAnalysis, Recording
from gateway.jobs.models import Job
from gateway.jobs.worker import run_pending_jobs
from gateway.webhooks.models import WebhookEvent
from tests.support.cron_plugin import SECRET, bearer
from tests.support.identity import make_team, make_user, token_for
from tests.support.smtp_server import SmtpServer, free_port

FROM = "Renchi Reports <reports@renchi.test>"
DAILY = "/api/cron/daily-summary"
WEEKLY = "/api/cron/weekly-report"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def mail_settings(port: int) -> dict:
    return {"host": "127.0.0.1", "port": port, "security": "none", "from_address": FROM}


async def reports_app(make_app, port: int | None, **cron):
    return await make_app(
        plugins={"cron": cron},
        cron_secret=SECRET,
        **({"mail": mail_settings(port)} if port else {}),
    )


async def team_with_people(name: str, zone: str, owner: str, **others: str):
    """A team in ``zone`` owned by ``owner``; ``others`` maps e-mail -> role (a role
    ending in ``!`` makes an inactive user)."""
    user = await make_user(owner, password=None)
    user.name = owner.split("@")[0].title()
    await user.save()
    team = await make_team(name, user)
    team.time_zone = zone
    await team.save()
    from gateway.identity import service

    for email, role in others.items():
        member = await make_user(email, password=None)
        if role.endswith("!"):
            member.is_active = False
            await member.save()
        await service.add_member(team, member, role.rstrip("!"))
    return team, user


n_calls = 0


async def call(team, at: datetime, status="completed", duration: int | None = None):
    global n_calls
    n_calls += 1
    answered = at + timedelta(seconds=5) if status == "completed" else None
    return await Call.create(
        external_id=f"CA{n_calls:030d}",
        team_id=team.id,
        status=status,
        started_at=at,
        answered_at=answered,
        ended_at=at + timedelta(seconds=duration or 0),
        duration_seconds=duration,
    )


async def analysis(team, at: datetime, outcome: str, data=None, analyzed=True):
    global n_calls
    n_calls += 1
    return await CallAnalysis.create(
        team_id=team.id,
        conversation_id=f"conv_{n_calls}",
        outcome=outcome,
        data_collection=data or {},
        started_at=at,
        analyzed_at=at + timedelta(minutes=3) if analyzed else None,
    )


async def recording(team, at: datetime, size: int):
    global n_calls
    n_calls += 1
    return await Recording.create(
        external_id=f"RE{n_calls:030d}",
        team_id=team.id,
        status="stored",
        stored_at=at,
        size_bytes=size,
    )


def figures_of(mail) -> dict[str, str]:
    """``{label: value}`` from the plain-text part's ``Label: value`` lines."""
    text = mail.get_body(("plain",)).get_content()
    return {k: v.strip() for k, v in re.findall(r"^([A-Z][A-Za-z ,/0-9]+?):\s+(.+)$", text, re.M)}


def mails_to(server) -> dict[str, object]:
    """The mails received, by their sorted recipients."""
    out = {}
    for (_sender, rcpts), mail in zip(server.sink.envelopes, server.sink.mails, strict=True):
        key = ",".join(sorted(rcpts))
        assert key not in out, f"{key} was mailed twice"
        out[key] = mail
    return out


async def opt(app, team, owner, **choices):
    resp = await app.test_client().put(
        f"/api/teams/{team.id}/settings/cron", json=choices, headers=await token_for(owner)
    )
    assert resp.status_code == 200, await resp.get_data()


# --- daily ----------------------------------------------------------------------------

# The daily window of 2026-10-25 18:00 UTC covers [10-24 18:00, 10-25 18:00) UTC; in
# Berlin that is Saturday 20:00 CEST to Sunday 19:00 CET (a 24-hour span over 25 local
# hours of clock face).
DAILY_RUN = utc(2026, 10, 25, 18, 0, 30)
D_START, D_END = utc(2026, 10, 24, 18), utc(2026, 10, 25, 18)


async def seed_daily():
    berlin, ann = await team_with_people(
        "Berlin Sales",
        "Europe/Berlin",
        "ann@example.com",
        **{"bob@example.com": "admin", "carl@example.com": "member", "dan@example.com": "admin!"},
    )
    la, eve = await team_with_people("LA <Support>", "America/Los_Angeles", "eve@example.com")
    quiet, quinn = await team_with_people("Quiet", "UTC", "quinn@example.com")
    chatty, opal = await team_with_people("Opted out", "UTC", "opal@example.com")
    # Berlin: six calls inside the window, two just outside it.
    await call(berlin, D_START, duration=120)  # the start is inside
    await call(berlin, D_START + timedelta(hours=3), duration=60)
    await call(berlin, D_START + timedelta(hours=4), status="busy")
    await call(berlin, D_START + timedelta(hours=5), status="no-answer")
    await call(berlin, D_START + timedelta(hours=6), status="failed")
    await call(berlin, D_END - timedelta(seconds=1), duration=30)
    await call(berlin, D_START - timedelta(seconds=1), duration=999)  # the day before
    await call(berlin, D_END, duration=999)  # the end is outside
    await analysis(
        berlin,
        D_START + timedelta(hours=1),
        "success",
        {"meeting_booked": {"value": True, "rationale": "booked Tuesday"}},
    )
    await analysis(
        berlin, D_START + timedelta(hours=2), "success", {"meeting_booked": {"value": "no"}}
    )
    await analysis(berlin, D_START + timedelta(hours=3), "failure", {"meeting_booked": "yes"})
    await analysis(
        berlin, D_START - timedelta(hours=1), "success", {"meeting_booked": {"value": True}}
    )  # before the window
    await analysis(berlin, D_START + timedelta(hours=4), "success", analyzed=False)
    await recording(berlin, D_START + timedelta(hours=1), 1000)
    await recording(berlin, D_START + timedelta(hours=2), 2000)
    await recording(berlin, D_END, 4000)  # outside
    # LA: one long answered call and one analysis with an unusual outcome.
    await call(la, D_START + timedelta(hours=12), duration=3725)
    await analysis(la, D_START + timedelta(hours=12), "escalated", {"meeting_booked": {"value": 1}})
    await call(chatty, D_START + timedelta(hours=1), duration=10)
    return {
        "berlin": (berlin, ann),
        "la": (la, eve),
        "quiet": (quiet, quinn),
        "chatty": (chatty, opal),
    }


async def test_daily_summary_mails_each_team_its_figures_in_its_time_zone(make_app, clock):
    with SmtpServer() as server:
        app = await reports_app(make_app, server.port)
        teams = await seed_daily()
        await opt(app, *teams["chatty"], daily_summary_mail=False)
        clock.set(DAILY_RUN)
        resp = await app.test_client().get(DAILY, headers=bearer())
        body = await resp.get_json()
        assert resp.status_code == 200 and body["status"] == "succeeded", body
        assert body["figures"] == {
            "teams": 4,
            "teams_with_calls": 3,
            "opted_out": 1,
            "no_calls": 1,
            "mails_queued": 2,
            "already_queued": 0,
        }
        assert await run_pending_jobs(app) == 2
    mails = mails_to(server)
    assert set(mails) == {"ann@example.com,bob@example.com", "eve@example.com"}

    berlin = mails["ann@example.com,bob@example.com"]
    assert berlin["Subject"] == "Daily summary for Berlin Sales: 6 calls"
    assert berlin["To"] == "Ann <ann@example.com>, bob@example.com"
    assert berlin["From"] == FROM and berlin["Auto-Submitted"] == "auto-generated"
    assert figures_of(berlin) == {
        "Calls": "6",
        "Answered": "3",
        "Failed / busy / no answer": "1 / 1 / 1",
        "Average duration": "1m 10s",
        "Total duration": "3m 30s",
        "Success rate": "67% (2 of 3 analyzed calls)",
        "Top outcomes": "success 2, failure 1",
        "Meetings booked": "2",  # {"value": true} and a bare "yes"; not {"value": "no"}
        "Recordings stored": "2",
    }
    text = berlin.get_body(("plain",)).get_content()
    assert "Sat 24 Oct 2026 20:00 CEST - Sun 25 Oct 2026 19:00 CET (Europe/Berlin)" in text
    html = berlin.get_body(("html",)).get_content()
    assert "<td" in html and "Berlin Sales" in html and "Sun 25 Oct 2026 19:00 CET" in html

    la = mails["eve@example.com"]
    assert la["Subject"] == "Daily summary for LA <Support>: 1 calls"
    la_html = la.get_body(("html",)).get_content()
    assert "LA &lt;Support&gt;" in la_html and "<Support>" not in la_html
    assert figures_of(la)["Total duration"] == "1h 02m 05s"
    assert figures_of(la)["Top outcomes"] == "unknown 1"
    assert figures_of(la)["Success rate"] == "0% (0 of 1 analyzed calls)"
    assert figures_of(la)["Meetings booked"] == "1"
    la_text = la.get_body(("plain",)).get_content()
    assert "Sat 24 Oct 2026 11:00 PDT - Sun 25 Oct 2026 11:00 PDT" in la_text


async def test_a_team_without_calls_is_mailed_only_when_it_opted_in(make_app, clock):
    with SmtpServer() as server:
        app = await reports_app(make_app, server.port)
        quiet, quinn = await team_with_people("Quiet", "Asia/Kolkata", "quinn@example.com")
        clock.set(DAILY_RUN)
        body = await (await app.test_client().get(DAILY, headers=bearer())).get_json()
        assert body["figures"]["no_calls"] == 1 and body["figures"]["mails_queued"] == 0
        await opt(app, quiet, quinn, mail_without_calls=True)
        body = await (
            await app.test_client().get(DAILY + "?force=true", headers=bearer())
        ).get_json()
        assert body["figures"]["mails_queued"] == 1
        await run_pending_jobs(app)
    (mail,) = server.sink.mails
    assert figures_of(mail)["Calls"] == "0" and figures_of(mail)["Average duration"] == "-"
    assert "Success rate" in figures_of(mail) and figures_of(mail)["Success rate"] == "-"


async def test_mail_server_down_then_up_mails_each_team_exactly_once(make_app, clock):
    port = free_port()
    app = await reports_app(make_app, port)
    teams = [await team_with_people(f"T{i}", "UTC", f"owner{i}@example.com") for i in range(3)]
    for team, _ in teams:
        await call(team, D_START + timedelta(hours=1), duration=10)
    clock.set(DAILY_RUN)
    body = await (await app.test_client().get(DAILY, headers=bearer())).get_json()
    assert body["figures"]["mails_queued"] == 3

    with SmtpServer(port=port) as first:
        assert await run_pending_jobs(app, limit=1) == 1  # one team mailed, then...
    assert await run_pending_jobs(app) == 2  # ...the server is down: both fail
    assert await Job.filter(handler="cron.mail_report", status="pending").count() == 2
    # A forced rerun of the task queues nothing again: each team has its job.
    body = await (await app.test_client().get(DAILY + "?force=true", headers=bearer())).get_json()
    assert body["figures"]["mails_queued"] == 0 and body["figures"]["already_queued"] == 3

    with SmtpServer(port=port) as second:
        assert await run_pending_jobs(app) == 0  # the retries wait for their backoff
        clock.advance(hours=1)
        assert await run_pending_jobs(app) == 2
    received = [*first.sink.envelopes, *second.sink.envelopes]
    assert sorted(r for _s, rcpts in received for r in rcpts) == [
        "owner0@example.com",
        "owner1@example.com",
        "owner2@example.com",
    ]
    assert await Job.filter(handler="cron.mail_report", status="succeeded").count() == 3


async def test_a_refused_recipient_does_not_stop_the_others(make_app, clock):
    with SmtpServer() as server:
        server.sink.refuse["bob@example.com"] = "550 5.1.1 no such user"
        app = await reports_app(make_app, server.port)
        team, _ = await team_with_people(
            "T", "UTC", "ann@example.com", **{"bob@example.com": "admin"}
        )
        await call(team, D_START + timedelta(hours=1), duration=10)
        clock.set(DAILY_RUN)
        await app.test_client().get(DAILY, headers=bearer())
        await run_pending_jobs(app)
    assert server.sink.envelopes == [("reports@renchi.test", ["ann@example.com"])]
    assert await Job.filter(handler="cron.mail_report", status="succeeded").count() == 1


async def test_mail_not_configured_skips_the_run_and_logs_once(make_app, clock, caplog):
    app = await reports_app(make_app, None)
    team, _ = await team_with_people("T", "UTC", "ann@example.com")
    await call(team, D_START + timedelta(hours=1), duration=10)
    clock.set(DAILY_RUN)
    with caplog.at_level(logging.WARNING, logger="gateway.mail"):
        for path in (DAILY, DAILY + "?force=true"):
            resp = await app.test_client().get(path, headers=bearer())
            body = await resp.get_json()
            assert resp.status_code == 200 and body["status"] == "skipped", body
            assert body["detail"] == "mail not configured"
            assert body["figures"]["teams_with_calls"] == 1
    assert [r.message for r in caplog.records].count(
        "mail not configured ([gateway.mail] host is not set): not sending"
    ) == 1
    assert await Job.filter(handler="cron.mail_report").count() == 0


# --- weekly ---------------------------------------------------------------------------

# Monday 2026-11-02 09:00 UTC. Berlin: the week Mon 10-26 .. Sun 11-01 against Mon 10-19
# .. Sun 10-25 (25 hours: CEST ended). Los Angeles: 01:00 PST on Monday, so the same
# dates, and its Sunday 11-01 is the 25-hour day (PDT ended).
WEEKLY_RUN = utc(2026, 11, 2, 9, 0, 5)


async def seed_weekly(prefix: str = ""):
    berlin, _ = await team_with_people("Berlin", "Europe/Berlin", f"{prefix}ann@example.com")
    la, _ = await team_with_people("LA", "America/Los_Angeles", f"{prefix}eve@example.com")
    hawaii, _ = await team_with_people("Hawaii", "Pacific/Honolulu", f"{prefix}hal@example.com")
    # Berlin, this week: Mon 10-26 two calls, Sun 11-01 one call at 23:30 local (22:30
    # UTC); the previous week: Sun 10-25 23:30 CET = 22:30 UTC (inside 10-25, which a
    # CEST offset would have pushed into this week), and Tue 10-20.
    await call(berlin, utc(2026, 10, 26, 8), duration=60)
    await call(berlin, utc(2026, 10, 26, 9), status="no-answer")
    await call(berlin, utc(2026, 11, 1, 22, 30), duration=30)
    await call(berlin, utc(2026, 10, 25, 22, 30), duration=10)
    await call(berlin, utc(2026, 10, 20, 12), duration=10)
    await call(berlin, utc(2026, 10, 18, 12), duration=10)  # before both weeks
    await analysis(berlin, utc(2026, 10, 26, 8), "success", {"meeting_booked": {"value": "true"}})
    await analysis(berlin, utc(2026, 11, 1, 22, 30), "failure")
    await analysis(berlin, utc(2026, 10, 20, 12), "success")  # previous week
    # LA: Sunday 11-01 23:30 PST = 11-02 07:30 UTC is still Sunday there (a PDT cut
    # would end Sunday at 07:00 UTC); Monday 10-26 00:30 PDT = 07:30 UTC.
    await call(la, utc(2026, 11, 2, 7, 30), duration=100)
    await call(la, utc(2026, 10, 26, 7, 30), duration=100)
    await call(la, utc(2026, 10, 26, 6, 30), duration=100)  # Sunday 10-25 local: previous
    # Hawaii: Monday 09:00 UTC is Sunday 23:00 there: its week is Sun 10-25 .. Sat 10-31.
    await call(hawaii, utc(2026, 10, 25, 20), duration=5)  # Sun 10-25 10:00 HST
    await call(hawaii, utc(2026, 11, 1, 20), duration=5)  # Sun 11-01: not complete yet
    return berlin, la, hawaii


async def test_weekly_report_compares_two_local_weeks_and_emits_one_event_per_team(make_app, clock):
    with SmtpServer() as server:
        app = await reports_app(make_app, server.port)
        berlin, la, hawaii = await seed_weekly()
        clock.set(WEEKLY_RUN)
        body = await (await app.test_client().get(WEEKLY, headers=bearer())).get_json()
        assert body["status"] == "succeeded", body
        assert body["figures"] == {
            "teams": 3,
            "teams_with_calls": 3,
            "opted_out": 0,
            "no_calls": 0,
            "events": 3,
            "mails_queued": 3,
            "already_queued": 0,
        }
        # Forced again: no second event, no second mail.
        body = await (
            await app.test_client().get(WEEKLY + "?force=true", headers=bearer())
        ).get_json()
        assert body["figures"]["events"] == 0 and body["figures"]["already_queued"] == 3
        await run_pending_jobs(app)

    events = {
        e.team_id: e.payload
        for e in await WebhookEvent.filter(type="report.weekly.ready").order_by("id")
    }
    assert len(events) == 3
    days = [f"2026-10-{d}" for d in range(26, 32)] + ["2026-11-01"]
    assert events[berlin.id] == {
        "team_id": berlin.id,
        "team_name": "Berlin",
        "time_zone": "Europe/Berlin",
        "period_start": "2026-10-26",
        "period_end": "2026-11-01",
        "calls": 3,
        "previous_calls": 2,
        "answered": 2,
        "success_rate": 0.5,
        "meetings_booked": 1,
        "total_duration_seconds": 90,
        "top_outcomes": [{"outcome": "failure", "count": 1}, {"outcome": "success", "count": 1}],
        "days": [
            {"date": day, "calls": {"2026-10-26": 2, "2026-11-01": 1}.get(day, 0)} for day in days
        ],
    }
    assert events[la.id]["calls"] == 2 and events[la.id]["previous_calls"] == 1
    assert events[la.id]["success_rate"] is None and events[la.id]["top_outcomes"] == []
    assert [d["calls"] for d in events[la.id]["days"]] == [1, 0, 0, 0, 0, 0, 1]
    assert (events[hawaii.id]["period_start"], events[hawaii.id]["period_end"]) == (
        "2026-10-25",
        "2026-10-31",
    )
    assert events[hawaii.id]["calls"] == 1 and events[hawaii.id]["previous_calls"] == 0

    mails = mails_to(server)
    mail = mails["ann@example.com"]
    assert mail["Subject"].strip() == "Weekly report for Berlin: 3 calls, 26 Oct - 1 Nov"
    figures = figures_of(mail)
    assert figures["Calls"] == "3" and figures["Calls, previous 7 days"] == "2 (+50%)"
    assert figures["Answered, previous 7 days"] == "2 (+0%)"
    assert figures["Success rate"] == "50% (1 of 2 analyzed calls)"
    assert figures["Success rate, previous 7 days"] == "100%"
    text = mail.get_body(("plain",)).get_content()
    assert re.search(r"^Mon 2026-10-26 #{30}\s+2\s*$", text, re.M)
    assert re.search(r"^Sun 2026-11-01 #{15}\s+1\s*$", text, re.M)
    html = mail.get_body(("html",)).get_content()
    # The chart is table cells with percentage widths: nothing to fetch, no image.
    assert "<img" not in html and "http" not in html.replace("http-equiv", "")
    assert html.count('bgcolor="#2f6fde"') == 2
    assert 'width="100%" bgcolor' in html and 'width="50%" bgcolor' in html
    assert mail.get_content_type() == "multipart/alternative"
    hawaii_mail = figures_of(mails["hal@example.com"])
    assert hawaii_mail["Calls, previous 7 days"] == "0 (new)"


async def test_weekly_opt_out_stops_the_mail_not_the_event(make_app, clock):
    with SmtpServer() as server:
        app = await reports_app(make_app, server.port)
        team, owner = await team_with_people("T", "UTC", "ann@example.com")
        _quiet, _ = await team_with_people("Quiet", "UTC", "quinn@example.com")
        await call(team, utc(2026, 10, 27, 12), duration=10)
        await opt(app, team, owner, weekly_report_mail=False)
        clock.set(WEEKLY_RUN)
        body = await (await app.test_client().get(WEEKLY, headers=bearer())).get_json()
        assert body["figures"]["opted_out"] == 1 and body["figures"]["no_calls"] == 1
        assert body["figures"]["events"] == 1 and body["figures"]["mails_queued"] == 0
        await run_pending_jobs(app)
    assert server.sink.mails == []
    assert await WebhookEvent.filter(type="report.weekly.ready").count() == 1


@pytest.mark.postgres
async def test_the_figures_are_the_same_on_postgresql(make_app, clock):
    with SmtpServer() as server:
        app = await make_app(
            db="postgres",
            plugins={"cron": {}},
            cron_secret=SECRET,
            mail=mail_settings(server.port),
        )
        await seed_weekly("w-")
        teams = await seed_daily()
        clock.set(DAILY_RUN)
        await app.test_client().get(DAILY, headers=bearer())
        clock.set(WEEKLY_RUN)
        await app.test_client().get(WEEKLY, headers=bearer())
        await run_pending_jobs(app)
    berlin_id = teams["berlin"][0].id
    daily = [m for m in server.sink.mails if m["Subject"].startswith("Daily summary for Berlin")]
    assert figures_of(daily[0])["Success rate"] == "67% (2 of 3 analyzed calls)"
    assert figures_of(daily[0])["Meetings booked"] == "2"
    assert figures_of(daily[0])["Average duration"] == "1m 10s"
    events = await WebhookEvent.filter(type="report.weekly.ready").values_list("payload", flat=True)
    by_name = {e["team_name"]: e for e in events}
    assert by_name["Berlin"]["calls"] == 3 and by_name["Berlin"]["previous_calls"] == 2
    assert by_name["Berlin"]["meetings_booked"] == 1
    assert [d["calls"] for d in by_name["LA"]["days"]] == [1, 0, 0, 0, 0, 0, 1]
    assert by_name["Hawaii"]["period_end"] == "2026-10-31"
    assert berlin_id not in {e["team_id"] for e in events}  # no calls in its week


async def test_a_team_name_with_a_line_break_still_gets_its_mail(make_app, clock):
    # A team's name is free text; the subject is a header, where a line break is refused
    # (no header injection): the report must still be sent, the name on one line.
    with SmtpServer() as server:
        app = await reports_app(make_app, server.port)
        team, _ = await team_with_people("Sales\r\nBcc: x@evil.test", "UTC", "ann@example.com")
        await call(team, D_START + timedelta(hours=1), duration=10)
        clock.set(DAILY_RUN)
        body = await (await app.test_client().get(DAILY, headers=bearer())).get_json()
        assert body["figures"]["mails_queued"] == 1
        await run_pending_jobs(app)
        assert await Job.filter(status="dead").count() == 0
    (mail,) = server.sink.mails
    assert mail["Subject"] == "Daily summary for Sales Bcc: x@evil.test: 1 calls"
    assert mail["Bcc"] is None


async def test_a_greylisting_server_gets_the_mail_on_the_retry(make_app, clock):
    # 451 on every recipient ("try again later", greylisting) is not a refusal: nobody
    # got the report, so the job is retried and the report arrives once.
    with SmtpServer() as server:
        server.sink.refuse["ann@example.com"] = "451 4.7.1 greylisted, try again later"
        app = await reports_app(make_app, server.port)
        team, _ = await team_with_people("T", "UTC", "ann@example.com")
        await call(team, D_START + timedelta(hours=1), duration=10)
        clock.set(DAILY_RUN)
        await app.test_client().get(DAILY, headers=bearer())
        await run_pending_jobs(app)
        assert server.sink.envelopes == []
        assert await Job.filter(handler="cron.mail_report", status="pending").count() == 1
        del server.sink.refuse["ann@example.com"]
        clock.advance(hours=1)
        await run_pending_jobs(app)
    assert server.sink.envelopes == [("reports@renchi.test", ["ann@example.com"])]
    assert await Job.filter(handler="cron.mail_report", status="succeeded").count() == 1

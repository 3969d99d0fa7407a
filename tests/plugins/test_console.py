"""The console over HTTP without a browser (no JavaScript at all): sign in with the
CSRF token, the security headers, the pages built from the JSON API, a settings form's
400 shown next to its field, other teams' calls as 404 pages. The browser tests
(tests/plugins/test_console_browser.py) drive the same pages in Chromium."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest

from gateway.identity.models import PhoneNumber, VoiceAgent
from gateway.jobs.models import Job
from tests.support.call_story import AGENT
from tests.support.fake_twilio import FakeTwilioMedia
from tests.support.identity import PASSWORD, make_team, make_user
from tests.test_calls_api import ACCOUNT_TOKEN, told_call

HUBSPOT = {"client_id": "hs-id", "client_secret": "hs-secret"}


@pytest.fixture
async def media():
    fake = await FakeTwilioMedia(*ACCOUNT_TOKEN).start()
    yield fake
    await fake.stop()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def sign_in(client, email: str) -> None:
    page = await client.get("/console/login")
    token = csrf_of(await page.get_data(as_text=True))
    resp = await client.post(
        "/console/login",
        form={"csrf_token": token, "email": email, "password": PASSWORD, "next": "/console/calls"},
    )
    assert resp.status_code == 303, await resp.get_data(as_text=True)
    assert resp.headers["Location"] == "/console/calls"


async def html(client, path: str, status: int = 200) -> str:
    resp = await client.get(path)
    text = await resp.get_data(as_text=True)
    assert resp.status_code == status, (path, text[:2000])
    return text


def no_inline_code(text: str) -> None:
    """The CSP allows no inline script or style: the pages must not need any."""
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text)
    assert " style=" not in text and "<style" not in text
    assert not re.search(r"\son[a-z]+=", text)


async def test_sign_in_needs_the_csrf_token_and_sets_the_session(app):
    owner = await make_user("owner@acme.test")
    await make_team("Acme", owner)
    client = app.test_client()
    resp = await client.get("/console/calls")
    assert resp.status_code == 303
    assert resp.headers["Location"] == "/console/login?next=%2Fconsole%2Fcalls"

    resp = await client.get("/console/login")
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert resp.headers["X-Frame-Options"] == "DENY"
    cookie = resp.headers["Set-Cookie"]  # public_url is https: Secure, also over http
    assert cookie.startswith("console_csrf=")
    assert {"Secure", "HttpOnly", "SameSite=Strict", "Path=/console"} <= {
        p.strip() for p in cookie.split(";")
    }
    page = await resp.get_data(as_text=True)
    no_inline_code(page)
    assert '<label for="email">' in page and '<label for="password">' in page
    token = csrf_of(page)

    form = {"email": "owner@acme.test", "password": PASSWORD}
    assert (await client.post("/console/login", form=form)).status_code == 403
    bad = {**form, "csrf_token": "x" * 43}
    assert (await client.post("/console/login", form=bad)).status_code == 403
    evil = {"Origin": "https://evil.example"}
    resp = await client.post("/console/login", form={**form, "csrf_token": token}, headers=evil)
    assert resp.status_code == 403
    wrong = {**form, "password": "not the password at all", "csrf_token": token}
    resp = await client.post("/console/login", form=wrong)
    assert resp.status_code == 401
    assert "Invalid email or password" in await resp.get_data(as_text=True)

    resp = await client.post(
        "/console/login", form={**form, "csrf_token": token, "next": "https://evil.example/"}
    )
    assert resp.status_code == 303
    assert resp.headers["Location"] == "/console/calls"  # never off-site
    assert "gateway_session=" in resp.headers["Set-Cookie"]
    page = await html(client, "/console/calls")
    assert "owner@acme.test" in page and "No calls" in page

    resp = await client.post("/console/logout", form={"csrf_token": token})
    assert resp.status_code == 303
    assert (await client.get("/console/calls")).status_code == 303


async def test_calls_list_and_timeline_pages(make_app, media, clock):
    app, story, _team, _member, _stranger = await told_call(make_app, media, clock, console={})
    client = app.test_client()
    await sign_in(client, "member@acme.test")
    page = await html(client, "/console/calls")
    no_inline_code(page)
    call_id = int(re.search(r'href="/console/calls/(\d+)"', page).group(1))
    assert story.caller in page and "success" in page
    page = await html(client, "/console/calls?outcome=failure")
    assert "No calls match these filters" in page
    page = await html(client, "/console/calls?from=yesterday", 400)
    assert "from must be an ISO 8601 date" in page

    page = await html(client, f"/console/calls/{call_id}")
    no_inline_code(page)
    assert "The caller booked a demo for Tuesday." in page
    assert "I&#39;d like a demo next Tuesday." in page
    audio = rf'<audio controls preload="metadata" src="/api/calls/{call_id}/recordings/\d+"'
    assert re.search(audio, page)
    assert "twilio_voice.download_recording" in page
    for status in ("initiated", "ringing", "in-progress", "completed"):
        assert f'<span class="pill">{status}</span>' in page

    other = app.test_client()
    await sign_in(other, "member@globex.test")
    assert "No calls" in await html(other, "/console/calls")
    assert "Not found" in await html(other, f"/console/calls/{call_id}", 404)


async def test_team_settings_form_shows_the_apis_validation_message(make_app):
    app = await make_app(plugins={"hubspot": HUBSPOT, "console": {}})
    owner = await make_user("owner@acme.test")
    await make_team("Acme", owner)
    client = app.test_client()
    await sign_in(client, "owner@acme.test")
    page = await html(client, "/console/team")
    assert 'href="/console/settings/hubspot"' in page
    page = await html(client, "/console/settings/hubspot")
    no_inline_code(page)
    assert '<label for="f-default-region">' in page
    token = csrf_of(page)
    form = {"csrf_token": token, "log_calls": "on", "default_region": "usa"}
    resp = await client.post("/console/settings/hubspot", form=form)
    page = await resp.get_data(as_text=True)
    assert resp.status_code == 400, page
    assert 'id="f-default-region-error"' in page and "pattern" in page
    assert 'value="usa"' in page  # what was typed stays
    resp = await client.post("/console/settings/hubspot", form={**form, "default_region": "GB"})
    assert resp.status_code == 303
    assert resp.headers["Location"] == "/console/settings/hubspot?notice=saved"
    page = await html(client, "/console/settings/hubspot?notice=saved")
    assert "Settings saved." in page and 'value="GB"' in page
    create = re.search(r'<input type="checkbox" id="f-create-contacts"[^>]*>', page).group(0)
    assert "checked" not in create  # unticked: false
    assert "checked" in re.search(r'<input[^>]*id="f-log-calls"[^>]*>', page).group(0)


async def test_dead_job_retry_and_integrations_page(make_app):
    app = await make_app(plugins={"hubspot": HUBSPOT, "console": {}})
    owner = await make_user("owner@acme.test")
    team = await make_team("Acme", owner)
    await PhoneNumber.create(team=team, number="+14155550100")
    await VoiceAgent.create(team=team, agent_id=AGENT)
    from gateway.events import emit_event

    emitted = await emit_event(
        app, source="test", type="test.nothing", dedup_key="d1", payload={}, team_id=team.id
    )
    gw = app.extensions["gateway"]
    job = await Job.create(
        event_id=emitted.event_id,
        team_id=team.id,
        handler="hubspot.log_call",
        status="dead",
        attempts=3,
        max_attempts=3,
        run_at=gw.clock.now(),
        created_at=gw.clock.now(),
        updated_at=gw.clock.now(),
        last_error="boom",
        history=[{"attempt": 3, "at": "2026-01-01T12:00:00Z", "error": "boom", "outcome": "dead"}],
    )
    client = app.test_client()
    await sign_in(client, "owner@acme.test")
    page = await html(client, "/console/jobs")
    no_inline_code(page)
    assert f"Retry job {job.id}" in page and "boom" in page
    assert "<option>test</option>" in page and "test.nothing" in page
    assert "test.nothing" not in await html(client, "/console/jobs?source=elsewhere")
    resp = await client.post(f"/console/jobs/{job.id}/retry", form={"csrf_token": csrf_of(page)})
    assert resp.status_code == 303
    assert resp.headers["Location"] == "/console/jobs?notice=retried"
    assert (await Job.get(id=job.id)).status == "pending"
    resp = await client.post(f"/console/jobs/{job.id}/retry", form={"csrf_token": csrf_of(page)})
    assert resp.headers["Location"] == "/console/jobs?failed=conflict"

    page = await html(client, "/console/integrations")
    no_inline_code(page)
    assert "not connected" in page
    assert "/api/integrations/hubspot/connect?team_id=" in page
    page = await html(client, "/console/integrations?integration=hubspot&error=PROVIDER_ERROR")
    assert "hubspot: not connected: the provider refused" in page


async def test_operators_page_is_for_super_admins(app):
    owner = await make_user("owner@acme.test")
    await make_team("Acme", owner)
    await make_user("ops@renchi.test", super_admin=True)
    client = app.test_client()
    await sign_in(client, "owner@acme.test")
    assert "Operators" not in await html(client, "/console/calls")
    await html(client, "/console/operators", 403)
    ops = app.test_client()
    await sign_in(ops, "ops@renchi.test")
    page = await html(ops, "/console/operators")
    no_inline_code(page)
    assert "console" in page and "Readiness" in page


async def test_static_files_and_a_stale_session(app):
    client = app.test_client()
    resp = await client.get("/console/static/console.css")
    assert resp.status_code == 200 and resp.headers["X-Frame-Options"] == "DENY"
    resp = await client.get("/console/team", headers={"Cookie": "gateway_session=forged"})
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/console/login")


async def test_invitation_accept_sets_a_password_and_signs_in(app, clock):
    owner = await make_user("owner@acme.test")
    team = await make_team("Acme", owner)
    client = app.test_client()
    await sign_in(client, "owner@acme.test")
    page = await html(client, "/console/team")
    resp = await client.post(
        "/console/team/invitations",
        form={"csrf_token": csrf_of(page), "email": "new@acme.test", "role": "member"},
    )
    page = await resp.get_data(as_text=True)
    assert resp.status_code == 201, page
    link = re.search(r'id="invite-link">([^<]+)<', page).group(1)
    invitee = app.test_client()
    page = await html(invitee, link)
    no_inline_code(page)
    assert "new@acme.test" in page and "Acme" in page
    token = csrf_of(page)
    form = {"csrf_token": token, "password": PASSWORD, "password_again": "something else!!"}
    resp = await invitee.post(link, form=form)
    assert resp.status_code == 400
    assert "The two passwords differ" in await resp.get_data(as_text=True)
    resp = await invitee.post(link, form={**form, "password_again": PASSWORD})
    assert resp.status_code == 303, await resp.get_data(as_text=True)
    assert resp.headers["Location"] == f"/console/calls?team={team.id}&notice=password_set"
    page = await html(invitee, resp.headers["Location"])
    assert "new@acme.test" in page and "Welcome!" in page


async def test_the_team_switcher_changes_the_team_of_every_page(app):
    owner = await make_user("owner@acme.test")
    acme = await make_team("Acme", owner)
    globex = await make_team("Globex", owner)
    from gateway.calls.models import Call

    await Call.create(
        external_id="CA-acme", status="completed", team_id=acme.id, from_number="+1555"
    )
    await Call.create(
        external_id="CA-globex", status="busy", team_id=globex.id, from_number="+1666"
    )
    client = app.test_client()
    await sign_in(client, "owner@acme.test")
    page = await html(client, "/console/calls")
    assert '<label for="team-switch">Team</label>' in page
    assert "+1555" in page and "+1666" not in page
    resp = await client.post(
        "/console/team",
        form={"csrf_token": csrf_of(page), "team_id": str(globex.id), "next": "/console/calls"},
    )
    assert resp.status_code == 303 and resp.headers["Location"] == "/console/calls"
    page = await html(client, "/console/calls")
    assert "+1666" in page and "+1555" not in page
    # A team the visitor is not in is ignored, not trusted.
    resp = await client.post(
        "/console/team", form={"csrf_token": csrf_of(page), "team_id": "999", "next": "/x"}
    )
    assert resp.headers["Location"] == "/console/calls"
    assert "+1666" in await html(client, "/console/calls")


def test_each_integration_state_in_words():
    from plugins.console.pages.integrations import state_of

    base = {"configured": True, "account": None, "last_error": None}
    assert state_of({**base, "configured": False}) == ("off", "not configured")
    assert state_of({**base, "status": "not_connected"}) == ("off", "not connected")
    connected = {**base, "status": "connected", "account": {"id": "24681357", "label": "acme"}}
    assert state_of(connected) == ("ok", "connected as acme")
    refused = {**base, "status": "needs_reconnect", "last_error": "invalid_grant"}
    assert state_of(refused) == ("bad", "needs reconnect: invalid_grant")
    assert state_of({**base, "status": "error"}) == ("bad", "needs reconnect: error")


async def test_providers_without_credentials_are_not_configured(app):
    owner = await make_user("owner@acme.test")
    await make_team("Acme", owner)
    client = app.test_client()
    await sign_in(client, "owner@acme.test")
    page = await html(client, "/console/integrations")
    assert 'data-state="not_configured">not configured<' in page
    assert "Connect Salesforce" not in page  # nothing to connect with


async def test_every_plugins_settings_form_renders_and_saves_unchanged(app):
    """Whatever a plugin's model holds (nested models, dicts, lists, secrets), its form
    renders, and posting it back as shown is accepted."""
    owner = await make_user("owner@acme.test")
    await make_team("Acme", owner)
    client = app.test_client()
    await sign_in(client, "owner@acme.test")
    team_page = await html(client, "/console/team")
    plugins = re.findall(r'href="/console/settings/([a-z_]+)"', team_page)
    assert {"hubspot", "elevenlabs"} <= set(plugins)
    for plugin in plugins:
        page = await html(client, f"/console/settings/{plugin}")
        no_inline_code(page)
        form: dict[str, str] = {"csrf_token": csrf_of(page)}
        for tag in re.findall(r"<(?:input|textarea|select)[^>]*>", page):
            name = re.search(r'name="([^"]+)"', tag)
            if name is None or name.group(1) == "csrf_token" or "secret" in name.group(1):
                continue
            if 'type="checkbox"' in tag:
                if "checked" in tag:
                    form[name.group(1)] = "on"
                continue
            value = re.search(r'value="([^"]*)"', tag)
            form[name.group(1)] = value.group(1) if value else ""
        for name, text in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>([^<]*)</textarea>', page):
            form[name] = text.replace("&#34;", '"').replace("&quot;", '"')
        resp = await client.post(f"/console/settings/{plugin}", form=form)
        assert resp.status_code == 303, (plugin, await resp.get_data(as_text=True))


async def test_own_tokens_and_phone_numbers_from_the_team_page(app):
    owner = await make_user("owner@acme.test")
    await make_team("Acme", owner)
    client = app.test_client()
    await sign_in(client, "owner@acme.test")
    page = await html(client, "/console/team")
    no_inline_code(page)
    token = csrf_of(page)

    resp = await client.post("/console/tokens", form={"csrf_token": token, "label": "ci"})
    page = await resp.get_data(as_text=True)
    assert resp.status_code == 201, page
    secret = re.search(r'<code id="new-token">([^<]+)</code>', page).group(1)
    resp = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {secret}"})
    assert resp.status_code == 200  # the token shown is a working one
    assert secret not in await html(client, "/console/team")  # shown once
    resp = await client.post(
        "/console/tokens", form={"csrf_token": token, "label": "x", "expires_in_days": "0"}
    )
    assert resp.status_code == 400
    assert 'id="token-error"' in await resp.get_data(as_text=True)
    token_id = re.search(r'action="/console/tokens/(\d+)/revoke"', page).group(1)
    resp = await client.post(f"/console/tokens/{token_id}/revoke", form={"csrf_token": token})
    assert resp.headers["Location"] == "/console/team?notice=token_revoked"
    resp = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {secret}"})
    assert resp.status_code == 401

    resp = await client.post(
        "/console/team/phone-numbers", form={"csrf_token": token, "number": "555-nope"}
    )
    assert resp.status_code == 400
    assert 'id="number-error"' in await resp.get_data(as_text=True)
    resp = await client.post(
        "/console/team/phone-numbers", form={"csrf_token": token, "number": "+14155550100"}
    )
    assert resp.headers["Location"] == "/console/team?notice=number_added"
    page = await html(client, "/console/team?notice=number_added")
    assert "<code>+14155550100</code>" in page and "Phone number added." in page


async def test_a_link_cannot_make_the_integrations_page_say_anything(make_app):
    """Like ``?notice=``, the OAuth outcome in the query string shows fixed words only: a
    crafted link must not put its own text on the page (phishing in our own frame)."""
    app = await make_app(plugins={"hubspot": HUBSPOT, "console": {}})
    owner = await make_user("owner@acme.test")
    await make_team("Acme", owner)
    client = app.test_client()
    await sign_in(client, "owner@acme.test")
    lure = "Your account is locked, call +1 900 555 0100"
    query = urlencode({"integration": "hubspot", "error": lure})
    page = await html(client, f"/console/integrations?{query}")
    assert "+1 900 555 0100" not in page
    assert "hubspot: not connected" in page
    query = urlencode({"integration": lure, "status": "connected"})
    page = await html(client, f"/console/integrations?{query}")
    assert "+1 900 555 0100" not in page


async def test_a_next_parameter_that_cannot_be_a_header_goes_to_the_calls_page(make_app):
    """A line break (header injection), a NUL or a character outside Latin-1 in ``next``
    was put into ``Location`` as sent: a 500 instead of signing in, or a raw byte in the
    header. Such a ``next`` is refused like a foreign one; a non-ASCII path is escaped."""
    app = await make_app(plugins={"console": {}})
    owner = await make_user("owner@acme.test")
    await make_team("Acme", owner)
    client = app.test_client()
    page = await client.get("/console/login")
    token = csrf_of(await page.get_data(as_text=True))
    for bad in ("/console/\r\nSet-Cookie: x=1", "/console/\x00", "/console/a b", "/console/\\x"):
        form = {"csrf_token": token, "email": "owner@acme.test", "password": PASSWORD}
        resp = await client.post("/console/login", form={**form, "next": bad})
        assert (resp.status_code, resp.headers["Location"]) == (303, "/console/calls"), bad
        assert "x=1" not in resp.headers.getlist("Set-Cookie")
        resp = await client.post("/console/team", form={**form, "team_id": "1", "next": bad})
        assert (resp.status_code, resp.headers["Location"]) == (303, "/console/calls"), bad
    resp = await client.post("/console/team", form={"csrf_token": token, "next": "/console/€"})
    assert (resp.status_code, resp.headers["Location"]) == (303, "/console/%E2%82%AC")


async def test_a_token_lifetime_that_is_not_a_plain_number_is_a_400_not_a_500(app):
    """``"²".isdigit()`` is true but ``int("²")`` fails, as does a 5000-digit number."""
    owner = await make_user("owner@acme.test")
    await make_team("Acme", owner)
    client = app.test_client()
    await sign_in(client, "owner@acme.test")
    token = csrf_of(await html(client, "/console/team"))
    for days in ("²", "9" * 5000, "99999999999999999999999"):
        form = {"csrf_token": token, "label": "x", "expires_in_days": days}
        resp = await client.post("/console/tokens", form=form)
        assert resp.status_code == 400, days[:10]
        assert 'id="token-error"' in await resp.get_data(as_text=True)

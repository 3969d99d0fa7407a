"""Per-team plugin settings, from a team admin's side over HTTP, and read typed by code."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import BaseModel
from tortoise import connections

from gateway.crypto import TokenCipher
from gateway.errors import StartupError
from gateway.identity import service
from gateway.team_settings import (
    PLACEHOLDER,
    TeamSettingsInvalid,
    get_many_team_settings,
    get_team_settings,
)
from tests.support.identity import make_team, make_user, member_headers, token_for
from tests.support.settings_plugin import NAME, SettingsPlugin, VoiceSettings

URL = "/api/teams/{}/settings/" + NAME
SECRET = "sk-live-0123456789abcdef"
HOOK_SECRET = "whsec-9876543210"


async def settings_app(make_app: Any, db: str = "sqlite") -> Any:
    return await make_app(db=db, extra_plugins=[(NAME, SettingsPlugin())])


async def seed() -> tuple[Any, dict[str, str]]:
    owner = await make_user("owner@example.com")
    team = await make_team("Acme", owner)
    return team, await token_for(owner)


async def raw_rows() -> list[dict[str, Any]]:
    rows = await connections.get("default").execute_query_dict(
        "SELECT team_id, plugin, document, secrets_enc, version FROM team_plugin_settings"
    )
    return [dict(r) for r in rows]


async def test_hook_register_team_settings_defaults_and_schema_are_listed_for_members(make_app):
    app = await settings_app(make_app)
    team, _owner = await seed()
    headers = await member_headers(team, "member@example.com", "member")
    client = app.test_client()

    resp = await client.get(f"/api/teams/{team.id}/settings", headers=headers)
    assert resp.status_code == 200
    [item] = [s for s in (await resp.get_json())["settings"] if s["plugin"] == NAME]
    assert item["values"]["greeting"] == "Hello"
    assert item["values"]["crm"] == {"pipeline": "default", "api_key": None}
    assert item["secrets"] == {"crm.api_key": "unset", "webhook_secret": "unset"}
    assert item["version"] == 0 and item["updated_by"] is None
    props = item["schema"]["properties"]
    assert props["max_minutes"]["maximum"] == 60
    assert props["webhook_secret"]["anyOf"][0]["writeOnly"] is True

    resp = await client.get(URL.format(team.id), headers=headers)
    assert resp.status_code == 200
    assert (await resp.get_json())["values"]["max_minutes"] == 10


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"max_minutes": 0}, "max_minutes"),
        ({"max_minutes": "ten"}, "max_minutes"),
        ({"crm": {"pipeline": 5}}, "crm.pipeline"),
        ({"crm": {"pipline": "x"}}, "crm.pipline"),
        ({"greting": "Hi"}, "greting"),
        ({"variables": {"a": 1}}, "variables.a"),
        (["not", "an", "object"], "body"),
    ],
)
async def test_bad_values_are_refused_naming_the_field(make_app, body, field):
    app = await settings_app(make_app)
    team, headers = await seed()
    client = app.test_client()
    for method in ("PUT", "PATCH"):
        resp = await client.open(URL.format(team.id), method=method, headers=headers, json=body)
        assert resp.status_code == 400, (method, body)
        error = await resp.get_json()
        assert error["code"] == "VALIDATION_ERROR"
        assert error["field"] == field, error
        assert error.get("errors", [{"field": "body"}])[0]["field"] == field
    assert await raw_rows() == []  # nothing stored


async def test_roles_members_read_admins_and_owners_write(any_app_settings):
    app = any_app_settings
    owner = await make_user("owner@example.com")
    team = await make_team("Acme", owner)
    client = app.test_client()
    member = await member_headers(team, "member@example.com", "member")
    admin = await member_headers(team, "admin@example.com", "admin")

    for method in ("PUT", "PATCH"):
        resp = await client.open(URL.format(team.id), method=method, headers=member, json={})
        assert resp.status_code == 403
    assert (await client.get(URL.format(team.id), headers=member)).status_code == 200

    resp = await client.put(URL.format(team.id), headers=admin, json={"greeting": "Hi"})
    assert resp.status_code == 200
    body = await resp.get_json()
    assert body["changed"] == ["greeting"]
    assert body["updated_by"]["email"] == "admin@example.com"
    resp = await client.patch(
        URL.format(team.id), headers=await token_for(owner), json={"max_minutes": 30}
    )
    assert resp.status_code == 200
    assert (await resp.get_json())["values"] | {"crm": None, "variables": None} == {
        "greeting": "Hi",
        "max_minutes": 30,
        "variables": None,
        "crm": None,
        "webhook_secret": None,
    }
    # Nobody without credentials, nobody from another team.
    assert (await client.get(URL.format(team.id))).status_code == 401
    stranger = await make_user("stranger@example.com")
    await make_team("Other", stranger)
    other = await token_for(stranger)
    for method in ("GET", "PUT", "PATCH"):
        resp = await client.open(URL.format(team.id), method=method, headers=other, json={})
        assert resp.status_code == 403
        assert (await resp.get_json())["code"] == "FORBIDDEN"
    resp = await client.get(f"/api/teams/{team.id}/settings", headers=other)
    assert resp.status_code == 403


@pytest.fixture
async def any_app_settings(make_app, db_kind):
    return await settings_app(make_app, db_kind)


async def test_unknown_plugin_or_plugin_without_settings_is_404(make_app):
    app = await settings_app(make_app)
    team, headers = await seed()
    client = app.test_client()
    for plugin in ("nope", "twilio_voice"):
        for method in ("GET", "PUT", "PATCH"):
            resp = await client.open(
                f"/api/teams/{team.id}/settings/{plugin}", method=method, headers=headers, json={}
            )
            assert resp.status_code == 404, (plugin, method)
            assert (await resp.get_json())["code"] == "NOT_FOUND"
        resp = await client.get(f"/api/teams/{team.id}/settings/{plugin}/history", headers=headers)
        assert resp.status_code == 404


async def test_secrets_are_encrypted_never_returned_and_kept_when_left_out(any_app_settings):
    app = any_app_settings
    team, headers = await seed()
    client = app.test_client()
    url = URL.format(team.id)

    resp = await client.put(
        url,
        headers=headers,
        json={"webhook_secret": HOOK_SECRET, "crm": {"pipeline": "sales", "api_key": SECRET}},
    )
    assert resp.status_code == 200
    text = await resp.get_data(as_text=True)
    assert SECRET not in text and HOOK_SECRET not in text
    body = json.loads(text)
    assert body["values"]["crm"]["api_key"] == PLACEHOLDER
    assert body["secrets"] == {"crm.api_key": "set", "webhook_secret": "set"}

    [row] = await raw_rows()
    assert SECRET not in json.dumps(row, default=str) and HOOK_SECRET not in str(row)
    document = row["document"] if isinstance(row["document"], dict) else json.loads(row["document"])
    assert document["crm"] == {"pipeline": "sales", "api_key": None}
    keys = app.extensions["gateway"].secrets.encryption_keys
    opened = json.loads(TokenCipher(keys).decrypt(row["secrets_enc"]))
    assert sorted(opened) == sorted(
        [[["crm", "api_key"], SECRET], [["webhook_secret"], HOOK_SECRET]]
    )

    # PUT leaving the secrets out, or sending the placeholder back, keeps them.
    resp = await client.put(
        url, headers=headers, json={"greeting": "Hi", "crm": {"api_key": PLACEHOLDER}}
    )
    assert resp.status_code == 200
    assert sorted((await resp.get_json())["changed"]) == ["crm.pipeline", "greeting"]
    settings = await get_team_settings(team.id, NAME, VoiceSettings, app=app)
    assert settings.crm.api_key.get_secret_value() == SECRET
    assert settings.webhook_secret.get_secret_value() == HOOK_SECRET
    assert settings.crm.pipeline == "default"  # PUT replaces: the pipeline went back

    # PATCH too; null clears one.
    resp = await client.patch(url, headers=headers, json={"crm": {"pipeline": "x"}})
    assert (await resp.get_json())["changed"] == ["crm.pipeline"]
    resp = await client.patch(url, headers=headers, json={"webhook_secret": None})
    body = await resp.get_json()
    assert body["changed"] == ["webhook_secret"]
    assert body["secrets"] == {"crm.api_key": "set", "webhook_secret": "unset"}
    settings = await get_team_settings(team, NAME, VoiceSettings, app=app)
    assert settings.webhook_secret is None
    assert settings.crm.api_key.get_secret_value() == SECRET

    # The placeholder for a secret that was never set is refused (it is not a value).
    resp = await client.patch(url, headers=headers, json={"webhook_secret": PLACEHOLDER})
    assert resp.status_code == 400
    assert (await resp.get_json())["field"] == "webhook_secret"

    # A new value replaces it.
    resp = await client.patch(url, headers=headers, json={"crm": {"api_key": "sk-new"}})
    assert (await resp.get_json())["changed"] == ["crm.api_key"]
    settings = await get_team_settings(team.id, NAME, VoiceSettings, app=app)
    assert settings.crm.api_key.get_secret_value() == "sk-new"


async def test_every_change_is_recorded_without_values(make_app):
    app = await settings_app(make_app)
    team, owner_headers = await seed()
    admin = await member_headers(team, "admin@example.com", "admin")
    client = app.test_client()
    url = URL.format(team.id)
    await client.put(url, headers=owner_headers, json={"crm": {"api_key": SECRET}})
    await client.patch(url, headers=admin, json={"greeting": "Bonjour", "max_minutes": 5})
    # Saving the same values again changes nothing and records nothing.
    resp = await client.patch(url, headers=admin, json={"greeting": "Bonjour"})
    assert (await resp.get_json())["changed"] == []

    member = await member_headers(team, "member@example.com", "member")
    resp = await client.get(url + "/history", headers=member)
    assert resp.status_code == 200
    text = await resp.get_data(as_text=True)
    assert SECRET not in text and "Bonjour" not in text
    items = json.loads(text)["items"]
    assert [(i["user"]["email"], i["action"], i["changed"], i["version"]) for i in items] == [
        ("admin@example.com", "patch", ["greeting", "max_minutes"], 2),
        ("owner@example.com", "put", ["crm.api_key"], 1),
    ]
    assert all(i["at"] for i in items)


async def test_typed_reads_from_a_handler_context_and_in_bulk(make_app):
    app = await settings_app(make_app)
    team, headers = await seed()
    other = await make_team("Other", None)
    client = app.test_client()
    await client.put(
        URL.format(team.id),
        headers=headers,
        json={"variables": {"company": "Acme"}, "crm": {"api_key": SECRET}},
    )
    # What a job handler does: no request, the app from its JobContext.
    settings = await get_team_settings(team.id, NAME, VoiceSettings, app=app)
    assert isinstance(settings, VoiceSettings)
    assert settings.variables == {"company": "Acme"}
    assert settings.crm.api_key.get_secret_value() == SECRET
    # The Gateway object works as well as the app.
    gw = app.extensions["gateway"]
    assert (await get_team_settings(team, NAME, VoiceSettings, app=gw)).max_minutes == 10
    # Secrets cannot be opened without saying which app.
    with pytest.raises(RuntimeError, match="pass app="):
        await get_team_settings(team.id, NAME, VoiceSettings)
    # A team that saved nothing reads the defaults, with no app needed.
    assert await get_team_settings(other.id, NAME, VoiceSettings) == VoiceSettings()

    many = await get_many_team_settings([team, other.id, team.id], NAME, VoiceSettings, app=app)
    assert sorted(many) == sorted([team.id, other.id])
    assert many[team.id].variables == {"company": "Acme"}
    assert many[other.id] == VoiceSettings()


async def test_stored_document_from_an_older_model_still_reads(make_app):
    """A field the plugin removed is ignored; a type change is reported, not guessed."""
    app = await settings_app(make_app)
    team, headers = await seed()
    await app.test_client().put(URL.format(team.id), headers=headers, json={"greeting": "Hi"})
    conn = connections.get("default")
    await conn.execute_query(
        "UPDATE team_plugin_settings SET document = ?",
        [json.dumps({"greeting": "Hi", "old_field": 1})],
    )
    assert (await get_team_settings(team.id, NAME, VoiceSettings)).greeting == "Hi"
    await conn.execute_query(
        "UPDATE team_plugin_settings SET document = ?", [json.dumps({"max_minutes": "x"})]
    )
    with pytest.raises(TeamSettingsInvalid) as err:
        await get_team_settings(team.id, NAME, VoiceSettings)
    assert err.value.field == "max_minutes"
    resp = await app.test_client().get(URL.format(team.id), headers=headers)
    assert (await resp.get_json())["invalid"]["field"] == "max_minutes"
    # Saving repairs it.
    resp = await app.test_client().put(URL.format(team.id), headers=headers, json={})
    assert resp.status_code == 200
    assert (await get_team_settings(team.id, NAME, VoiceSettings)).max_minutes == 10


async def test_keys_rotate_reencrypts_settings_secrets(make_app):
    from gateway.oauth.cli import reencrypt_all

    app = await settings_app(make_app)
    team, headers = await seed()
    await app.test_client().put(
        URL.format(team.id), headers=headers, json={"crm": {"api_key": SECRET}}
    )
    old = list(app.extensions["gateway"].secrets.encryption_keys)
    new = Fernet.generate_key().decode()
    counts = await reencrypt_all(TokenCipher([new, *old]))
    assert counts["team_settings"] == 1
    [row] = await raw_rows()
    assert SECRET in TokenCipher([new]).decrypt(row["secrets_enc"])


class NotAModel:
    pass


class NeedsValue(BaseModel):
    pipeline_id: str


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (NotAModel, "register_team_settings must return a pydantic model class"),
        (VoiceSettings(), "register_team_settings must return a pydantic model class"),
        (NeedsValue, "team settings field 'pipeline_id' needs a default"),
    ],
)
async def test_bad_registrations_stop_startup_naming_the_plugin(make_app, result, message):
    with pytest.raises(StartupError) as err:
        await make_app(extra_plugins=[("broken_crm", SettingsPlugin(result))], start=False)
    text = str(err.value)
    assert text.startswith("plugin 'broken_crm': ") and message in text
    assert "\n" not in text


async def test_settings_of_a_deleted_member_keep_their_history(make_app):
    app = await settings_app(make_app)
    team, _ = await seed()
    admin_user = await make_user("gone@example.com")
    await service.add_member(team, admin_user, "admin")
    await app.test_client().put(
        URL.format(team.id), headers=await token_for(admin_user), json={"greeting": "Yo"}
    )
    await admin_user.delete()
    rows = await connections.get("default").execute_query_dict(
        "SELECT user_id, user_email FROM team_settings_changes"
    )
    assert [dict(r) for r in rows] == [{"user_id": None, "user_email": "gone@example.com"}]

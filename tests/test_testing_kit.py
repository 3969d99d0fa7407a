"""gateway.testing, as a plugin author meets it: installed with the gateway, pytest loads
it (entry point ``pytest11``), its fixtures build apps, sign webhooks, run a provider's
OAuth server and drain the queue, and the project's own tests use the same fixtures."""

from __future__ import annotations

import ast
from importlib.metadata import entry_points
from pathlib import Path

import gateway.testing.plugin as kit
from gateway import hookimpl
from gateway.events import EventHandler, JobContext
from gateway.identity import PhoneNumber, Team
from gateway.testing import provider_plugin, run_connect, seed_admin

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "AC" + "0" * 32
TOKEN = "kit-auth-token-0001"


def _fixtures(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
            "fixture" in ast.unparse(d) for d in node.decorator_list
        ):
            names.add(node.name)
    return names


def test_pytest_loads_the_kit_through_its_entry_point(pytestconfig) -> None:
    (ep,) = [e for e in entry_points(group="pytest11") if e.name == "gateway"]
    assert ep.value == "gateway.testing.plugin"
    assert pytestconfig.pluginmanager.get_plugin("gateway") is kit


def test_the_project_does_not_define_the_kits_fixtures_again() -> None:
    shipped = _fixtures(Path(kit.__file__))
    assert {"make_app", "any_app", "clock", "fake_oauth", "signed_webhooks", "run_jobs"} <= shipped
    assert not shipped & _fixtures(ROOT / "tests" / "conftest.py")


class Watcher:
    """A plugin that runs one job per call-status event."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def register_event_handlers(self, config: object) -> list[EventHandler]:
        return [EventHandler("kit.watch", ("voice.call.status",), self.handle)]

    async def handle(self, ctx: JobContext) -> None:
        self.seen.append(ctx.event.payload["CallStatus"])


async def test_signed_webhooks_sign_as_twilio_does(make_app, run_jobs) -> None:
    from gateway.testing import SignedWebhooks

    watcher = Watcher()
    app = await make_app(
        plugins={"twilio_voice": {"account_sid": ACCOUNT, "auth_token": TOKEN}, "kit": {}},
        extra_plugins=[("kit", watcher)],
    )
    team = await Team.create(name="Acme")
    await PhoneNumber.create(team=team, number="+14155550123")
    form = {
        "AccountSid": ACCOUNT,
        "CallSid": "CA" + "1" * 32,
        "CallStatus": "completed",
        "Direction": "inbound",
        "From": "+14155550100",
        "To": "+14155550123",
        "CallbackSource": "call-progress-events",
        "SequenceNumber": "0",
    }
    hooks = SignedWebhooks(app)
    path = "/api/webhooks/twilio/status"
    assert (await hooks.twilio(path, form, auth_token=TOKEN)).status_code == 200
    refused = await hooks.twilio(path, form, auth_token="not-the-token")
    assert refused.status_code == 401
    assert (await refused.get_json())["code"]
    assert watcher.seen == []  # stored and queued, not run yet
    assert await run_jobs(app) == 1
    assert watcher.seen == ["completed"]


async def test_the_fake_oauth_server_drives_a_real_connect(make_app, fake_oauth) -> None:
    app = await make_app(extra_plugins=[provider_plugin(fake_oauth, name="kit_crm")])
    admin = await seed_admin()
    done = await run_connect(app.test_client(), admin, "kit_crm")
    assert done.status_code == 200, await done.get_data(as_text=True)
    assert fake_oauth.code_calls == 1

"""Hooks as pluggy documents them: call order (tryfirst, newest registration first,
trylast), wrappers (``wrapper=True`` and old-style ``hookwrapper=True``), tracing, and
first-result hooks that stop without running the later implementations.

Each test named ``test_hook_<name>...`` must call that hook (tests/conftest.py checks it
while the test runs; tests/test_hookspecs.py checks that every hook has one)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from quart import Blueprint

from gateway import hookimpl
from gateway.auth import Principal
from gateway.dispatch import HookCall
from gateway.errors import Unauthorized
from gateway.events import EventHandler
from gateway.oauth import OAuthProvider
from gateway.webhooks import WebhookSource
from tests.support import notes_plugin


class Recorder:
    """A plugin whose ``authenticate`` notes that it ran; ``answers`` is the value of
    ``X-Who`` it claims."""

    def __init__(self, name: str, calls: list[str], answers: str | None = None) -> None:
        self.name, self.calls, self.answers = name, calls, answers

    def _answer(self, request: Any) -> Principal | None:
        self.calls.append(self.name)
        if self.answers and request.headers.get("X-Who") == self.answers:
            return Principal(user_id=1, email=f"{self.answers}@example.com", via=self.name)
        return None


class AsyncAuth(Recorder):
    @hookimpl
    async def authenticate(self, request: Any) -> Principal | None:
        return self._answer(request)


class SyncAuth(Recorder):
    @hookimpl
    def authenticate(self, request: Any) -> Principal | None:
        return self._answer(request)


class FirstAuth(Recorder):
    @hookimpl(tryfirst=True)
    async def authenticate(self, request: Any) -> Principal | None:
        return self._answer(request)


async def who(app: Any, header: str | None = None) -> tuple[int, Any]:
    headers = {"X-Who": header} if header else {}
    resp = await app.test_client().get("/api/auth/me", headers=headers)
    return resp.status_code, await resp.get_json()


def enabled(*pairs: tuple[str, object]) -> dict[str, Any]:
    """make_app arguments enabling exactly these extra plugins (no built-in providers)."""
    return {"plugins": {name: {} for name, _ in pairs}, "extra_plugins": list(pairs)}


async def test_hook_authenticate_runs_tryfirst_then_newest_first(make_app):
    calls: list[str] = []
    app = await make_app(
        **enabled(
            ("old", SyncAuth("old", calls)),
            ("first", FirstAuth("first", calls)),
            ("new", AsyncAuth("new", calls)),
        )
    )
    assert (await who(app))[0] == 401
    # tryfirst, then the newest registration first; the core's own (trylast) comes last.
    assert calls == ["first", "new", "old"]


async def test_hook_authenticate_stops_at_the_first_answer(make_app):
    calls: list[str] = []
    app = await make_app(
        **enabled(("old", SyncAuth("old", calls)), ("new", AsyncAuth("new", calls, "new")))
    )
    status, body = await who(app, "new")
    assert status == 200 and body["via"] == "new"
    # "old" is a plain function after the answer: it did not run either.
    assert calls == ["new"]


class PassThroughWrapper:
    def __init__(self) -> None:
        self.seen: list[list[str]] = []

    @hookimpl(wrapper=True)
    def authenticate(self, request: Any) -> Any:
        calls = yield
        # A runtime hook's results are the pending calls, in call order, not run yet.
        assert all(isinstance(c, HookCall) for c in calls)
        self.seen.append([c.plugin for c in calls])
        return calls


class OldStyleWrapper:
    def __init__(self) -> None:
        self.outcomes: list[int] = []

    @hookimpl(hookwrapper=True)
    def authenticate(self, request: Any) -> Any:
        outcome = yield
        self.outcomes.append(len(outcome.get_result()))


class RefusingWrapper:
    @hookimpl(wrapper=True)
    def authenticate(self, request: Any) -> Any:
        if request.headers.get("X-Blocked"):
            raise Unauthorized("Blocked by policy")
        return (yield)


class AnsweringWrapper:
    @hookimpl(wrapper=True, tryfirst=True)
    def authenticate(self, request: Any) -> Any:
        calls = yield
        if request.headers.get("X-Who") == "wrapped":
            # A plain value ahead of the pending calls is the answer; nothing else runs.
            return [Principal(user_id=2, email="w@example.com", via="wrapper"), *calls]
        return calls


async def test_hook_authenticate_wrappers_wrap_the_call(make_app):
    calls: list[str] = []
    passing, old_style = PassThroughWrapper(), OldStyleWrapper()
    app = await make_app(
        **enabled(
            ("auth", AsyncAuth("auth", calls, "auth")),
            ("passing", passing),
            ("old_style", old_style),
            ("refusing", RefusingWrapper()),
            ("answering", AnsweringWrapper()),
        )
    )
    status, body = await who(app, "auth")
    assert status == 200 and body["via"] == "auth"  # not a 500 any more
    assert passing.seen == [["auth", "gateway.auth.plugin"]]
    assert old_style.outcomes == [2]

    resp = await app.test_client().get("/api/auth/me", headers={"X-Blocked": "1"})
    assert resp.status_code == 401
    assert await resp.get_json() == {"error": "Blocked by policy", "code": "UNAUTHORIZED"}

    calls.clear()
    status, body = await who(app, "wrapped")
    assert status == 200 and body["via"] == "wrapper"
    assert calls == []


def provider(name: str) -> OAuthProvider:
    return OAuthProvider(
        name=name,
        display_name=name.title(),
        client_id=None,
        client_secret=None,
        authorize_url="https://idp.test/authorize",
        token_url="https://idp.test/token",
    )


class Registers:
    def __init__(self, *names: str) -> None:
        self.names = names

    @hookimpl
    def register_oauth_providers(self, config: Any) -> list[OAuthProvider]:
        return [provider(n) for n in self.names]


class RegistersFirst(Registers):
    @hookimpl(tryfirst=True)
    def register_oauth_providers(self, config: Any) -> list[OAuthProvider]:
        return [provider(n) for n in self.names]


class EditsProviders:
    def __init__(self) -> None:
        self.seen: list[list[str]] = []

    @hookimpl(wrapper=True)
    def register_oauth_providers(self, config: Any) -> Any:
        results = yield
        self.seen.append([p.name for result in results for p in result])
        kept = [[p for p in result if p.name != "dropped"] for result in results]
        return [*kept, [provider("added")]]


async def test_hook_register_oauth_providers_with_a_wrapper_and_tryfirst(make_app):
    editor = EditsProviders()
    app = await make_app(
        start=False,
        **enabled(
            ("early", RegistersFirst("early")),
            ("plain", Registers("plain", "dropped")),
            ("late", Registers("late")),
            ("editor", editor),
        ),
    )
    # One call: the wrapper saw every plugin's list, in pluggy's order.
    assert editor.seen == [["early", "late", "plain", "dropped"]]
    registry = app.extensions["gateway"].registries["register_oauth_providers"]
    owners = {name: plugin for name, (plugin, _item) in registry.items()}
    assert owners == {
        "early": "early",
        "late": "late",
        "plain": "plain",
        "added": "a hook wrapper (editor)",
    }


async def test_hook_tracing_logs_each_call(make_app, monkeypatch, caplog):
    monkeypatch.setenv("GATEWAY_TRACE_HOOKS", "1")
    caplog.set_level(logging.INFO, logger="gateway.plugins")
    calls: list[str] = []
    app = await make_app(**enabled(("auth", AsyncAuth("auth", calls))))
    await who(app)
    traced = [r.getMessage() for r in caplog.records if r.name == "gateway.plugins"]
    for hook in ("register_routes", "register_oauth_providers", "startup", "authenticate"):
        assert any(m.startswith(f"hook trace: {hook} [hook]") for m in traced), hook
    assert any("finish authenticate --> [<HookCall auth>" in m for m in traced)
    assert all("\n" not in m for m in traced)  # one line per record


class Lifecycle:
    def __init__(self, name: str, log: list[str], *, fail: bool = False) -> None:
        self.name, self.log, self.fail = name, log, fail

    @hookimpl
    def startup(self, app: Any) -> None:
        self.log.append(f"start {self.name}")

    @hookimpl
    def shutdown(self) -> None:
        self.log.append(f"stop {self.name}")
        if self.fail:
            raise RuntimeError("boom")


class AsyncLifecycle(Lifecycle):
    @hookimpl(trylast=True)
    async def startup(self, app: Any, config: Any) -> None:
        assert self.log  # the others finished first: each call is awaited in turn
        self.log.append(f"start {self.name}")


async def test_hook_startup_awaits_each_in_call_order(make_app):
    log: list[str] = []
    await make_app(
        **enabled(
            ("a", Lifecycle("a", log)), ("b", Lifecycle("b", log)), ("z", AsyncLifecycle("z", log))
        )
    )
    assert log == ["start b", "start a", "start z"]


async def test_hook_shutdown_failure_does_not_stop_the_others(make_app, caplog):
    log: list[str] = []
    app = await make_app(
        start=False,
        **enabled(("a", Lifecycle("a", log)), ("b", Lifecycle("b", log, fail=True))),
    )
    test_app = app.test_app()
    await test_app.startup()
    await test_app.shutdown()
    assert log[-2:] == ["stop b", "stop a"]
    assert "shutdown hook of plugin 'b' failed" in caplog.text


class Contacts:
    def __init__(self, name: str, calls: list[str], answer: bool) -> None:
        self.name, self.calls, self.answer = name, calls, answer

    @hookimpl
    def lookup_contact(self, phone: str) -> dict[str, str] | None:
        self.calls.append(self.name)
        return {"name": self.name} if self.answer else None


async def test_hook_lookup_contact_runs_no_implementation_after_the_answer(make_app):
    from gateway.contacts import lookup_contact

    calls: list[str] = []
    app = await make_app(
        **enabled(
            ("older", Contacts("older", calls, answer=True)),
            ("newer", Contacts("newer", calls, answer=True)),
        )
    )
    assert await lookup_contact(app, None, "+15550001111") == {"name": "newer"}
    assert calls == ["newer"]


async def test_hook_register_models_adds_a_tortoise_app(make_app):
    app = await make_app(**enabled(("notes", notes_plugin)))
    from tests.support.notes_plugin.models import Note

    assert "notes" in app.extensions["gateway"].db.config["apps"]
    assert await Note.all().count() == 0  # its migration made the table


class OneOfEach:
    async def handle(self, ctx: Any) -> None:
        return None

    @hookimpl
    def register_routes(self) -> Blueprint:
        bp = Blueprint("one_of_each", __name__)

        @bp.get("/api/one-of-each")
        async def ping() -> Any:
            return {"ok": True}

        return bp

    @hookimpl
    def register_webhook_sources(self) -> list[WebhookSource]:
        return [WebhookSource(name="one.source", path="one", verify=bool, parse=list)]

    @hookimpl
    def register_event_handlers(self) -> list[EventHandler]:
        return [EventHandler(name="one.handler", event_types=("one.*",), handler=self.handle)]

    @hookimpl
    def register_scheduled_tasks(self) -> list[Any]:
        try:
            from gateway.scheduling import ScheduledTask
        except ImportError:  # pragma: no cover - the scheduling subsystem is not merged
            from types import SimpleNamespace as ScheduledTask
        return [ScheduledTask(name="one-task", schedule="@daily", handler=self.handle)]


def registered(app: Any, hook: str) -> dict[str, str]:
    return {n: p for n, (p, _i) in app.extensions["gateway"].registries[hook].items()}


@pytest.fixture
async def one_of_each(make_app):
    return await make_app(start=False, **enabled(("one", OneOfEach())))


async def test_hook_register_routes_mounts_the_blueprint(one_of_each):
    resp = await one_of_each.test_client().get("/api/one-of-each")
    assert await resp.get_json() == {"ok": True}
    assert one_of_each.extensions["gateway_routes"]["one_of_each"] == "one"


async def test_hook_register_webhook_sources_attributes_each_source(one_of_each):
    assert registered(one_of_each, "register_webhook_sources") == {"one.source": "one"}


async def test_hook_register_event_handlers_attributes_each_handler(one_of_each):
    assert registered(one_of_each, "register_event_handlers") == {"one.handler": "one"}


async def test_hook_register_scheduled_tasks_attributes_each_task(one_of_each):
    assert registered(one_of_each, "register_scheduled_tasks") == {"one-task": "one"}

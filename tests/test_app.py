"""The app factory, health endpoints, request ids and the error shape."""

from __future__ import annotations

import logging

from quart import Blueprint

from gateway import hookimpl


class BoomPlugin:
    SECRET = "planted-secret-value-1234567890"

    @hookimpl
    def register_routes(self, app, config):
        bp = Blueprint("boom", __name__)

        @bp.get("/boom")
        async def boom():
            raise RuntimeError(f"kaboom with {self.SECRET}")

        @bp.post("/echo")
        async def echo():
            return {"size": len(await __import__("quart").request.get_data())}

        return bp


async def test_healthz_and_readyz_on_each_database(any_app):
    client = any_app.test_client()
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert (await response.get_json()) == {"status": "ok"}
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert (await response.get_json())["status"] == "ready"


async def test_readyz_is_503_when_database_is_gone(make_app, pg_database):
    """A real outage: the gateway's database is dropped under it (PostgreSQL terminates
    its connections); /healthz stays up, /readyz says 503."""
    import uuid

    from tests.conftest import _pg_admin

    name = f"gwdown_{uuid.uuid4().hex[:10]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    url = pg_database.rsplit("/", 1)[0] + f"/{name}"
    app = await make_app(db="postgres", database_url=url)
    client = app.test_client()
    assert (await client.get("/readyz")).status_code == 200
    await _pg_admin(f'DROP DATABASE "{name}" WITH (FORCE)')
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert (await response.get_json())["code"] == "SERVICE_UNAVAILABLE"
    assert (await client.get("/healthz")).status_code == 200


async def test_every_response_carries_a_request_id(client):
    response = await client.get("/healthz")
    assert len(response.headers["X-Request-Id"]) == 32
    response = await client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert response.headers["X-Request-Id"] == "abc-123"
    # A value that could forge log lines is replaced, not echoed.
    response = await client.get("/healthz", headers={"X-Request-Id": "bad id INFO forged"})
    assert response.headers["X-Request-Id"] != "bad id INFO forged"


async def test_404_and_405_use_the_error_shape(client):
    response = await client.get("/no/such/route")
    assert response.status_code == 404
    assert (await response.get_json()) == {"error": "Resource not found", "code": "NOT_FOUND"}
    response = await client.delete("/healthz")
    assert response.status_code == 405
    assert (await response.get_json())["code"] == "METHOD_NOT_ALLOWED"
    assert "GET" in response.headers["Allow"]


async def test_413_uses_the_error_shape(make_app):
    app = await make_app(extra_plugins=[("boom", BoomPlugin())], max_body_bytes=1000)
    client = app.test_client()
    ok = await client.post("/echo", data=b"x" * 1000)
    assert ok.status_code == 200
    response = await client.post("/echo", data=b"x" * 1001)
    assert response.status_code == 413
    assert (await response.get_json()) == {
        "error": "Request body is too large",
        "code": "PAYLOAD_TOO_LARGE",
    }


async def test_unhandled_error_is_500_without_traceback_or_secret(make_app, caplog):
    caplog.set_level(logging.INFO)
    app = await make_app(
        extra_plugins=[("boom", BoomPlugin())],
        plugins={"boom": {}},
    )
    response = await app.test_client().get("/boom", headers={"X-Request-Id": "req-500"})
    assert response.status_code == 500
    body = await response.get_data(as_text=True)
    assert '"code":"INTERNAL_ERROR"' in body.replace(" ", "")
    assert "Traceback" not in body and "kaboom" not in body
    assert BoomPlugin.SECRET not in body
    # Logged with its request id ...
    records = [r for r in caplog.records if r.name == "gateway.http"]
    assert records and records[0].request_id == "req-500"


async def test_known_secret_never_reaches_logs(make_app, caplog, monkeypatch):
    """A secret configured for a plugin is blanked even when code logs it by mistake."""
    from pydantic import SecretStr

    from gateway.config import PluginSettings

    secret = "tok_live_do-not-log-me-42"
    monkeypatch.setenv("PLANTED_SECRET", secret)

    class Settings(PluginSettings):
        api_key: SecretStr

    class Leaky:
        @hookimpl
        def register_routes(self, app, config):
            settings = config.plugin_config("leaky", Settings)
            bp = Blueprint("leaky", __name__)

            @bp.get("/leak")
            async def leak():
                logging.getLogger("leaky").warning(
                    "calling with key=%s", settings.api_key.get_secret_value()
                )
                raise RuntimeError(f"failed with {settings.api_key.get_secret_value()}")

            return bp

    caplog.set_level(logging.INFO)
    app = await make_app(
        extra_plugins=[("leaky", Leaky())],
        plugins={"leaky": {"api_key": {"env": "PLANTED_SECRET"}}},
    )
    response = await app.test_client().get("/leak")
    assert response.status_code == 500
    assert secret not in await response.get_data(as_text=True)
    assert caplog.records, "the leak route should have logged"
    assert secret not in caplog.text
    assert "**********" in caplog.text


async def test_nested_plugin_secrets_are_redacted_too(make_app, caplog, monkeypatch):
    from pydantic import SecretStr

    from gateway.config import PluginSettings

    class Account(PluginSettings):
        token: SecretStr

    class Settings(PluginSettings):
        accounts: dict[str, Account] = {}
        keys: list[SecretStr] = []

    nested, listed = "nested-secret-0123456789", "listed-secret-9876543210"
    monkeypatch.setenv("NESTED", nested)
    monkeypatch.setenv("LISTED", listed)

    class Chatty:
        @hookimpl
        def register_routes(self, app, config):
            config.plugin_config("chatty", Settings)
            logging.getLogger("chatty").warning("tokens %s and %s", nested, listed)

    caplog.set_level(logging.INFO)
    await make_app(
        extra_plugins=[("chatty", Chatty())],
        plugins={
            "chatty": {"accounts": {"a": {"token": {"env": "NESTED"}}}, "keys": [{"env": "LISTED"}]}
        },
    )
    logging.getLogger("chatty").warning("again %s %s", nested, listed)
    assert nested not in caplog.text and listed not in caplog.text


async def test_serving_app_freezes_its_startup_heap(tmp_path, monkeypatch):
    """``gateway serve`` (gateway.asgi) moves what startup built out of the collector's
    reach once the app is up, so full collections stop walking it (bench/README.md)."""
    import gc

    from gateway.asgi import app_from_environment

    config = tmp_path / "plugins.toml"
    config.write_text(f'[gateway]\ndata_dir = "{tmp_path / "data"}"\nrun_worker = false\n')
    monkeypatch.setenv("GATEWAY_CONFIG", str(config))
    app = app_from_environment()
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    test_app = app.test_app()
    await test_app.startup()
    try:
        assert gc.get_freeze_count() > 0
        assert (await app.test_client().get("/healthz")).status_code == 200
    finally:
        await test_app.shutdown()
        gc.unfreeze()  # the rest of the test session collects as usual

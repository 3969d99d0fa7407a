"""Storage: migrations only, on both back ends, and plugins bringing their own models
through the ``register_models`` hook."""

from __future__ import annotations

import pytest

from gateway.errors import StartupError
from gateway.identity.models import Team
from tests.support import notes_plugin


async def test_plugin_models_are_migrated_and_usable(make_app, db_kind):
    app = await make_app(db=db_kind, plugins={"notes": {}}, extra_plugins=[("notes", notes_plugin)])
    gw = app.extensions["gateway"]
    assert await gw.db.pending_migrations() == []
    from tests.support.notes_plugin.models import Note

    team = await Team.create(name="Acme")
    await Note.create(team=team, text="hello")
    assert await Note.filter(team=team).count() == 1


async def test_model_app_label_cannot_be_taken_twice(make_app):
    class Clash:
        @staticmethod
        def register_models(config):
            return {"identity": {"models": ["tests.support.notes_plugin.models"]}}

    from gateway import hookimpl

    Clash.register_models = hookimpl(Clash.register_models)
    with pytest.raises(StartupError, match="model app 'identity' is already taken"):
        await make_app(plugins={"clash": {}}, extra_plugins=[("clash", Clash())], start=False)


async def test_postgres_needs_explicit_migrate(make_app, pg_database):
    """Beyond the embedded default, `gateway serve` refuses to run on an old schema."""
    app = await make_app(db="postgres", auto_migrate=False, start=False)
    gw = app.extensions["gateway"]
    await gw.db.open()
    try:
        # The per-run database was migrated by earlier apps or is fresh: either way the
        # check must agree with a real plan, and applying it leaves nothing pending.
        await gw.db.migrate()
        assert await gw.db.pending_migrations() == []
    finally:
        await gw.db.close()


async def test_ensure_schema_refuses_a_fresh_postgres_unless_allowed(make_app, pg_database):
    import uuid

    from tests.conftest import _pg_admin

    name = f"gwfresh_{uuid.uuid4().hex[:10]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    url = pg_database.rsplit("/", 1)[0] + f"/{name}"
    try:
        app = await make_app(db="postgres", database_url=url, start=False)
        gw = app.extensions["gateway"]
        await gw.db.open()
        try:
            with pytest.raises(
                StartupError, match=r"migration\(s\) pending .*run `gateway migrate`"
            ):
                await gw.db.ensure_schema(None)  # default on PostgreSQL: never migrate
            await gw.db.ensure_schema(True)
            await gw.db.ensure_schema(False)  # nothing pending any more
        finally:
            await gw.db.close()
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

"""The project's own fixtures. The shared ones (``make_app``, ``app``, ``client``,
``any_app``, ``db_kind``, ``clock``, ``pg_database``, ``fake_oauth``, ``signed_webhooks``,
``run_jobs``) come from :mod:`gateway.testing`, the pytest plugin shipped in the package
(entry point ``pytest11``), exactly as a plugin author gets them.
"""

from __future__ import annotations

from typing import Any

import pytest

# Names the tests import from here; they live in the shipped kit.
from gateway.testing.database import (  # noqa: F401
    PG_ADMIN_DB,
    PG_HOST,
    PG_PORT,
    PG_USER,
    REDIS_URL,
    _pg_admin,
    truncate_postgres,
)
from gateway.testing.database import in_ci as _in_ci  # noqa: F401
from gateway.testing.database import run_sync as _run_sync  # noqa: F401
from gateway.testing.plugin import MakeApp  # noqa: F401


@pytest.fixture(scope="session")
def moto_server() -> Any:
    """A local S3 (moto's server mode) for this pytest process; see tests/support/s3.py."""
    from tests.support.s3 import start_moto

    yield from start_moto()


@pytest.fixture(autouse=True)
def _hook_tests_call_their_hook(request: pytest.FixtureRequest, monkeypatch: Any) -> Any:
    """A test named ``test_hook_<name>...`` fails unless an app it builds calls hook
    ``<name>`` (tests/test_hookspecs.py requires one such test per hook)."""
    test_name = getattr(request.node, "originalname", request.node.name)
    if not test_name.startswith("test_hook_"):
        yield
        return
    import gateway.app
    import hookspecs

    names = [n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), "gateway_spec")]
    suffix = test_name.removeprefix("test_hook_")
    matching = [n for n in names if suffix == n or suffix.startswith(n + "_")]
    if not matching:
        yield
        return
    hook = max(matching, key=len)
    called: set[str] = set()
    build = gateway.app.build_plugin_manager

    def build_and_watch(*args: Any, **kwargs: Any) -> Any:
        pm = build(*args, **kwargs)
        pm.add_hookcall_monitoring(lambda name, _impls, _kw: called.add(name), lambda *a: None)
        return pm

    monkeypatch.setattr(gateway.app, "build_plugin_manager", build_and_watch)
    yield
    assert hook in called, f"{test_name} is named for the {hook} hook but never calls it"

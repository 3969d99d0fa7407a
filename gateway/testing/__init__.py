"""Testing kit for the gateway and its plugins, shipped in the package.

Installed with the gateway, its pytest plugin (:mod:`gateway.testing.plugin`, entry point
``pytest11``) gives every test run the fixtures ``make_app``, ``app``, ``client``,
``any_app``/``db_kind`` (SQLite and PostgreSQL), ``clock`` (frozen), ``fake_oauth``,
``signed_webhooks`` and ``run_jobs``. The helpers below are for a plugin's own fakes and
flows; see docs/writing-a-plugin.md.
"""

from __future__ import annotations

from pathlib import Path

from gateway.clock import FrozenClock
from gateway.testing.calls import analyzed_call
from gateway.testing.jobs import drain
from gateway.testing.loopback import serve
from gateway.testing.oauth import (
    Admin,
    connected_admin,
    follow_authorize,
    integration_status,
    provider_plugin,
    query_of,
    run_connect,
    seed_admin,
)
from gateway.testing.oauth_server import CannedResponse, FakeOAuthServer, Grant
from gateway.testing.webhooks import SignedWebhooks, hmac_sha256_hex, twilio_headers

__all__ = [
    "Admin",
    "CannedResponse",
    "FakeOAuthServer",
    "FrozenClock",
    "Grant",
    "SignedWebhooks",
    "analyzed_call",
    "assert_plugin_api_only",
    "connected_admin",
    "drain",
    "follow_authorize",
    "hmac_sha256_hex",
    "integration_status",
    "provider_plugin",
    "query_of",
    "run_connect",
    "seed_admin",
    "serve",
    "twilio_headers",
]


def assert_plugin_api_only(package: Path, *, own: str) -> None:
    """Fail (with what to change) if the plugin package at ``package`` imports anything
    of the gateway outside its public API (gateway/plugin_api.py), imports a built-in
    plugin, or reaches into ``app.extensions["gateway"]``."""
    from gateway.plugin_api import check_plugin, report

    violations = check_plugin(package, own=own, other_plugins=["plugins"], root=package.parent)
    assert not violations, report(violations)

"""Moved to :mod:`gateway.testing.oauth_server` and :mod:`gateway.testing.oauth` (shipped
for plugin authors); this name stays for the tests that import it from here."""

from gateway.testing.oauth import (
    Admin,
    follow_authorize,
    integration_status,
    provider_plugin,
    query_of,
    run_connect,
    seed_admin,
)
from gateway.testing.oauth_server import CannedResponse, FakeOAuthServer, Grant

__all__ = [
    "Admin",
    "CannedResponse",
    "FakeOAuthServer",
    "Grant",
    "follow_authorize",
    "integration_status",
    "provider_plugin",
    "query_of",
    "run_connect",
    "seed_admin",
]

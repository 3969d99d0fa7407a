"""Moved to :mod:`gateway.testing.oauth` (shipped for plugin authors)."""

from gateway.testing.oauth import (
    Admin,
    follow_authorize,
    integration_status,
    provider_plugin,
    query_of,
    run_connect,
    seed_admin,
)

__all__ = [
    "Admin",
    "follow_authorize",
    "integration_status",
    "provider_plugin",
    "query_of",
    "run_connect",
    "seed_admin",
]

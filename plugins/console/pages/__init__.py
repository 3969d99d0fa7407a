"""The console's pages, one module per area; importing this registers them all."""

from plugins.console.pages import (  # noqa: F401
    account,
    calls,
    integrations,
    jobs,
    operators,
    team,
)

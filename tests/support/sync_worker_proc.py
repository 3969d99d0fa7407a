"""``gateway worker`` for the sync tests, in its own process, with any plugins' settings:
``python -m tests.support.sync_worker_proc '<json {"gateway": ..., "plugins": ...}>'``.
Runs :func:`gateway.jobs.cli.run_worker_process` (what ``gateway worker`` runs) until
SIGTERM; the tests SIGKILL it to stand for a crash."""

from __future__ import annotations

import asyncio
import json
import sys


def main() -> int:
    from gateway.app import create_app
    from gateway.config import load_config
    from gateway.jobs.cli import run_worker_process
    from gateway.logs import configure_logging

    config = load_config(data=json.loads(sys.argv[1]), environ={})
    configure_logging("text", "WARNING")
    asyncio.run(run_worker_process(create_app(config)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

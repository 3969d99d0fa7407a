"""A separate gateway process for the cross-process refresh test.

Usage: ``python -m tests.support.oauth_refresh_proc <json>`` with ``database_url``,
``data_dir``, ``server_url``, ``provider``, ``team_id`` and ``now`` (ISO time for the
frozen clock). It builds and starts the app, prints ``ready``, waits for one line on
stdin (the go signal, so both processes call at the same moment), calls
``get_access_token`` and prints ``token <sha256 of the token>`` (never the token).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from datetime import datetime


async def main(args: dict) -> None:
    from gateway.app import create_app
    from gateway.clock import FrozenClock
    from gateway.config import load_config
    from gateway.oauth import get_access_token
    from gateway.testing import FakeOAuthServer, provider_plugin

    server = FakeOAuthServer()
    server.url = args["server_url"]  # the parent's server: only its URLs are used here
    config = load_config(
        data={
            "gateway": {
                "data_dir": args["data_dir"],
                "database_url": args["database_url"],
                "auto_migrate": False,
                "run_worker": False,
                "public_url": "https://gateway.test",
            }
        },
        environ={},
    )
    clock = FrozenClock(datetime.fromisoformat(args["now"]))
    app = create_app(config, extra_plugins=[provider_plugin(server, args["provider"])], clock=clock)
    test_app = app.test_app()
    await test_app.startup()
    try:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        async with app.app_context():
            token = await get_access_token(args["team_id"], args["provider"])
        print("token", hashlib.sha256(token.encode()).hexdigest(), flush=True)
    finally:
        await test_app.shutdown()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))

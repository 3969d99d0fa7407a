"""CRM drain: a backlog of analyzed calls logged in HubSpot at HubSpot's pace.

Queues ``--calls`` (1000) ``voice.call.analyzed`` events at once (one transaction) for a
team connected to the loopback HubSpot (tests/support/fake_hubspot.py), which enforces
``--limit`` requests per ``--window`` seconds (100 per 10 s, HubSpot's burst limit for
OAuth apps) and answers 429 beyond it. ``--workers`` gateway worker processes (``gateway
worker``, real processes) drain the queue with the HubSpot plugin configured with the
same limit. Each call's contact is known from the personalization lookup, so each call
is one request (``POST /crm/v3/objects/calls``).

Printed: the drain time (commit of the backlog -> last engagement created) against the
limit's minimum, ``(ceil(calls / limit) - 1) * window`` (the first ``limit`` requests go at
once, then ``limit`` more per window), the 429s HubSpot answered, and the engagements
created (must be exactly ``--calls``). Exit status 1 if any of that is off target
(ratio > 1.2, 429s after the first, engagements != calls).

    python bench/crm_drain.py                         # 1000 calls, 100 per 10 s: ~90 s
    python bench/crm_drain.py --window 1              # scaled down: 100 per 1 s
    python bench/crm_drain.py --database postgres --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.app import create_app  # noqa: E402
from gateway.config import load_config  # noqa: E402
from gateway.jobs.models import Job  # noqa: E402
from gateway.testing import run_connect, seed_admin  # noqa: E402
from tests.support.fake_hubspot import FakeHubSpot, plugin_settings  # noqa: E402
from tests.support.worker_processes import start_worker  # noqa: E402

HANDLER = "hubspot.log_call"


async def queue_backlog(app: Any, team_id: int, contacts: list[str]) -> float:
    """Every analysis and its event in one transaction; returns the commit time."""
    from tortoise.transactions import in_transaction

    from gateway.calls.analysis import AnalysisUpdate, TranscriptTurn, upsert_analysis
    from gateway.calls.events import analyzed_event
    from gateway.events import emit_event, wake_workers

    now = app.extensions["gateway"].clock.now()
    async with in_transaction() as conn:
        for n, contact in enumerate(contacts):
            update = AnalysisUpdate(
                conversation_id=f"conv_{n}",
                team_id=team_id,
                provider="bench",
                direction="inbound",
                from_number=f"+1415{n:07d}",
                to_number="+14155550100",
                transcript=[TranscriptTurn(role="agent", message="Hello", offset_seconds=0)],
                summary="Asked about pricing.",
                outcome="success",
                duration_seconds=60,
                started_at=now,
            )
            row = await upsert_analysis(update, using_db=conn, now=now)
            row.personalization = {"contact": {"source": "hubspot", "id": contact}}
            await row.save(using_db=conn, update_fields=["personalization"])
            payload = await analyzed_event(row, using_db=conn)
            await emit_event(app, source="bench", payload=payload, team_id=team_id, using_db=conn)
    committed = time.monotonic()
    wake_workers(app)
    return committed


async def spawn_worker(config: dict[str, Any], concurrency: int) -> Any:
    config = json.loads(json.dumps(config))
    config["gateway"].update(run_worker=True, job_concurrency=concurrency)
    return await start_worker(config)


async def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="crm-drain-"))
    pg_admin, db_url = None, f"sqlite://{workdir / 'gateway.db'}"
    if args.database == "postgres":
        import asyncpg

        name = f"crm_drain_{uuid.uuid4().hex[:8]}"
        pg_admin = await asyncpg.connect(f"{args.pg_url}/postgres")
        await pg_admin.execute(f'CREATE DATABASE "{name}"')
        db_url = f"{args.pg_url}/{name}"
    async with FakeHubSpot() as hubspot:
        plugins = {
            "hubspot": plugin_settings(
                hubspot,
                burst_limit=args.limit,
                burst_window_seconds=args.window,
                search_lag_seconds=0,
            )
        }
        gateway = {
            "data_dir": str(workdir / "data"),
            "database_url": db_url,
            "auto_migrate": True,
            "run_worker": False,
            "public_url": "https://gateway.bench",
            "job_poll_seconds": args.poll,
        }
        config = {"gateway": gateway, "plugins": plugins}
        app = create_app(load_config(data=config, environ={}))
        test_app = app.test_app()
        await test_app.startup()
        workers: list[Any] = []
        try:
            admin = await seed_admin()
            done = await run_connect(app.test_client(), admin, "hubspot")
            assert done.status_code == 200, await done.get_data(as_text=True)
            contacts = [
                hubspot.add_contact(firstname=f"C{n}", phone=f"+1415{n:07d}")
                for n in range(args.calls)
            ]
            hubspot.rate_limit = (args.limit, float(args.window))  # HubSpot's own count: 429
            workers = [await spawn_worker(config, args.concurrency) for _ in range(args.workers)]
            await asyncio.sleep(args.settle)  # workers started and idle before the backlog
            committed = await queue_backlog(app, admin.team.id, contacts)
            deadline = committed + args.deadline
            # Polling another process's progress (the fake's count): nothing to await.
            while len(hubspot.engagements) < args.calls and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            last = max((r["at"] for r in hubspot.requests_to("/crm/v3/objects/calls")), default=0)
            while time.monotonic() < deadline:  # the ledger and the jobs catch up
                if await Job.filter(handler=HANDLER, status="succeeded").count() >= args.calls:
                    break
                await asyncio.sleep(0.1)
            succeeded = await Job.filter(handler=HANDLER, status="succeeded").count()
            attempts = max([j.attempts for j in await Job.filter(handler=HANDLER)], default=0)
        finally:
            for worker in workers:
                if worker.returncode is None:
                    worker.send_signal(signal.SIGTERM)
            for worker in workers:
                await worker.wait()
            await test_app.shutdown()
            if pg_admin is not None:
                await pg_admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await pg_admin.close()
    drain = last - committed
    minimum = (math.ceil(args.calls / args.limit) - 1) * args.window
    ratio = drain / minimum if minimum else float("nan")
    created = len(hubspot.engagements)
    print(
        f"crm drain: {args.calls} calls, HubSpot limit {args.limit} per {args.window} s, "
        f"{args.workers} worker process(es) x {args.concurrency}, {args.database}"
    )
    print(f"  drain {drain:.2f} s, limit's minimum {minimum:.2f} s, ratio {ratio:.3f}")
    print(
        f"  429s received {hubspot.throttled}, max requests in any {args.window} s window "
        f"{hubspot.max_in_window(args.window)}"
    )
    print(
        f"  engagements created {created}/{args.calls}, jobs succeeded {succeeded}, "
        f"most attempts of one job {attempts}"
    )
    ok = created == args.calls and hubspot.throttled <= 1 and (not minimum or ratio <= 1.2)
    print("  on target" if ok else "  OFF TARGET")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--limit", type=int, default=100, help="requests per window")
    parser.add_argument("--window", type=int, default=10, help="seconds")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=4, help="jobs per worker at once")
    parser.add_argument("--poll", type=float, default=1.0, help="job_poll_seconds")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds for workers to start")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--deadline", type=float, default=600, help="seconds")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())

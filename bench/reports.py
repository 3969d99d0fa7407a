"""The cron plugin's reports and cleanup at scale.

Seeds ``--teams`` (1,000) teams in eight time zones, each with an owner and an admin,
and ``--calls`` (1,000,000) calls spread evenly over the 28 days before the weekly
window (Monday 2026-11-02 09:00 UTC), ``--analyses`` (one per two calls) analyses, and
``--recordings`` (100,000) stored recordings whose retention has ended, each with a file
in the recording store. Seeding is bulk SQL (``INSERT ... SELECT`` over a recursive CTE
on SQLite, ``generate_series`` on PostgreSQL), not the ORM.

Then, in this process, with an SMTP sink on loopback in another process
(bench/smtp_sink.py, aiosmtpd):

1. ``daily-summary`` for the window of Sunday 2026-11-01 18:00 UTC: the task (SQL
   aggregation, one mail job per team) and then every mail job, until the last mail was
   handed to SMTP;
2. ``weekly-report`` for Monday 2026-11-02 09:00 UTC, the same way (plus one
   ``report.weekly.ready`` per team);
3. ``cleanup-recordings``: 100,000 files deleted, rows marked expired, one
   ``voice.recording.expired`` per recording.

Printed per phase: wall time (task, jobs), peak RSS growth over the RSS at the phase's
start (sampled every 20 ms from /proc/self/statm), mails received. Target: each phase
under 60 s with RSS growth under 200 MB. Exit status 1 when a phase is off target or a
count is wrong.

    python bench/reports.py                                  # SQLite, full size
    python bench/reports.py --database postgres
    python bench/reports.py --teams 20 --calls 2000 --recordings 200   # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.app import create_app  # noqa: E402
from gateway.clock import FrozenClock  # noqa: E402
from gateway.config import load_config  # noqa: E402
from tests.support.smtp_server import free_port  # noqa: E402

WEEKLY_RUN = datetime(2026, 11, 2, 9, 0, 5, tzinfo=UTC)
DAILY_RUN = datetime(2026, 11, 1, 18, 0, 5, tzinfo=UTC)
SPAN_DAYS = 28
ZONES = (
    "UTC",
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
)
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def cpu_seconds() -> float:
    """User + system CPU of this process: what the phase cost, whatever the load."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Sink:
    """bench/smtp_sink.py in its own process; ``mails`` counts what it accepted."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.log = workdir / "smtp-sink.log"
        self.log.touch()

    def __enter__(self) -> Sink:
        import subprocess

        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "smtp_sink.py"), str(self.port), str(self.log)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)

    @property
    def mails(self) -> int:
        return sum(1 for _ in self.log.open())


class Peak:
    """The highest RSS seen while the block runs, sampled by a thread (the event loop
    may be busy in a long statement)."""

    def __enter__(self) -> Peak:
        self.start = self.peak = rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 1e6


# --- seeding ---------------------------------------------------------------------------


class Seeder:
    """Bulk ``INSERT ... SELECT`` over generated integers ``i`` in ``1..n``."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.pg = conn.capabilities.dialect == "postgres"

    def series(self, n: int) -> str:
        if self.pg:
            return f"(SELECT generate_series(CAST(1 AS bigint), {int(n)}) AS i) s"
        return (
            f"(WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < {int(n)})"
            " SELECT i FROM g) s"
        )

    def at(self, epoch_expr: str) -> str:
        """A UTC instant from seconds since the epoch, in the form the ORM stores."""
        if self.pg:
            return f"to_timestamp({epoch_expr})"
        return f"(strftime('%Y-%m-%d %H:%M:%S', {epoch_expr}, 'unixepoch') || '+00:00')"

    def json(self, text_expr: str) -> str:
        return f"CAST({text_expr} AS jsonb)" if self.pg else text_expr

    def text(self, expr: str) -> str:
        return f"CAST({expr} AS TEXT)"

    def false(self) -> str:
        return "FALSE" if self.pg else "0"

    def true(self) -> str:
        return "TRUE" if self.pg else "1"

    async def run(self, sql: str) -> None:
        await self.conn.execute_query(sql)


def write_files(root: Path, count: int) -> None:
    payload = b"RIFF" + bytes(40)
    for i in range(1, count + 1):
        (root / str(i % 100) / f"{i}.wav").write_bytes(payload)


async def seed(app: Any, args: argparse.Namespace) -> dict[str, float]:
    from tortoise import connections

    from gateway.calls.models import Call, CallAnalysis, Recording
    from gateway.identity.models import Membership, Team, User
    from gateway.storage import recording_storage

    s = Seeder(connections.get("default"))
    now = s.at(str(int(WEEKLY_RUN.timestamp())))
    t0 = int(WEEKLY_RUN.timestamp()) - SPAN_DAYS * 86400
    span = SPAN_DAYS * 86400
    zones = " ".join(f"WHEN {n} THEN '{z}'" for n, z in enumerate(ZONES))
    times: dict[str, float] = {}
    started = time.monotonic()
    await s.run(
        f"INSERT INTO {Team._meta.db_table} (id, name, time_zone, recording_retention_days, "
        f"created_at) SELECT i, 'Team ' || {s.text('i')}, CASE i % {len(ZONES)} {zones} END, "
        f"90, {now} FROM {s.series(args.teams)}"
    )
    await s.run(
        f"INSERT INTO {User._meta.db_table} (id, email, name, is_super_admin, is_active, "
        f"session_version, created_at) SELECT i, 'user' || {s.text('i')} || '@bench.test', "
        f"'User ' || {s.text('i')}, {s.false()}, {s.true()}, 0, {now} "
        f"FROM {s.series(2 * args.teams)}"
    )
    await s.run(
        f"INSERT INTO {Membership._meta.db_table} (team_id, user_id, role, created_at) "
        f"SELECT (i + 1) / 2, i, CASE i % 2 WHEN 1 THEN 'owner' ELSE 'admin' END, {now} "
        f"FROM {s.series(2 * args.teams)}"
    )
    times["teams"] = time.monotonic() - started

    started = time.monotonic()
    moment = s.at(f"{t0} + (i * {span}) / {args.calls}")
    later = s.at(f"{t0} + (i * {span}) / {args.calls} + 5")
    # i % 10: 0-6 completed (answered, 30..329 s), 7 busy, 8 no-answer, 9 failed.
    status = (
        "CASE WHEN i % 10 < 7 THEN 'completed' WHEN i % 10 = 7 THEN 'busy' "
        "WHEN i % 10 = 8 THEN 'no-answer' ELSE 'failed' END"
    )
    await s.run(
        f"INSERT INTO {Call._meta.db_table} (team_id, external_id, status, status_rank, "
        "started_at, answered_at, duration_seconds, direction, created_at, updated_at) "
        f"SELECT 1 + i % {args.teams}, 'CA' || {s.text('i')}, {status}, 5, {moment}, "
        f"CASE WHEN i % 10 < 7 THEN {later} END, "
        "CASE WHEN i % 10 < 7 THEN 30 + i % 300 END, 'inbound', "
        f"{moment}, {moment} FROM {s.series(args.calls)}"
    )
    times["calls"] = time.monotonic() - started

    started = time.monotonic()
    step = max(1, args.calls // max(1, args.analyses))
    a_moment = s.at(f"{t0} + (i * {step} * {span}) / {args.calls}")
    a_later = s.at(f"{t0} + (i * {step} * {span}) / {args.calls} + 300")
    meeting = s.json(
        """CASE WHEN i % 5 = 0 THEN '{"meeting_booked": {"value": true}}' ELSE '{}' END"""
    )
    await s.run(
        f"INSERT INTO {CallAnalysis._meta.db_table} (team_id, provider, conversation_id, "
        "outcome, transcript, evaluation, data_collection, dynamic_variables, started_at, "
        f"analyzed_at, created_at, updated_at) SELECT 1 + (i * {step}) % {args.teams}, 'bench', "
        f"'conv_' || {s.text('i')}, CASE i % 3 WHEN 0 THEN 'success' WHEN 1 THEN 'failure' "
        f"ELSE 'unknown' END, {s.json(chr(39) + '[]' + chr(39))}, "
        f"{s.json(chr(39) + '{}' + chr(39))}, {meeting}, {s.json(chr(39) + '{}' + chr(39))}, "
        f"{a_moment}, {a_later}, {a_later}, {a_later} FROM {s.series(args.analyses)}"
    )
    times["analyses"] = time.monotonic() - started

    started = time.monotonic()
    r_moment = s.at(f"{t0} + (i * {span}) / {max(1, args.recordings)}")
    # Each expired at its own instant (stored 28 days before, with a 28-day retention).
    expired = s.at(f"{t0} - {span} + (i * {span}) / {max(1, args.recordings)}")
    await s.run(
        f"INSERT INTO {Recording._meta.db_table} (team_id, external_id, account_id, status, "
        "storage_key, size_bytes, attempts, stored_at, expires_at, created_at, updated_at) "
        f"SELECT 1 + i % {args.teams}, 'RE' || {s.text('i')}, 'ACbench', 'stored', "
        f"'bench/' || {s.text('i % 100')} || '/' || {s.text('i')} || '.wav', 44, 0, "
        f"{r_moment}, {expired}, {r_moment}, {r_moment} FROM {s.series(args.recordings)}"
    )
    store = recording_storage(app)
    root = Path(store.path("bench/0/0.wav")).parent.parent
    for d in range(100):
        (root / str(d)).mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(write_files, root, args.recordings)
    times["recordings"] = time.monotonic() - started
    await s.conn.execute_query("ANALYZE")
    if s.pg:
        for model in (Team, User, Membership, Call, CallAnalysis, Recording):
            table = model._meta.db_table
            await s.conn.execute_query(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
            )
    return times


# --- phases ----------------------------------------------------------------------------


async def time_aggregation(args: argparse.Namespace) -> None:
    """The SQL part alone (what the tasks spend before queueing mail)."""
    from datetime import timedelta

    from gateway.identity.models import Team
    from plugins.cron import periods
    from plugins.cron.figures import aggregate

    zones = set(await Team.all().distinct().values_list("time_zone", flat=True))
    for name, buckets in (
        ("daily", periods.daily(DAILY_RUN - timedelta(days=1), DAILY_RUN)),
        ("weekly", periods.weekly(WEEKLY_RUN, zones)),
    ):
        started = time.monotonic()
        table = await aggregate(buckets, ["meeting_booked"])
        print(
            f"  aggregation alone, {name}: {time.monotonic() - started:.1f} s "
            f"({len(table)} team x bucket rows)"
        )


async def drain_jobs(app: Any, concurrency: int) -> int:
    """Run every due job with ``concurrency`` loops, as the gateway's worker does
    (``job_concurrency``), until none is left."""
    from gateway.jobs.worker import Worker

    worker = Worker(app, concurrency=concurrency, name="bench")
    done = 0

    async def loop() -> None:
        nonlocal done
        while await worker.run_once():
            done += 1

    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return done


async def phase(
    app: Any, clock: FrozenClock, task: str, at: datetime, concurrency: int
) -> dict[str, Any]:
    from gateway.scheduling.runner import runner_of

    clock.set(at)
    runner = runner_of(app)
    cpu0 = cpu_seconds()
    with Peak() as peak:
        started = time.monotonic()
        claim = await runner.trigger(task, trigger="cli", forced=True)
        run = await runner.wait(claim.run.id)
        task_s = time.monotonic() - started
        jobs = await drain_jobs(app, concurrency)
        total_s = time.monotonic() - started
    return {
        "task": task,
        "status": run.status if run else "?",
        "detail": run.detail if run else "",
        "figures": run.figures if run else {},
        "task_s": task_s,
        "jobs": jobs,
        "jobs_s": total_s - task_s,
        "total_s": total_s,
        "rss_mb": peak.growth_mb,
        "cpu_s": cpu_seconds() - cpu0,
    }


async def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="reports-bench-"))
    pg_admin, name = None, ""
    db_url = None  # SQLite: the gateway's default file (WAL, synchronous=NORMAL)
    if args.database == "postgres":
        import asyncpg

        name = f"reports_bench_{uuid.uuid4().hex[:8]}"
        pg_admin = await asyncpg.connect(f"{args.pg_url}/postgres")
        await pg_admin.execute(f'CREATE DATABASE "{name}"')
        db_url = f"{args.pg_url}/{name}"
    ok = True
    with Sink(workdir) as smtp:
        gateway = {
            "data_dir": str(workdir / "data"),
            **({"database_url": db_url} if db_url else {}),
            "auto_migrate": True,
            "run_worker": False,
            "run_scheduler": False,
            "public_url": "https://gateway.bench",
            "cron_secret": "bench-cron-secret-0123456789abcdef",
            "mail": {
                "host": "127.0.0.1",
                "port": smtp.port,
                "security": "none",
                "from_address": "Reports <reports@bench.test>",
            },
        }
        config = load_config(data={"gateway": gateway, "plugins": {"cron": {}}}, environ={})
        clock = FrozenClock(DAILY_RUN)
        app = create_app(config, clock=clock)
        test_app = app.test_app()
        await test_app.startup()
        try:
            with Peak() as seeding:
                started = time.monotonic()
                seeded = await seed(app, args)
                seed_s = time.monotonic() - started
            print(
                f"reports bench: {args.database}, {args.teams} teams, {args.calls} calls, "
                f"{args.analyses} analyses, {args.recordings} expired recordings, "
                f"{args.job_concurrency} jobs at once"
            )
            print(
                f"  seeded in {seed_s:.1f} s ("
                + ", ".join(f"{k} {v:.1f} s" for k, v in seeded.items())
                + f"), RSS +{seeding.growth_mb:.0f} MB"
            )
            print(f"  load average before the phases: {os.getloadavg()}")
            await time_aggregation(args)
            expected_mails = 0
            for task, at in (
                ("daily-summary", DAILY_RUN),
                ("weekly-report", WEEKLY_RUN),
                ("cleanup-recordings", WEEKLY_RUN),
            ):
                before = smtp.mails
                out = await phase(app, clock, task, at, args.job_concurrency)
                mails = smtp.mails - before
                target = (
                    out["total_s"] < 60 and out["rss_mb"] < 200 and out["status"] == "succeeded"
                )
                if task != "cleanup-recordings":
                    expected_mails = int(out["figures"].get("mails_queued", -1))
                    target = target and mails == expected_mails
                else:
                    target = target and out["figures"].get("expired") == args.recordings
                ok = ok and target
                print(
                    f"  {task}: {out['status']} in {out['total_s']:.1f} s "
                    f"(task {out['task_s']:.1f} s, {out['jobs']} jobs {out['jobs_s']:.1f} s), "
                    f"CPU {out['cpu_s']:.1f} s, peak RSS +{out['rss_mb']:.0f} MB,"
                    f" mails {mails}, load {os.getloadavg()[0]:.1f}"
                    f" {'on target' if target else 'OFF TARGET'}"
                )
                print(f"    figures {out['figures']}")
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
            print(f"  process max RSS {peak_mb:.0f} MB")
        finally:
            await test_app.shutdown()
            if pg_admin is not None:
                await pg_admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await pg_admin.close()
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teams", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--analyses", type=int, default=None, help="default: calls / 2")
    parser.add_argument("--recordings", type=int, default=100_000)
    parser.add_argument("--job-concurrency", type=int, default=4, help="the gateway default")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    if args.analyses is None:
        args.analyses = args.calls // 2
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())

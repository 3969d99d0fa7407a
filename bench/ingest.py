"""Ingest benchmark: the gateway's real ``/api/webhooks/twilio/status`` against a bare
Quart route that only parses the same form, both on one Hypercorn worker.

    python bench/ingest.py [--requests 5000] [--connections 32]

Prints req/s, p50 and p99 for each and their ratio, then how long an event waits before
its handler starts when the queue is idle. Loopback only; see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PATH = "/api/webhooks/twilio/status"
PUBLIC_URL = "https://gateway.bench"  # what Twilio signs: the configured public URL
ACCOUNT_SID = "AC" + "0b" * 16
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
TEAM_NUMBER = "+15005550006"
STATUSES = [("initiated", None), ("ringing", None), ("in-progress", None), ("completed", "47")]


# -- the two servers (run as subprocesses: ``ingest.py _serve bare|gateway``) -------


def _bare_app() -> Any:
    from quart import Quart, request

    app = Quart("bare")

    @app.post(PATH)
    async def status() -> tuple[str, int]:
        form = await request.form
        return ("", 204) if form.get("CallSid") else ("", 400)

    return app


async def _record_start(ctx: Any) -> None:
    """Bench-only handler for ``voice.call.status``: writes when it started."""
    started = time.time()
    sid = (ctx.event.payload or {}).get("CallSid", "")
    with open(os.environ["BENCH_PROBE_FILE"], "a") as fh:  # noqa: ASYNC230 - bench only
        fh.write(f"{sid} {started:.6f}\n")


def _gateway_app() -> Any:
    from gateway import hookimpl
    from gateway.app import create_app
    from gateway.asgi import tuned_for_serving
    from gateway.config import load_config
    from gateway.logs import configure_logging

    config = load_config(os.environ["BENCH_CONFIG"])
    configure_logging(config.gateway.log_format, config.gateway.log_level)
    from types import SimpleNamespace

    from gateway.events import EventHandler

    @hookimpl
    def register_event_handlers(config: Any) -> list[Any]:
        return [EventHandler("bench.probe", ("voice.call.status",), _record_start)]

    extra: list[tuple[str, object]] = []
    if os.environ.get("BENCH_PROBE_FILE"):
        probe = SimpleNamespace(register_event_handlers=register_event_handlers)
        extra.append(("bench_probe", probe))
    return tuned_for_serving(create_app(config, extra_plugins=extra))


def _serve(which: str, port: int) -> int:
    """The same Hypercorn setup as ``gateway serve``: uvloop, one in-process worker."""
    from hypercorn.config import Config
    from hypercorn.run import run

    hc = Config()
    hc.bind = [f"127.0.0.1:{port}"]
    hc.application_path = f"bench.ingest:_{which}_app()"
    hc.accesslog = None
    hc.worker_class = "uvloop"
    hc.workers = 0
    hc.h11_max_incomplete_size = 64 * 1024
    return run(hc)


# -- load generator: a minimal keep-alive HTTP/1.1 client (cheaper than aiohttp, so the
# client never becomes the bottleneck on the second core) ---------------------------


def status_form(call_sid: str, status: str, seq: int, duration: str | None) -> dict[str, str]:
    form = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": status,
        "Called": TEAM_NUMBER,
        "CalledCity": "SAN FRANCISCO",
        "CalledCountry": "US",
        "CalledState": "CA",
        "CalledZip": "94105",
        "Caller": "+14155550100",
        "CallerCity": "OAKLAND",
        "CallerCountry": "US",
        "CallerState": "CA",
        "CallerZip": "94612",
        "CallbackSource": "call-progress-events",
        "Direction": "inbound",
        "From": "+14155550100",
        "FromCity": "OAKLAND",
        "FromCountry": "US",
        "FromState": "CA",
        "FromZip": "94612",
        "SequenceNumber": str(seq),
        "Timestamp": "Sun, 29 Nov 2026 02:00:00 +0000",
        "To": TEAM_NUMBER,
        "ToCity": "SAN FRANCISCO",
        "ToCountry": "US",
        "ToState": "CA",
        "ToZip": "94105",
    }
    if duration:
        form.update(CallDuration=duration, Duration="1")
    return form


def build_requests(n: int, port: int, tag: str) -> list[bytes]:
    """``n`` signed status callbacks: calls of four progress events each."""
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(AUTH_TOKEN)
    out = []
    for i in range(n):
        call, (status, duration) = divmod(i, 4)[0], STATUSES[i % 4]
        sid = f"CA{tag}{call:0{32 - len(tag)}x}"
        form = status_form(sid, status, i % 4, duration)
        body = urlencode(form).encode()
        sig = validator.compute_signature(PUBLIC_URL + PATH, form)
        head = (
            f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\nX-Twilio-Signature: {sig}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


async def _one_connection(port: int, requests: Any, lat: list[float], codes: dict) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for req in requests:
            t0 = time.perf_counter()
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            code = int(head[9:12])
            length, close = 0, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            if length:
                await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
            codes[code] = codes.get(code, 0) + 1
            if close:  # Hypercorn ends keep-alive after 1000 requests: reconnect
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


async def load(port: int, requests: list[bytes], connections: int, deadline: float) -> dict:
    it = iter(requests)
    lat: list[float] = []
    codes: dict[int, int] = {}
    start = time.perf_counter()
    tasks = [_one_connection(port, it, lat, codes) for _ in range(connections)]
    await asyncio.wait_for(asyncio.gather(*tasks), deadline)
    elapsed = time.perf_counter() - start
    return {
        "rps": len(lat) / elapsed,
        "p50": pct(lat, 0.5),
        "p99": pct(lat, 0.99),
        "max": pct(lat, 1.0),
        "codes": codes,
    }


# -- orchestration ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(which: str, env: dict[str, str], cpu: int | None) -> tuple[Any, int]:
    port = free_port()
    cmd = [sys.executable, str(Path(__file__).resolve()), "_serve", which, str(port)]
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        cmd = ["taskset", "-c", str(cpu), *cmd]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{which} server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"{which} server did not start")


def stop_server(proc: Any) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def write_config(workdir: Path, probe: bool = False, database_url: str | None = None) -> Path:
    path = workdir / "plugins.toml"
    # A [plugins] table is an allowlist: the bench-only probe must be listed to load.
    extra = "\n[plugins.bench_probe]\n" if probe else ""
    database = f'database_url = "{database_url}"\nauto_migrate = true\n' if database_url else ""
    path.write_text(
        f"""[gateway]
{database}data_dir = "{workdir / "data"}"
public_url = "{PUBLIC_URL}"
run_worker = true
log_level = "WARNING"

[plugins.twilio_voice]
account_sid = "{ACCOUNT_SID}"
auth_token = {{ env = "BENCH_TWILIO_TOKEN" }}
stream_url = "wss://agent.bench/stream"
{extra}"""
    )
    return path


def seed_team(workdir: Path, database_url: str | None = None) -> None:
    """A team owning the called number, so events are routed as in production."""
    if database_url:
        asyncio.run(_seed_postgres(database_url))
        return
    db = sqlite3.connect(workdir / "data" / "gateway.db", timeout=10)
    with db:
        db.execute(
            "INSERT INTO teams (name, time_zone, recording_retention_days, created_at) "
            "VALUES ('Bench', 'UTC', 90, datetime('now'))"
        )
        db.execute(
            "INSERT INTO phone_numbers (team_id, number, created_at) "
            "VALUES (last_insert_rowid(), ?, datetime('now'))",
            (TEAM_NUMBER,),
        )
    db.close()


async def _seed_postgres(url: str) -> None:
    import asyncpg

    from gateway.jobs.wakeups import asyncpg_dsn

    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        team = await conn.fetchval(
            "INSERT INTO teams (name, time_zone, recording_retention_days, created_at) "
            "VALUES ('Bench', 'UTC', 90, now()) RETURNING id"
        )
        await conn.execute(
            "INSERT INTO phone_numbers (team_id, number, created_at) VALUES ($1, $2, now())",
            team,
            TEAM_NUMBER,
        )
    finally:
        await conn.close()


async def _pg_admin(base: str, sql: str) -> None:
    import asyncpg

    from gateway.jobs.wakeups import asyncpg_dsn

    conn = await asyncpg.connect(asyncpg_dsn(base + "/test"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def gateway_database(args: argparse.Namespace) -> Iterator[str | None]:
    """``None`` (SQLite in the data dir, the embedded default) or the URL of a new
    PostgreSQL database, dropped afterwards."""
    if args.database != "postgres":
        yield None
        return
    base = args.pg_url.rstrip("/")
    name = f"gwbench_{os.getpid()}_{time.monotonic_ns()}"
    asyncio.run(_pg_admin(base, f'CREATE DATABASE "{name}"'))
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_pg_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def measure(
    which: str,
    env: dict,
    args: argparse.Namespace,
    workdir: Path | None,
    database_url: str | None = None,
) -> dict:
    proc, port = start_server(which, env, args.server_cpu)
    try:
        if workdir is not None:
            seed_team(workdir, database_url)
        warm = build_requests(args.warmup, port, "e0")
        reqs = build_requests(args.requests, port, "f0")
        asyncio.run(load(port, warm, args.connections, args.deadline))
        return asyncio.run(load(port, reqs, args.connections, args.deadline))
    finally:
        stop_server(proc)


def _measure_fresh(which: str, env: dict, args: argparse.Namespace) -> dict:
    """One server run; the gateway gets a new data dir (an empty database) each time."""
    if which == "bare":
        return measure("bare", env, args, None)
    with tempfile.TemporaryDirectory() as tmp, gateway_database(args) as url:
        workdir = Path(tmp)
        config = str(write_config(workdir, database_url=url))
        return measure("gateway", {**env, "BENCH_CONFIG": config}, args, workdir, url)


async def _idle_latency(port: int, probe_file: Path, n: int) -> list[tuple[float, float]]:
    """Send one event at a time; after each, wait until its handler has started."""
    reqs = build_requests(n * 4, port, "d0")[3::4]  # the "completed" event of each call
    acks: dict[str, tuple[float, float]] = {}
    for req in reqs:
        sid = req.split(b"CallSid=", 1)[1][:34].decode()
        sent = time.time()
        await load(port, [req], 1, 10)
        acks[sid] = (sent, time.time())
        deadline = time.monotonic() + (10 if acks else 30)
        # The handler runs in another process and leaves only a line in a file: poll it.
        while sid not in probe_file.read_text() and time.monotonic() < deadline:  # noqa: ASYNC110, ASYNC240
            await asyncio.sleep(0.002)
        if sid not in probe_file.read_text():  # noqa: ASYNC240
            print(f"idle queue: handler for {sid} never started; stopping this phase")
            break
        await asyncio.sleep(0.02)  # idle again before the next one
    starts = {}
    for line in probe_file.read_text().splitlines():  # noqa: ASYNC240 - after the run
        sid, at = line.split()
        starts.setdefault(sid, float(at))
    return [
        (starts[s] - sent, starts[s] - acked) for s, (sent, acked) in acks.items() if s in starts
    ]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] * 1000


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_serve":
        return _serve(sys.argv[2], int(sys.argv[3]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--deadline", type=float, default=120, help="seconds per phase")
    parser.add_argument("--idle-events", type=int, default=100)
    parser.add_argument("--server-cpu", type=int, default=0, help="-1: do not pin")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--pg-url",
        default="postgres://postgres@127.0.0.1:5432",
        help="server for --database postgres (a database is created and dropped per run)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="bare/gateway pairs; the median pair is reported"
    )
    args = parser.parse_args()
    if args.server_cpu < 0 or not hasattr(os, "sched_setaffinity"):
        args.server_cpu = None
    elif hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)) - {args.server_cpu})

    env = {"BENCH_TWILIO_TOKEN": AUTH_TOKEN}
    print(
        f"\n{args.requests} signed status callbacks, {args.connections} connections, "
        f"server pinned to CPU {args.server_cpu}, {args.rounds} rounds, {args.database}"
    )
    print(f"{'':14}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}  responses")
    pairs: list[tuple[dict, dict]] = []
    for n in range(args.rounds):
        # Alternate which one goes first, so drift in the machine's speed cancels out.
        first_bare = n % 2 == 0
        results: dict[str, dict] = {}
        for which in ("bare", "gateway") if first_bare else ("gateway", "bare"):
            results[which] = _measure_fresh(which, env, args)
        pairs.append((results["bare"], results["gateway"]))
        for name in ("bare", "gateway"):
            r = results[name]
            label = f"{name} #{n + 1}"
            print(f"{label:14}{r['rps']:10.0f}{r['p50']:10.2f}{r['p99']:10.2f}  {r['codes']}")
    pairs.sort(key=lambda pair: pair[1]["rps"] / pair[0]["rps"])
    bare, gateway = pairs[len(pairs) // 2]
    ratio = gateway["rps"] / bare["rps"]
    print(
        f"median round: ratio gateway/bare {ratio:.2f}x, gateway p99 {gateway['p99']:.1f} ms "
        "(target >= 0.60x, gateway p99 < 40 ms)",
        flush=True,
    )

    with tempfile.TemporaryDirectory() as tmp, gateway_database(args) as url:
        workdir = Path(tmp)
        probe_file = workdir / "handler-starts.txt"
        probe_file.touch()
        env.update(
            BENCH_CONFIG=str(write_config(workdir, probe=True, database_url=url)),
            BENCH_PROBE_FILE=str(probe_file),
        )
        proc, port = start_server("gateway", env, args.server_cpu)
        try:
            seed_team(workdir, url)
            waits = asyncio.run(_idle_latency(port, probe_file, args.idle_events))
        finally:
            stop_server(proc)
    if waits:
        sent = [w[0] for w in waits]
        acked = [w[1] for w in waits]
        print(
            f"idle queue, {len(waits)}/{args.idle_events} events: handler start after "
            f"request sent p50 {pct(sent, 0.5):.1f} ms p99 {pct(sent, 0.99):.1f} ms; "
            f"after 2xx p50 {pct(acked, 0.5):.1f} ms p99 {pct(acked, 0.99):.1f} ms "
            "(target p50 < 50 ms)"
        )
    else:
        print("idle queue: no handler ran (is the job worker running?)")
    ok = all(g["codes"].keys() <= {200, 201, 202, 204} for _, g in pairs)
    if not ok:
        print("gateway answered non-2xx responses: figures are not valid")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

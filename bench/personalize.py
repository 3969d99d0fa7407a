"""Personalization benchmark: ``POST /api/webhooks/elevenlabs/personalize`` on a real
``gateway serve`` pinned to one core, against two references on the same Hypercorn
setup and core: a bare Quart route that parses the same JSON and answers a fixed one,
and the floor, a plain ASGI function doing the same without any framework.

    .venv/bin/python bench/personalize.py [--seconds 10] [--connections 32]

The load comes from ``wrk`` when it is installed (``--client python`` for the Python
client, ``--requests`` then counts the measured run): see bench/wrk.py for why.

1. warm cache: every caller's lookup already answered, so each request is the route's
   own work (secret, team and settings, the cached contact, the answer, the record
   queued and written in the background): req/s, p50, p99 (target p99 <= 25 ms at 32
   connections), CPU per request, and the same for the two references;
2. a lookup that takes 5 s: every answer must leave within the deadline + 50 ms, with
   the defaults.

The contact lookup is a bench-only plugin, installed for the server process through a
temporary ``*.dist-info`` entry point (exactly how a CRM plugin package is found). Loopback
only; see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import wrk  # noqa: E402
from bench.ingest import load  # noqa: E402  (the Python keep-alive load generator)

PATH = "/api/webhooks/elevenlabs/personalize"
SECRET = "bench-personalize-secret-0123456789"
NUMBER = "+15005550006"
AGENT = "agent_bench_01"
TEAM_SETTINGS = {
    "dynamic_variables": {"customer_name": "there", "company": "", "vip": False},
    "contact_variables": {"customer_name": "name", "company": "company.name"},
    "overrides": {"first_message": "Hi {{customer_name}}, thanks for calling Acme."},
}
PLUGIN = '''"""Bench-only contact lookup: answers every caller after BENCH_LOOKUP_DELAY seconds."""
import asyncio
import os

from gateway import hookimpl


@hookimpl
async def lookup_contact(team, phone):
    delay = float(os.environ.get("BENCH_LOOKUP_DELAY", "0"))
    if delay:
        await asyncio.sleep(delay)
    return {"name": "Caller " + phone[-4:], "company": {"name": "Initech"}}
'''


def install_lookup_plugin(directory: Path) -> None:
    """A module and its entry point, found through ``PYTHONPATH``."""
    (directory / "bench_lookup.py").write_text(PLUGIN)
    dist = directory / "bench_lookup-0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: bench-lookup\nVersion: 0.0\n")
    (dist / "entry_points.txt").write_text("[gateway.plugins]\nbench_lookup = bench_lookup\n")


# -- the reference servers (``personalize.py _bare|_floor <port>``) ---------------------

FIXED_ANSWER = {
    "type": "conversation_initiation_client_data",
    "dynamic_variables": {"customer_name": "there", "company": "", "vip": False},
    "conversation_config_override": {"agent": {"first_message": "Hi"}},
}


def _bare_app() -> Any:
    from quart import Quart, jsonify, request

    from gateway.asgi import tuned_for_serving  # the same gc.freeze as gateway serve

    app = tuned_for_serving(Quart("bare"))

    @app.post(PATH)
    async def personalize() -> Any:
        body = await request.get_json(force=True)
        return jsonify(FIXED_ANSWER) if body.get("caller_id") else ("", 400)

    return app


async def _floor_app(scope: dict, receive: Any, send: Any) -> None:
    """The least an ASGI app can do for this request: what Hypercorn alone costs."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    answer = json.dumps(FIXED_ANSWER).encode() if json.loads(body).get("caller_id") else b""
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


def _serve_reference(which: str, port: int) -> int:
    from hypercorn.config import Config
    from hypercorn.run import run

    hc = Config()
    hc.bind = [f"127.0.0.1:{port}"]
    hc.application_path = (
        "bench.personalize:_bare_app()" if which == "_bare" else "bench.personalize:_floor_app"
    )
    hc.accesslog = None
    hc.worker_class = "uvloop"
    hc.workers = 0
    hc.h11_max_incomplete_size = 64 * 1024
    return run(hc)


# -- servers --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(proc: subprocess.Popen, port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not start")


def pinned(cmd: list[str], cpu: int | None) -> list[str]:
    return ["taskset", "-c", str(cpu), *cmd] if cpu is not None else cmd


def write_config(workdir: Path, deadline: float) -> Path:
    path = workdir / "plugins.toml"
    path.write_text(
        f"""[gateway]
data_dir = "{workdir / "data"}"
public_url = "https://gateway.bench"
log_level = "ERROR"
run_worker = true

[plugins.elevenlabs]
webhook_secret = "bench-webhook-secret"
personalize_secret = {{ env = "BENCH_PERSONALIZE_SECRET" }}
default_dynamic_variables = {{ greeting = "Hello" }}
lookup_deadline_seconds = {deadline}
lookup_cache_seconds = 3600

[plugins.bench_lookup]
"""
    )
    return path


def start_gateway(workdir: Path, args: Any, delay: float) -> tuple[subprocess.Popen, int]:
    port = free_port()
    config = write_config(workdir, args.deadline_seconds)
    cmd = [sys.executable, "-m", "gateway.cli", "--config", str(config), "serve"]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    env = {
        **os.environ,
        "BENCH_PERSONALIZE_SECRET": SECRET,
        "BENCH_LOOKUP_DELAY": str(delay),
        "PYTHONPATH": os.pathsep.join([str(workdir / "site"), str(ROOT)]),
    }
    log = (workdir / "gateway.log").open("a")
    proc = subprocess.Popen(pinned(cmd, args.server_cpu), cwd=ROOT, env=env, stderr=log)
    wait_ready(proc, port)
    return proc, port


def start_reference(which: str, args: Any) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cmd = [sys.executable, str(Path(__file__).resolve()), "_" + which, str(port)]
    proc = subprocess.Popen(pinned(cmd, args.server_cpu), cwd=ROOT, stderr=subprocess.DEVNULL)
    wait_ready(proc, port)
    return proc, port


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()  # the gateway writes what is still queued before it exits
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def seed(workdir: Path) -> None:
    """A team owning the number and the agent, with its personalization settings."""
    db = sqlite3.connect(workdir / "data" / "gateway.db", timeout=10)
    with db:
        team = db.execute(
            "INSERT INTO teams (name, time_zone, recording_retention_days, created_at) "
            "VALUES ('Bench', 'UTC', 90, datetime('now'))"
        ).lastrowid
        for table, column, value in (
            ("phone_numbers", "number", NUMBER),
            ("voice_agents", "agent_id", AGENT),
        ):
            extra = ", label" if table == "voice_agents" else ""
            values = ", ''" if extra else ""
            db.execute(
                f"INSERT INTO {table} (team_id, {column}{extra}, created_at) "
                f"VALUES (?, ?{values}, datetime('now'))",
                (team, value),
            )
        db.execute(
            "INSERT INTO team_plugin_settings (team_id, plugin, document, version, updated_at) "
            "VALUES (?, 'elevenlabs', ?, 1, datetime('now'))",
            (team, json.dumps(TEAM_SETTINGS)),
        )
    db.close()


def records_written(workdir: Path) -> int:
    db = sqlite3.connect(workdir / "data" / "gateway.db", timeout=10)
    try:
        sql = "SELECT count(*) FROM call_analyses WHERE personalization IS NOT NULL"
        return db.execute(sql).fetchone()[0]
    finally:
        db.close()


# -- requests -------------------------------------------------------------------------


def body_of(caller: str, call_sid: str) -> bytes:
    return json.dumps(
        {"caller_id": caller, "agent_id": AGENT, "called_number": NUMBER, "call_sid": call_sid}
    ).encode()


def build_requests(n: int, port: int, tag: str, callers: int) -> list[bytes]:
    out = []
    for i in range(n):
        body = body_of(f"+1415555{i % callers:04d}", f"CA{tag}{i:0{32 - len(tag)}x}")
        head = (
            f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nX-Webhook-Secret: {SECRET}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


# wrk's requests: the same as build_requests', each with its own call_sid.
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Webhook-Secret"] = "%(secret)s"
local n = 0
request = function()
  n = n + 1
  local body = string.format(
    '{"caller_id": "+1415555%%04d", "agent_id": "%(agent)s", "called_number": "%(number)s", '
    .. '"call_sid": "CA%(tag)s%%0%(width)dd"}', n %% %(callers)d, n)
  return wrk.format(nil, nil, nil, body)
end
"""


def wrk_load(port: int, seconds: int, tag: str, args: Any) -> dict[str, Any]:
    script = WRK_SCRIPT % {
        "secret": SECRET,
        "agent": AGENT,
        "number": NUMBER,
        "tag": tag,
        "width": 32 - len(tag),
        "callers": args.callers,
    }
    return wrk.run(
        f"http://127.0.0.1:{port}{PATH}", script, seconds=seconds, connections=args.connections
    )


def ask_once(port: int, caller: str) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            "POST",
            PATH,
            body=body_of(caller, "CA" + "f" * 32),
            headers={"Content-Type": "application/json", "X-Webhook-Secret": SECRET},
        )
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def warm_up(port: int, tag: str, args: Any) -> int:
    """Load before the measured run; the answers counted."""
    if args.client == "wrk":
        return wrk_load(port, args.warmup_seconds, tag, args)["requests"]
    reqs = build_requests(args.warmup, port, tag, args.callers)
    asyncio.run(load(port, reqs, args.connections, args.deadline))
    return len(reqs)


def measured(proc: subprocess.Popen, port: int, tag: str, args: Any) -> dict:
    """The load run, plus the server's CPU per request: what the route costs whatever
    else the machine is doing (the latency figures depend on that)."""
    before = cpu_seconds(proc.pid)
    if args.client == "wrk":
        result = wrk_load(port, args.seconds, tag, args)
    else:
        reqs = build_requests(args.requests, port, tag, args.callers)
        result = asyncio.run(load(port, reqs, args.connections, args.deadline))
        result["requests"] = len(reqs)
    result["cpu_ms"] = (cpu_seconds(proc.pid) - before) * 1000 / max(result["requests"], 1)
    return result


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} (1 / 5 min) on {os.cpu_count()} CPUs"


# -- the runs -------------------------------------------------------------------------


def warm_round(args: Any, n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "site").mkdir()
        install_lookup_plugin(workdir / "site")
        proc, port = start_gateway(workdir, args, delay=0)
        try:
            seed(workdir)
            # Every caller once (fills the cache), then the warm-up, then the measured run.
            fill = build_requests(args.callers, port, f"a{n}", args.callers)
            asyncio.run(load(port, fill, args.connections, args.deadline))
            answer = ask_once(port, "+14155550007")
            assert answer["dynamic_variables"]["customer_name"] == "Caller 0007", answer
            warm = warm_up(port, f"b{n}", args)
            result = measured(proc, port, f"c{n}", args)
        finally:
            stop(proc)
        # wrk stops on a clock: the answers in flight then reached the server (and were
        # recorded) but were not counted, at most one per connection and phase.
        answered = args.callers + 1 + warm + result["requests"]
        written = records_written(workdir)
        slack = 2 * args.connections if args.client == "wrk" else 0
        result["records"] = f"{written}/{answered}"
        result["records_ok"] = answered <= written <= answered + slack
        return result


def reference_round(which: str, args: Any, n: int) -> dict:
    proc, port = start_reference(which, args)
    try:
        warm_up(port, f"d{n}", args)
        return measured(proc, port, f"e{n}", args)
    finally:
        stop(proc)


def slow_run(args: Any) -> tuple[dict, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "site").mkdir()
        install_lookup_plugin(workdir / "site")
        proc, port = start_gateway(workdir, args, delay=args.slow_delay)
        try:
            seed(workdir)
            answer = ask_once(port, "+14155550007")
            # Distinct callers: nothing is cached (a missed lookup is not), so every
            # request waits for the deadline.
            reqs = build_requests(args.slow_requests, port, "s", args.slow_requests)
            result = asyncio.run(load(port, reqs, args.connections, args.deadline))
        finally:
            stop(proc)
        return result, answer


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] in ("_bare", "_floor"):
        return _serve_reference(sys.argv[1], int(sys.argv[2]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--client",
        choices=("wrk", "python"),
        default="wrk" if wrk.available() else "python",
        help="the load generator (default: wrk when installed)",
    )
    parser.add_argument("--seconds", type=int, default=10, help="measured run, wrk")
    parser.add_argument("--warmup-seconds", type=int, default=3, help="warm-up, wrk")
    parser.add_argument("--requests", type=int, default=5000, help="measured run, python")
    parser.add_argument("--warmup", type=int, default=500, help="warm-up, python")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--callers", type=int, default=200, help="distinct callers (cached)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of the three servers (median)"
    )
    parser.add_argument("--slow-requests", type=int, default=96)
    parser.add_argument("--slow-delay", type=float, default=5.0, help="the slow lookup, s")
    parser.add_argument("--deadline-seconds", type=float, default=1.0, help="lookup deadline")
    parser.add_argument("--deadline", type=float, default=180, help="seconds per phase")
    parser.add_argument("--server-cpu", type=int, default=0, help="-1: do not pin")
    args = parser.parse_args()
    if args.server_cpu < 0 or not hasattr(os, "sched_setaffinity"):
        args.server_cpu = None
    elif (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)) - {args.server_cpu})

    size = f"{args.seconds:g} s of wrk" if args.client == "wrk" else f"{args.requests} requests"
    print(
        f"\nwarm cache: {size}, {args.connections} connections, {args.callers} callers, "
        f"server pinned to CPU {args.server_cpu}; {load_note()}"
    )
    print(f"{'':14}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/req':>11}  responses  records")
    servers = ("floor", "bare", "gateway")
    rounds: list[dict[str, dict]] = []
    ok = True
    for n in range(args.rounds):
        # A different server goes first each round: the machine's state drifts.
        order = servers[n % 3 :] + servers[: n % 3]
        results = {
            w: warm_round(args, n) if w == "gateway" else reference_round(w, args, n) for w in order
        }
        rounds.append(results)
        for name in servers:
            r = results[name]
            ok &= set(r["codes"]) in ({200}, {wrk.OK}) and r.get("records_ok", True)
            print(
                f"{name + f' #{n + 1}':14}{r['rps']:8.0f}{r['p50']:9.2f}{r['p99']:9.2f}"
                f"{r['cpu_ms']:11.3f}  {r['codes']}  {r.get('records', '')}",
                flush=True,
            )
    rounds.sort(key=lambda r: r["gateway"]["p99"])
    median = rounds[len(rounds) // 2]
    floor, bare, gateway = (median[w] for w in servers)
    print(
        f"median round: gateway p50 {gateway['p50']:.1f} ms, p99 {gateway['p99']:.1f} ms "
        f"(target p99 <= 25 ms); bare Quart p99 {bare['p99']:.1f} ms, floor (plain ASGI "
        f"on Hypercorn) p99 {floor['p99']:.1f} ms. CPU per request: gateway "
        f"{gateway['cpu_ms']:.3f} ms, bare {bare['cpu_ms']:.3f} ms, floor "
        f"{floor['cpu_ms']:.3f} ms (gateway = floor + {gateway['cpu_ms'] - floor['cpu_ms']:.3f})",
        flush=True,
    )

    print(
        f"\nslow lookup ({args.slow_delay:g} s), deadline {args.deadline_seconds:g} s: "
        f"{args.slow_requests} requests, {args.connections} connections; {load_note()}"
    )
    slow, answer = slow_run(args)
    limit = args.deadline_seconds * 1000 + 50
    ok &= set(slow["codes"]) == {200}
    defaults = answer["dynamic_variables"].get("customer_name") == "there"
    within = slow["max"] <= limit
    print(
        f"p50 {slow['p50']:.1f} ms, p99 {slow['p99']:.1f} ms, max {slow['max']:.1f} ms "
        f"(target every answer <= {limit:.0f} ms: {'met' if within else 'MISSED'}); "
        f"defaults answered: {defaults}; {slow['codes']}"
    )
    if not ok:
        print("non-200 responses or records not written: figures are not valid")
    return 0 if ok and defaults else 1


if __name__ == "__main__":
    sys.exit(main())

"""Audio webhook benchmark: how much memory a real ``gateway serve`` needs to take
signed ``post_call_audio`` deliveries of 12 MB and 100 MB (base64 MP3 in JSON, sent
chunked as ElevenLabs does), one at a time and four at once.

    python bench/audio.py [--sizes-mb 12,100] [--concurrency 1,4]

Prints, per run, the server's peak RSS growth over its idle RSS as a multiple of one
body (target <= 0.5x), and the same for a bare Quart route that parses the body the
naive way (``get_json`` + ``b64decode``) for comparison. Loopback only; see
bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PATH = "/api/webhooks/elevenlabs"
SECRET = "bench-elevenlabs-webhook-secret"
AGENT = "agent_bench"
MB = 1_000_000
SEND_CHUNK = 256 * 1024


# -- the naive comparison server (``audio.py _naive <port> <dir>``) ------------------


def _naive_app(out_dir: str) -> Any:
    from quart import Quart, request

    app = Quart("naive")
    app.config["MAX_CONTENT_LENGTH"] = 200 * 1024 * 1024

    @app.post(PATH)
    async def receive() -> tuple[str, int]:
        doc = await request.get_json()
        audio = base64.b64decode(doc["data"]["full_audio"])
        name = Path(out_dir) / f"{doc['data']['conversation_id']}.mp3"
        name.write_bytes(audio)  # the naive way, on purpose
        return "", 200

    return app


def _serve_naive(port: int, out_dir: str) -> int:
    from hypercorn.config import Config
    from hypercorn.run import run

    os.environ["BENCH_NAIVE_DIR"] = out_dir
    hc = Config()
    hc.bind = [f"127.0.0.1:{port}"]
    hc.application_path = "bench.audio:_naive_from_env()"
    hc.accesslog = None
    hc.worker_class = "uvloop"
    hc.workers = 0
    return run(hc)


def _naive_from_env() -> Any:
    return _naive_app(os.environ["BENCH_NAIVE_DIR"])


# -- memory of another process ------------------------------------------------------


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found")


class PeakRSS:
    """The peak RSS of ``pid`` during a ``with`` block: the kernel's high-water mark
    (reset on entry through ``/proc/<pid>/clear_refs``) and, where that reset is not
    allowed, the highest of samples taken every 2 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._hwm_reset = False

    def __enter__(self) -> PeakRSS:
        self.start_kb = _status_kb(self.pid, "VmRSS")
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            self._hwm_reset = True
        except OSError:
            self._hwm_reset = False
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, _status_kb(self.pid, "VmRSS"))
            time.sleep(0.002)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._hwm_reset:
            self.peak_kb = max(self.peak_kb, _status_kb(self.pid, "VmHWM"))

    @property
    def growth_bytes(self) -> int:
        return max(0, self.peak_kb - self.start_kb) * 1024


# -- deliveries -----------------------------------------------------------------------


class Audio:
    """One base64 audio string of about ``body_bytes``, shared by every delivery of
    that size (only the conversation id differs)."""

    def __init__(self, body_bytes: int, seed: int = 7) -> None:
        raw = random.Random(seed).randbytes(body_bytes * 3 // 4)
        self.raw_sha256 = hashlib.sha256(raw).hexdigest()
        self.raw_size = len(raw)
        self.b64 = base64.b64encode(raw)

    def delivery(self, conversation_id: str, t: int) -> tuple[bytes, bytes, str]:
        head = json.dumps(
            {
                "type": "post_call_audio",
                "event_timestamp": t,
                "data": {"agent_id": AGENT, "conversation_id": conversation_id},
            }
        )
        prefix = head[:-2].encode() + b', "full_audio": "'
        suffix = b'"}}'
        mac = hmac.new(SECRET.encode(), f"{t}.".encode(), hashlib.sha256)
        for part in (prefix, self.b64, suffix):
            mac.update(part)
        return prefix, suffix, f"t={t},v0={mac.hexdigest()}"

    def size(self, prefix: bytes, suffix: bytes) -> int:
        return len(prefix) + len(self.b64) + len(suffix)


async def _post(
    session: aiohttp.ClientSession, port: int, audio: Audio, conversation_id: str
) -> tuple[int, float]:
    prefix, suffix, sig = audio.delivery(conversation_id, int(time.time()))
    view = memoryview(audio.b64)

    async def body() -> Any:  # an async generator: aiohttp sends it chunked
        yield prefix
        for i in range(0, len(view), SEND_CHUNK):
            yield bytes(view[i : i + SEND_CHUNK])
        yield suffix

    started = time.perf_counter()
    async with session.post(
        f"http://127.0.0.1:{port}{PATH}",
        data=body(),
        headers={"Content-Type": "application/json", "ElevenLabs-Signature": sig},
    ) as resp:
        await resp.read()
        return resp.status, time.perf_counter() - started


async def send(port: int, audio: Audio, tag: str, concurrency: int, deadline: float) -> dict:
    timeout = aiohttp.ClientTimeout(total=deadline)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        results = await asyncio.gather(
            *(_post(session, port, audio, f"conv_{tag}_{i}") for i in range(concurrency))
        )
    codes: dict[int, int] = {}
    for code, _ in results:
        codes[code] = codes.get(code, 0) + 1
    return {"codes": codes, "seconds": max(s for _, s in results)}


# -- servers --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(proc: subprocess.Popen, port: int, path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(
                    f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
                )
                if sock.recv(64).startswith(b"HTTP/1.1"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


def start_gateway(workdir: Path, args: argparse.Namespace) -> tuple[subprocess.Popen, int]:
    port = free_port()
    config = workdir / "plugins.toml"
    config.write_text(
        f"""[gateway]
data_dir = "{workdir / "data"}"
public_url = "https://gateway.bench"
log_level = "WARNING"

[plugins.elevenlabs]
webhook_secret = {{ env = "BENCH_ELEVENLABS_SECRET" }}
audio_max_bytes = {args.audio_max_bytes}
"""
    )
    cmd = [sys.executable, "-m", "gateway.cli", "--config", str(config), "serve"]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "BENCH_ELEVENLABS_SECRET": SECRET}
    log = (workdir / "gateway.log").open("w")  # shown if a run fails
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=log)
    wait_ready(proc, port, "/healthz")
    return proc, port


def start_naive(workdir: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    out = workdir / "naive"
    out.mkdir(exist_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "_naive", str(port), str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.DEVNULL)
    wait_ready(proc, port, "/")
    return proc, port


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


# -- the runs -------------------------------------------------------------------------


def measure(which: str, proc: Any, port: int, audio: Audio, n: int, args: Any) -> dict:
    tag = f"{which[0]}{len(audio.b64)}x{n}_{time.monotonic_ns()}"
    with PeakRSS(proc.pid) as peak:
        result = asyncio.run(send(port, audio, tag, n, args.deadline))
    prefix, suffix, _ = audio.delivery("conv_x", 0)
    body = audio.size(prefix, suffix)
    result.update(growth=peak.growth_bytes, body=body, ratio=peak.growth_bytes / body)
    return result


def check_stored(workdir: Path, audio: Audio, count: int) -> str:
    """Every stored recording of this size is the audio, byte for byte."""
    blobs = [p for p in (workdir / "data" / "recordings" / "elevenlabs").glob("*.mp3")]
    mine = [p for p in blobs if p.stat().st_size == audio.raw_size]
    bad = [p for p in mine if hashlib.sha256(p.read_bytes()).hexdigest() != audio.raw_sha256]
    spool = list((workdir / "data" / "spool").glob("*"))
    return f"{len(mine)}/{count} stored byte-identical, {len(bad)} differ, {len(spool)} spool files"


def report(label: str, r: dict) -> None:
    print(
        f"{label:34}{r['body'] / MB:9.1f}{r['growth'] / MB:11.1f}{r['ratio']:9.2f}x"
        f"{r['seconds']:9.2f}  {r['codes']}",
        flush=True,
    )


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_naive":
        return _serve_naive(int(sys.argv[2]), sys.argv[3])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", default="12,100", help="body sizes, MB (10^6 bytes)")
    parser.add_argument("--concurrency", default="1,4", help="deliveries sent at once")
    parser.add_argument("--naive-max-mb", type=float, default=12, help="0: skip the naive route")
    parser.add_argument("--audio-max-bytes", type=int, default=150 * 1024 * 1024)
    parser.add_argument("--deadline", type=float, default=300, help="seconds per run")
    args = parser.parse_args()
    sizes = [float(s) for s in args.sizes_mb.split(",")]
    levels = [int(c) for c in args.concurrency.split(",")]

    print(f"\nsigned post_call_audio, chunked; sizes {sizes} MB; concurrency {levels}")
    print(f"{'':34}{'body MB':>9}{'peak +MB':>11}{'x body':>10}{'seconds':>9}  responses")
    ok, worst = True, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        proc, port = start_gateway(workdir, args)
        try:
            # Warm-up at the highest concurrency: the first burst after start creates the
            # worker threads (and their allocator arenas) once, ~5 MB; measured apart.
            warm = measure("gateway", proc, port, Audio(MB), max(levels), args)
            report(f"(warm-up, 1 MB x{max(levels)})", warm)
            for size in sizes:
                audio = Audio(int(size * MB))
                for n in levels:
                    r = measure("gateway", proc, port, audio, n, args)
                    report(f"gateway, {size:g} MB x{n}", r)
                    ok &= r["codes"] == {200: n}
                    worst = max(worst, r["ratio"])
                print(f"{'':34}{check_stored(workdir, audio, sum(levels))}")
        finally:
            stop(proc)
        if not ok:
            print("gateway answered something other than 200: figures are not valid")
            print((workdir / "gateway.log").read_text()[-3000:])
        for size in [s for s in sizes if s <= args.naive_max_mb]:
            proc, port = start_naive(workdir)
            try:
                asyncio.run(send(port, Audio(MB), "warmup", max(levels), args.deadline))
                audio = Audio(int(size * MB))
                for n in levels:
                    report(
                        f"naive get_json, {size:g} MB x{n}",
                        measure("naive", proc, port, audio, n, args),
                    )
            finally:
                stop(proc)
    print(f"gateway worst peak growth: {worst:.2f}x one body (target <= 0.50x)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

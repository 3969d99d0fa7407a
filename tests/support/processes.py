"""Gateway processes for tests that run roles apart: ``gateway serve`` on a free loopback
port, the supervisor's worker processes, pausing one of them, and each one's metric
counts. The waits are for other processes to get somewhere (they are not on the test's
clock), always bounded."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from prometheus_client.mmap_dict import MmapedDict

from tests.support.s3 import free_port


async def until(predicate: Callable[[], Awaitable[bool]], what: str, timeout: float = 60.0) -> None:
    """Wait for another process to get somewhere (it is not on our clock)."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class Server:
    """``gateway --config <config> serve --port <free> --workers N <args>``."""

    def __init__(
        self,
        config: Path,
        workers: int = 1,
        env: dict[str, str] | None = None,
        args: Sequence[str] = ("--no-worker",),
        port: int | None = None,  # chosen beforehand when the config names it (public_url)
    ) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "gateway.cli", "--config", str(config),
                "serve", "--port", str(self.port), "--workers", str(workers), *args,
            ],
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, to signal as a terminal would
        )  # fmt: skip
        # Read stderr as it comes (a full pipe would block the server): the lines are
        # kept for assertions, and each worker says "Running on" once it serves.
        self.stderr: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.decode(errors="replace"))

    def serving(self) -> int:
        """How many worker processes have started serving so far (replacements too)."""
        return sum("Running on" in line for line in self.stderr)

    async def started(self, serving: int = 1) -> None:
        """Until ``serving`` processes serve (all of them started: none is half-way
        through its startup, holding a database lock)."""

        async def answers() -> bool:
            if self.proc.poll() is not None:
                self._reader.join(5)
                raise AssertionError("".join(self.stderr))
            return self.serving() >= serving and await self.accepts()

        await until(answers, "the server to start")

    async def exited(self, timeout: float = 30) -> int:
        code = await asyncio.to_thread(self.proc.wait, timeout)
        await asyncio.to_thread(self._reader.join, 5)
        return code

    async def accepts(self) -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        writer.close()
        return True

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def worker_pids(server_pid: int) -> list[int]:
    """The supervisor's Hypercorn worker processes (not multiprocessing's helper)."""
    found = []
    for task in Path(f"/proc/{server_pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"spawn_main" in cmdline:
                found.append(int(child))
    return found


def received_by_pid(directory: Path) -> dict[int, float]:
    """Each worker's own count of received webhooks, read from its metrics file."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        total = 0.0
        for key, value, _ts, _pos in MmapedDict.read_all_values_from_file(str(path)):
            _metric, name, labels, _help = json.loads(key)
            if name == "gateway_webhook_requests_total" and labels["outcome"] == "received":
                total += value
        counts[int(path.stem.split("_")[1])] = total
    return counts


class Paused:
    """SIGSTOP one worker for a while: the other one must take every new connection."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def __enter__(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def __exit__(self, *exc: object) -> None:
        os.kill(self.pid, signal.SIGCONT)

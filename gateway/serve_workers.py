"""``gateway serve --workers N``: N Hypercorn worker processes on one port, supervised.

Hypercorn's own multi-process runner stops every worker as soon as the first one has
drained (it sends SIGTERM, which kills a worker still finishing a request) and stops the
whole server when one worker dies. This supervisor keeps Hypercorn's worker function and
changes what happens around it:

- A stop (SIGTERM or SIGINT to this process) closes this process's copy of the
  listening socket and sets the shared shutdown event: each worker stops accepting,
  finishes its in-flight requests within ``graceful_timeout``, runs the app's shutdown
  (the job worker finishes or releases its jobs), and exits. Workers ignore SIGTERM and
  SIGINT themselves, so a signal sent to the whole process group cannot cut a request
  short; one still running after the bound is killed.
- A worker that dies (a crash, the OOM killer, ``kill -9``) is replaced, its metrics
  files are marked dead, and the others keep serving. Workers that keep dying right
  after they start (a broken deployment) stop the server with exit status 1.
- With prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, a per-run
  directory this module creates unless the environment names one) a scrape answered by
  any worker sums the counters of all of them.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from gateway.counters import MULTIPROC_ENV

log = logging.getLogger("gateway.serve")

SUPERVISED_ENV = "GATEWAY_SUPERVISED_WORKER"
QUICK_DEATH_SECONDS = 5.0  # a worker that dies sooner than this after starting ...
MAX_QUICK_DEATHS = 5  # ... this many times in a row means the deployment is broken


@contextlib.contextmanager
def metrics_directory() -> Iterator[str]:
    """The directory the workers' metric files go to, set in the environment (the
    spawned workers inherit it). One given in ``PROMETHEUS_MULTIPROC_DIR`` is emptied of
    a previous run's files and kept; otherwise a temporary one is made and removed."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        yield given
        return
    made = tempfile.mkdtemp(prefix="gateway-metrics-")
    os.environ[MULTIPROC_ENV] = made
    try:
        yield made
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(made, ignore_errors=True)


def ignore_stop_signals_if_supervised() -> None:
    """In a worker process of this supervisor (called as the worker loads the app):
    SIGTERM and SIGINT are ignored, since the supervisor's shutdown event is what stops
    a worker, after its requests. (Dispositions set in the supervisor would not survive
    the exec of a spawned process.)"""
    if os.environ.get(SUPERVISED_ENV):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _mark_dead(pid: int | None) -> None:
    directory = os.environ.get(MULTIPROC_ENV)
    if pid is None or not directory:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, directory)


class Supervisor:
    def __init__(
        self,
        hc: Any,
        workers: int,
        worker_func: Callable[..., None],
        *,
        stop_timeout: float,
    ) -> None:
        self.hc, self.workers, self.worker_func = hc, workers, worker_func
        self.stop_timeout = stop_timeout
        self.ctx = multiprocessing.get_context("spawn")
        self.shutdown = self.ctx.Event()
        self.stopping = False
        self.sockets: Any = None
        self.processes: dict[int, tuple[BaseProcess, float]] = {}  # sentinel -> (p, started)

    def _start_one(self) -> None:
        process = self.ctx.Process(
            target=self.worker_func,
            kwargs={"config": self.hc, "sockets": self.sockets, "shutdown_event": self.shutdown},
        )
        process.start()
        self.processes[process.sentinel] = (process, time.monotonic())

    def _on_signal(self, signum: int, frame: Any) -> None:
        if not self.stopping:
            self.stopping = True
            self.shutdown.set()

    def run(self) -> int:
        self.sockets = self.hc.create_sockets()
        stops = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in stops}
        os.environ[SUPERVISED_ENV] = "1"  # read by each worker as it loads the app
        try:
            for _ in range(self.workers):
                self._start_one()
            status = self._watch()
            self._close_sockets()  # new connections are refused once the workers close too
            self._drain()
            return status
        finally:
            os.environ.pop(SUPERVISED_ENV, None)
            self._close_sockets()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _watch(self) -> int:
        quick_deaths = 0
        while not self.stopping:
            ready = wait(list(self.processes), timeout=0.5)
            for sentinel in ready:
                process, started = self.processes.pop(sentinel)  # type: ignore[arg-type]
                process.join()
                _mark_dead(process.pid)
                if self.stopping:
                    continue
                lived = time.monotonic() - started
                quick_deaths = quick_deaths + 1 if lived < QUICK_DEATH_SECONDS else 0
                log.warning(
                    "server worker %s exited (status %s) after %.0f s; starting another",
                    process.pid,
                    process.exitcode,
                    lived,
                )
                if quick_deaths >= MAX_QUICK_DEATHS:
                    log.error("server workers keep exiting at start; stopping")
                    self.stopping = True
                    self.shutdown.set()
                    return 1
                self._start_one()
        return 0

    def _drain(self) -> None:
        """Wait for every worker to finish its requests and shutdown; kill stragglers."""
        deadline = time.monotonic() + self.stop_timeout
        while self.processes:
            ready = wait(list(self.processes), timeout=max(0.0, deadline - time.monotonic()))
            if not ready:
                for process, _started in self.processes.values():
                    log.error("server worker %s did not stop in time; killed", process.pid)
                    process.kill()
                deadline = time.monotonic() + 5
                continue
            for sentinel in ready:
                process, _started = self.processes.pop(sentinel)  # type: ignore[arg-type]
                process.join()
                _mark_dead(process.pid)

    def _close_sockets(self) -> None:
        for sock in self.sockets.insecure_sockets if self.sockets else ():
            sock.close()


def supervise(hc: Any, workers: int, *, stop_timeout: float) -> int:
    """Run ``workers`` Hypercorn workers until SIGTERM/SIGINT; the exit status."""
    from hypercorn.asyncio.run import asyncio_worker, uvloop_worker

    worker = uvloop_worker if hc.worker_class == "uvloop" else asyncio_worker
    return Supervisor(hc, workers, worker, stop_timeout=stop_timeout).run()

"""The job worker: claims due jobs and runs their handlers.

The same class runs in-process (started by the core plugin when ``run_worker`` is on)
and as ``gateway worker``. It wakes at once when this process commits a job
(:func:`notify`); on PostgreSQL also when another process does (LISTEN/NOTIFY, see
:mod:`gateway.jobs.wakeups`); and it polls every ``job_poll_seconds`` in any case.
Tests drive :meth:`Worker.run_once` or :func:`run_pending_jobs` instead of the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from typing import Any

import aiohttp
from quart import Quart

from gateway.db import is_postgres
from gateway.db_errors import OutageLog
from gateway.events import JobContext, PermanentFailure, RetryLater
from gateway.jobs import queue, wakeups
from gateway.jobs.models import Job
from gateway.logs import redactor

log = logging.getLogger("gateway.jobs")

WAKE_KEY = "gateway_jobs_wake"
ANNOUNCER_KEY = "gateway_jobs_announcer"


def wake_event(app: Quart) -> asyncio.Event:
    event = app.extensions.get(WAKE_KEY)
    if event is None:
        event = app.extensions[WAKE_KEY] = asyncio.Event()
    return event


def notify(app: Quart) -> None:
    """Tell the workers that jobs were committed (call after the commit): this
    process's at once, other processes' through PostgreSQL ``NOTIFY``."""
    wake_event(app).set()
    announcer = announcer_of(app)
    if announcer is not None:
        announcer.poke()


def announcer_of(app: Quart) -> wakeups.Announcer | None:
    """This app's NOTIFY sender; ``None`` on SQLite (no other process can listen)."""
    if not is_postgres(app.extensions["gateway"].db.url):
        return None
    announcer = app.extensions.get(ANNOUNCER_KEY)
    if announcer is None:
        announcer = app.extensions[ANNOUNCER_KEY] = wakeups.Announcer()
    return announcer


def _error_text(exc: BaseException) -> str:
    # Exception text may carry a URL with a token in it: scrub known secrets.
    return redactor.scrub(f"{type(exc).__name__}: {exc}")


class Worker:
    """Runs jobs for one app. ``concurrency`` loops share one wake-up event."""

    def __init__(self, app: Quart, *, concurrency: int | None = None, name: str = "") -> None:
        gw = app.extensions["gateway"]
        self.app, self.gw = app, gw
        self.settings = queue.QueueSettings.from_config(gw.config)
        self.concurrency = concurrency or gw.config.gateway.job_concurrency
        self.poll = gw.config.gateway.job_poll_seconds
        self.grace = gw.config.gateway.job_shutdown_grace_seconds
        self.id = name or f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.rng = random.Random()  # noqa: S311 - backoff jitter, not a secret
        self._loops: list[asyncio.Task[None]] = []
        self._running: dict[int, tuple[Job, asyncio.Task[Any]]] = {}
        self._stopping = False
        self.listener: wakeups.Listener | None = None
        # Shared by the loops: an unreachable database is logged once, not per poll.
        self.outage = OutageLog(log, "job worker: database")

    @property
    def handlers(self) -> dict[str, Any]:
        return self.gw.registry("register_event_handlers")

    # -- one job -------------------------------------------------------------------

    async def run_once(self) -> bool:
        """Claim and run one due job. ``False`` when nothing was due."""
        now = self.gw.clock.now()
        job = await queue.claim(self.id, now, self.settings, self.gw.db.url)
        if job is None:
            return False
        if job.attempts > job.max_attempts:
            await queue.dead_letter_exhausted(job, now)
            log.warning("job %s (%s) dead: %s", job.id, job.handler, queue.LEASE_EXPIRED)
            return True
        task = asyncio.ensure_future(self._execute(job))
        self._running[job.id] = (job, task)
        try:
            await asyncio.shield(task)
        finally:
            if task.done():
                self._running.pop(job.id, None)
        return True

    def _http(self) -> aiohttp.ClientSession:
        # The worker starts after the shared session opens and stops before it closes;
        # run_pending_jobs opens one for an app that is not serving.
        if self.gw.http is None:
            raise RuntimeError("the job worker runs without the gateway's HTTP session")
        return self.gw.http

    async def _execute(self, job: Job) -> None:
        handler = self.handlers.get(job.handler)
        now = self.gw.clock.now
        if handler is None:
            await queue.fail(job, now(), f"no handler named {job.handler!r}", retry_in=None)
            log.error("job %s dead: handler %s is not registered", job.id, job.handler)
            return
        event = await job.event  # the row through the foreign key: jobs know no webhook module
        ctx = JobContext(
            event=event,
            job=job,
            app=self.app,
            config=self.gw.config,
            http=self._http(),
            clock=self.gw.clock,
        )
        heartbeat = asyncio.ensure_future(self._heartbeat(job))
        try:
            # An app context, so that what handlers call works as it does in a request
            # (get_access_token(team, provider), current_app).
            async with self.app.app_context():
                await handler.handler(ctx)
        except RetryLater as exc:
            self._wake_after(exc.seconds)
            if not exc.count_attempt:
                if await queue.defer(job, now(), exc.seconds):
                    log.debug(
                        "job %s (%s) deferred %.2fs: %s", job.id, job.handler, exc.seconds, exc
                    )
                return
            status = await queue.fail(job, now(), _error_text(exc), retry_in=exc.seconds)
            self._log_failure(job, status, _error_text(exc), "asked to retry later")
        except PermanentFailure as exc:
            status = await queue.fail(job, now(), _error_text(exc), retry_in=None)
            self._log_failure(job, status, _error_text(exc), "failed permanently")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a handler's bug must not kill the worker
            delay = queue.backoff_seconds(job.attempts, self.settings, self.rng)
            status = await queue.fail(job, now(), _error_text(exc), retry_in=delay)
            self._log_failure(job, status, _error_text(exc), "failed")
        else:
            if not await queue.succeed(job, now()):
                log.warning("job %s finished after its lease was taken over", job.id)
        finally:
            heartbeat.cancel()

    def _wake_after(self, seconds: float) -> None:
        """A job asked to run again sooner than the next poll (a rate limiter's slot
        opens in 0.3 s): wake the loops then, so a backlog drains at the provider's pace
        instead of the poll's."""
        if 0 <= seconds < self.poll and not self._stopping:
            asyncio.get_running_loop().call_later(seconds, wake_event(self.app).set)

    def _log_failure(self, job: Job, status: str, error: str, how: str) -> None:
        """One line per failed attempt; a dead job's line says why it died."""
        attempt = f"attempt {job.attempts}/{job.max_attempts}"
        if status == queue.DEAD:
            why = how if how == "failed permanently" else "no attempts left"
            log.warning(
                "job %s (%s) dead after %s (%s): %s",
                job.id,
                job.handler,
                attempt,
                why,
                error[:300],
            )
        elif status == queue.PENDING:
            log.info(
                "job %s (%s) %s %s, will retry: %s", job.id, job.handler, attempt, how, error[:300]
            )
        else:
            log.warning(
                "job %s (%s) %s %s after its lease was taken over",
                job.id,
                job.handler,
                attempt,
                how,
            )

    async def _heartbeat(self, job: Job) -> None:
        # Real-time pacing; the lease value itself comes from the gateway clock.
        interval = max(0.05, self.settings.lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            if not await queue.extend_lease(job, self.gw.clock.now(), self.settings):
                return

    # -- the loop ------------------------------------------------------------------

    def start(self) -> None:
        wake = wake_event(self.app)
        if is_postgres(self.gw.db.url):
            self.listener = wakeups.Listener(self.gw.db.url, wake.set)
            self.listener.start()
        self._loops = [asyncio.ensure_future(self._loop(wake)) for _ in range(self.concurrency)]
        log.info("job worker %s started (%s loops)", self.id, self.concurrency)

    async def _loop(self, wake: asyncio.Event) -> None:
        while not self._stopping:
            wake.clear()
            try:
                ran = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database down: keep going, slower and quietly
                self.outage.failed(exc)
                # Backing off (up to 30 s) spares the database a reconnect storm; a
                # wake-up cannot come sooner anyway, nothing commits while it is down.
                await asyncio.sleep(self.outage.delay(self.poll) * self.rng.uniform(0.8, 1.2))
                continue
            self.outage.ok()
            if ran:
                wake.set()  # more may be due: let the other loops look too
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self.poll)

    async def stop(self) -> None:
        """Stop claiming; let running jobs finish within the grace period, then give
        the rest back so another worker takes them at once."""
        self._stopping = True
        if self.listener is not None:
            await self.listener.stop()
        wake_event(self.app).set()
        tasks = [task for _job, task in self._running.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=self.grace)
        now = self.gw.clock.now()
        for job, task in list(self._running.values()):
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                if await queue.release(job, now):
                    log.info("job %s released at shutdown", job.id)
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            with contextlib.suppress(BaseException):
                await loop
        self._loops = []


async def run_pending_jobs(app: Quart, *, limit: int = 1000) -> int:
    """Run every due job now, one after another (tests, ``gateway jobs run``).
    Returns how many jobs were claimed."""
    from gateway.app import new_http_session

    worker = Worker(app, concurrency=1, name="inline")
    count = 0
    async with contextlib.AsyncExitStack() as stack:
        if worker.gw.http is None:  # an app that is not serving: a session for this run
            worker.gw.http = await stack.enter_async_context(new_http_session())
            stack.callback(setattr, worker.gw, "http", None)
        while count < limit and await worker.run_once():
            count += 1
    return count

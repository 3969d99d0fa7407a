"""The scale-out proof's parts (tests/test_scaleout_proof.py): the config every role
reads, the roles as OS processes, and the workload's senders (Twilio and ElevenLabs
deliveries, signed as they sign them, retried on another API process like behind a load
balancer; cron pingers)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import REDIS_URL
from tests.plugins.test_twilio_voice import (
    ACCOUNT,
    TOKEN,
    call_form,
    recording_form,
    status_form,
)
from tests.support import proof_plugin
from tests.support.fake_elevenlabs import SECRET as EL_SECRET
from tests.support.fake_elevenlabs import AudioDelivery, conversation, delivery
from tests.support.fake_twilio import FakeTwilioMedia, form_body, sid, signed
from tests.support.processes import Server, until
from tests.test_plugins import make_dist

ROOT = Path(__file__).resolve().parents[2]  # the repository
PUBLIC = "https://gateway.test"
CRON_SECRET = "proof-cron-secret-0123456789abcdef"
# The tests' Redis server, a database of its own there.
REDIS = REDIS_URL.rsplit("/", 1)[0] + "/13"
TEAMS = 3
CALLS = 24  # per phase half of them; each call is 7 deliveries, some sent twice
BIG_AUDIO = 6 * 1024 * 1024 + 17  # two parts of a multipart upload
MIB = 1024 * 1024


def write_config(
    tmp_path: Path, database_url: str, s3: dict[str, Any], provider: str, media: str
) -> Path:
    s3_table = "\n".join(f"{k} = {json.dumps(v)}" for k, v in s3.items())
    config = tmp_path / "plugins.toml"
    config.write_text(
        f"""
[gateway]
data_dir = "{tmp_path / "data"}"
database_url = "{database_url}"
public_url = "{PUBLIC}"
rate_limit_storage = "{REDIS}"
recording_storage = "s3"
session_secret = "proof-session-secret-0123456789abcdef"
encryption_keys = ["{"k" * 43}="]
cron_secret = "{CRON_SECRET}"
setup_token = "proof-setup-token-0123456789abcdef"
log_level = "INFO"
job_poll_seconds = 0.2
job_lease_seconds = 3
job_concurrency = 4
job_backoff_base_seconds = 0.2
job_backoff_cap_seconds = 1
job_shutdown_grace_seconds = 5
cron_lease_seconds = 3
cron_wait_seconds = 5

[gateway.s3]
{s3_table}

[plugins.twilio_voice]
account_sid = "{ACCOUNT}"
auth_token = "{TOKEN}"
api_base_url = "{media}"
stream_url = "wss://agent.test/stream"

[plugins.elevenlabs]
webhook_secret = "{EL_SECRET}"

[plugins.proof]
api_url = "{provider}"
log = "{tmp_path / "cron.log"}"
"""
    )
    return config


def install_plugin(tmp_path: Path) -> dict[str, str]:
    """The proof plugin as an installed distribution, found by the processes through
    the ``gateway.plugins`` entry points; the environment every role runs with."""
    site = tmp_path / "site"
    site.mkdir()
    make_dist(site, "proof-plugin", {}, {"proof": "tests.support.proof_plugin"})
    return {"PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}


class Role:
    """``gateway --config <config> worker|scheduler``, its stderr kept."""

    def __init__(self, config: Path, command: str, env: dict[str, str], ready: str) -> None:
        self.command, self.ready_line = command, ready
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "--config", str(config), command],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.stderr: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.decode(errors="replace"))

    async def started(self) -> None:
        async def ready() -> bool:
            if self.proc.poll() is not None:
                self._reader.join(5)
                raise AssertionError(f"{self.command} exited: {''.join(self.stderr)[-3000:]}")
            return any(self.ready_line in line for line in self.stderr)

        await until(ready, f"gateway {self.command} to start", timeout=90)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


async def terminate(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM, as a platform stops a container; the exit status once it drained."""
    proc.send_signal(signal.SIGTERM)
    return await asyncio.to_thread(proc.wait, 60)


# -- senders -----------------------------------------------------------------------------


@dataclass
class Delivery:
    """One webhook delivery: its source (``WebhookEvent.source``) and how to send it."""

    source: str
    key: str  # the provider's identity of it, the dedup key it is stored under
    path: str
    headers: dict[str, str]
    body: Callable[[], Any]  # a new body for each attempt (audio is a generator)


@dataclass
class Senders:
    """Twilio's and ElevenLabs's retries: what is not answered 2xx (a connection cut
    by a killed process, a 503) is sent again, to whichever API process is up."""

    apis: list[Server]
    http: aiohttp.ClientSession
    answered: dict[str, set[str]] = field(default_factory=dict)  # source -> keys
    sent: Counter[str] = field(default_factory=Counter)  # requests, by outcome
    in_flight: Counter[str] = field(default_factory=Counter)  # by API base URL
    turn: int = 0

    def base(self) -> str:
        # Ready ones only, as a load balancer's readiness check would route.
        live = [api for api in self.apis if api.proc.poll() is None and api.serving()]
        self.turn += 1
        return live[self.turn % len(live)].base

    async def send(self, d: Delivery) -> None:
        for attempt in range(12):
            base = self.base()
            self.in_flight[base] += 1
            try:
                async with self.http.post(
                    base + d.path, data=d.body(), headers=d.headers
                ) as response:
                    status, text = response.status, await response.text()
            except (aiohttp.ClientError, TimeoutError):
                status, text = 0, ""
            finally:
                self.in_flight[base] -= 1
            if 200 <= status < 300:
                self.sent["2xx"] += 1
                self.answered.setdefault(d.source, set()).add(d.key)
                return
            assert status == 0 or status >= 500, (d.path, status, text)  # never refused
            self.sent[f"retried after HTTP {status}" if status else "retried after a cut"] += 1
            await asyncio.sleep(0.1 * (attempt + 1))  # the sender's backoff
        raise AssertionError(f"{d.source} {d.key} never answered 2xx")


def twilio(route: str, form: dict[str, str], key: str) -> Delivery:
    body = form_body(form)
    head = signed(TOKEN, f"{PUBLIC}/api/webhooks/twilio/{route}", form)
    return Delivery(
        f"twilio_voice.{route}", key, f"/api/webhooks/twilio/{route}", head, lambda: body
    )


def elevenlabs_json(kind: str, data: dict[str, Any], key: str) -> Delivery:
    body, head = delivery(kind, data, int(time.time()))
    return Delivery("elevenlabs.webhook", key, "/api/webhooks/elevenlabs", head, lambda: body)


def elevenlabs_audio(audio: AudioDelivery) -> Delivery:
    head = {"Content-Type": "application/json", "ElevenLabs-Signature": audio.signature()}

    async def chunks() -> AsyncIterator[bytes]:  # chunked, never whole in memory
        for part in audio.body_chunks():
            yield part

    key = f"{audio.conversation_id}:post_call_audio"
    return Delivery("elevenlabs.webhook", key, "/api/webhooks/elevenlabs", head, chunks)


@dataclass
class PlannedCall:
    n: int
    team: Any
    number: str
    agent: str
    call_sid: str = field(default_factory=lambda: sid("CA"))
    recording_sid: str = field(default_factory=lambda: sid("RE"))
    audio_bytes: int = 20_000

    @property
    def conversation_id(self) -> str:
        return f"conv_proof_{self.n:03d}"

    def audio(self) -> AudioDelivery:
        return AudioDelivery(
            self.conversation_id,
            self.audio_bytes,
            int(time.time()),
            agent_id=self.agent,
            seed=self.n,
        )

    def recording(self) -> bytes:
        return hashlib.sha256(f"recording {self.n}".encode()).digest() * (700 + self.n)


async def run_call(senders: Senders, call: PlannedCall, media: FakeTwilioMedia) -> None:
    """A call as the providers report it, in the order they do; some deliveries twice
    (a provider's retry of a delivery it did not see answered)."""
    media.recordings[call.recording_sid] = call.recording()
    voice = call_form(call.call_sid, to=call.number)
    await senders.send(twilio("voice", voice, call.call_sid))
    for seq, status in enumerate(("in-progress", "completed")):
        extra = {"CallDuration": "47"} if status == "completed" else {}
        form = status_form(call.call_sid, status, seq, To=call.number, Called=call.number, **extra)
        await senders.send(twilio("status", form, f"{call.call_sid}:{status}:{seq}"))
    url = media.url_for(call.recording_sid)
    form = recording_form(call.call_sid, call.recording_sid, url)
    recording = twilio("recording", form, f"{call.recording_sid}:completed")
    start = int(time.time()) - 120
    data = conversation(
        call.conversation_id, start=start, agent_id=call.agent, call_sid=call.call_sid
    )
    key = f"{call.conversation_id}:post_call_transcription"
    transcript = elevenlabs_json("post_call_transcription", data, key)
    audio = elevenlabs_audio(call.audio())
    await asyncio.gather(senders.send(recording), senders.send(transcript), senders.send(audio))
    if call.n % 3 == 0:  # redelivered: answered 200 again, stored once
        await asyncio.gather(senders.send(recording), senders.send(transcript))


async def cut_upload(
    senders: Senders, api: Server, audio: AudioDelivery, halfway: asyncio.Event, go: asyncio.Event
) -> None:
    """An audio delivery to ``api`` that stops halfway until ``go`` (set once ``api`` is
    killed): it is never answered, and ElevenLabs sends it again."""
    chunks = list(audio.body_chunks())  # below one part: nothing reaches the bucket

    async def body() -> AsyncIterator[bytes]:
        for i, chunk in enumerate(chunks):
            if i == len(chunks) // 2:
                halfway.set()
                await go.wait()
            yield chunk

    head = {"Content-Type": "application/json", "ElevenLabs-Signature": audio.signature()}
    try:
        async with senders.http.post(
            f"{api.base}/api/webhooks/elevenlabs", data=body(), headers=head
        ) as response:
            raise AssertionError(f"answered {response.status} by a killed process")
    except (aiohttp.ClientError, TimeoutError):
        senders.sent["cut by the kill"] += 1
    await senders.send(elevenlabs_audio(audio))


async def ping(http: aiohttp.ClientSession, api: Server, answers: Counter[str]) -> None:
    head = {"Authorization": f"Bearer {CRON_SECRET}"}
    try:
        async with http.get(f"{api.base}/api/cron/{proof_plugin.TASK}", headers=head) as r:
            answers[(await r.json())["status"] if r.status < 500 else f"http {r.status}"] += 1
    except (aiohttp.ClientError, TimeoutError):
        answers["no answer (process down)"] += 1


async def pingers(
    http: aiohttp.ClientSession, apis: list[Server], stop: asyncio.Event, answers: Counter[str]
) -> None:
    """Two pingers (an external cron each), one per API process, pinging
    ``/api/cron/proof-tick`` at the same moment: the same window, as the scheduler's own
    ticker is also taking it."""
    while not stop.is_set():
        await asyncio.gather(ping(http, apis[0], answers), ping(http, apis[1], answers))
        await asyncio.sleep(0.25)  # the pingers' interval

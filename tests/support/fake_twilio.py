"""A real HTTP server on 127.0.0.1 standing in for Twilio's REST API media host, plus
helpers to sign webhook requests exactly as Twilio does (with the real ``twilio``
library).

Media URLs follow Twilio's shape:
``{base}/2010-04-01/Accounts/{AccountSid}/Recordings/{RecordingSid}`` (WAV), with
``.wav`` / ``.mp3`` variants. Every request needs HTTP Basic ``AccountSid:AuthToken``.
"""

from __future__ import annotations

import asyncio
import base64
import io
import secrets
import wave
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from twilio.request_validator import RequestValidator

from gateway.testing import serve


def sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def wav_bytes(seconds: float = 0.25, rate: int = 8000) -> bytes:
    """A real mono 16-bit PCM WAV file."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(int(rate * seconds) * 2))
    return buf.getvalue()


def signed(token: str, url: str, form: dict[str, str]) -> dict[str, str]:
    """Headers for a form POST signed like Twilio signs it."""
    signature = RequestValidator(token).compute_signature(url, form)
    return {
        "X-Twilio-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


def form_body(form: dict[str, str]) -> bytes:
    return urlencode(form).encode()


@dataclass
class Hit:
    path: str
    authorization: str | None


@dataclass
class FakeTwilioMedia:
    account_sid: str
    auth_token: str
    recordings: dict[str, bytes] = field(default_factory=dict)
    slow: set[str] = field(default_factory=set)  # never answered (until released)
    huge: dict[str, int] = field(default_factory=dict)  # sid -> bytes streamed, no length
    redirects: dict[str, str] = field(default_factory=dict)  # sid -> Location
    failures: dict[str, int] = field(default_factory=dict)  # sid -> status to answer
    hits: list[Hit] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # sids removed by DELETE
    release: asyncio.Event = field(default_factory=asyncio.Event)
    base_url: str = ""
    _runner: Any = None

    def url_for(self, recording_sid: str) -> str:
        return f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Recordings/{recording_sid}"

    def _authorized(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("Authorization") == f"Basic {expected}"

    async def _media(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(Hit(request.path, request.headers.get("Authorization")))
        if request.match_info["account"] != self.account_sid or not self._authorized(request):
            return web.json_response({"code": 20003, "status": 401}, status=401)
        name = request.match_info["name"]
        rec_sid, _, ext = name.partition(".")
        if rec_sid in self.failures:
            status = self.failures[rec_sid]
            headers = {"Retry-After": "7"} if status == 429 else None
            return web.json_response({"status": status}, status=status, headers=headers)
        if rec_sid in self.redirects:
            raise web.HTTPFound(self.redirects[rec_sid])
        if rec_sid in self.slow:
            await self.release.wait()
        if rec_sid in self.huge:
            response = web.StreamResponse(headers={"Content-Type": "audio/x-wav"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            sent, chunk = 0, bytes(64 * 1024)
            try:
                while sent < self.huge[rec_sid]:
                    await response.write(chunk)
                    sent += len(chunk)
            except (ConnectionResetError, RuntimeError):
                pass  # the client gave up, as it should
            return response
        if rec_sid not in self.recordings:
            return web.json_response(
                {"code": 20404, "message": "The requested resource was not found", "status": 404},
                status=404,
            )
        content_type = "audio/mpeg" if ext == "mp3" else "audio/x-wav"
        return web.Response(body=self.recordings[rec_sid], content_type=content_type)

    async def _delete(self, request: web.Request) -> web.Response:
        """Twilio's "Delete a Recording resource": ``DELETE .../Recordings/{Sid}.json``,
        204 with no body; 404 with Twilio's error body when there is no such
        recording; ``failures`` answer as configured (429 with Retry-After)."""
        self.hits.append(Hit(request.path, request.headers.get("Authorization")))
        if request.match_info["account"] != self.account_sid or not self._authorized(request):
            return web.json_response({"code": 20003, "status": 401}, status=401)
        rec_sid, _, ext = request.match_info["name"].partition(".")
        if rec_sid in self.failures:
            status = self.failures[rec_sid]
            headers = {"Retry-After": "7"} if status == 429 else None
            return web.json_response({"status": status}, status=status, headers=headers)
        if ext != "json" or rec_sid not in self.recordings:
            return web.json_response(
                {"code": 20404, "message": "The requested resource was not found", "status": 404},
                status=404,
            )
        del self.recordings[rec_sid]
        self.deleted.append(rec_sid)
        return web.Response(status=204)

    async def start(self) -> FakeTwilioMedia:
        app = web.Application()
        app.router.add_get("/2010-04-01/Accounts/{account}/Recordings/{name}", self._media)
        app.router.add_delete("/2010-04-01/Accounts/{account}/Recordings/{name}", self._delete)
        self._runner, port = await serve(app, handle_signals=False)
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class OtherHost:
    """Any server that is not Twilio: it records whether anyone came."""

    hits: list[Hit] = field(default_factory=list)
    base_url: str = ""
    _runner: Any = None

    async def _any(self, request: web.Request) -> web.Response:
        self.hits.append(Hit(request.path, request.headers.get("Authorization")))
        return web.Response(body=b"not a recording", content_type="audio/x-wav")

    async def start(self) -> OtherHost:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._any)
        self._runner, port = await serve(app, handle_signals=False)
        # "localhost" makes this a different origin from 127.0.0.1 (the media host).
        self.base_url = f"http://localhost:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

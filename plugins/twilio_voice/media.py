"""The download job: fetch a finished recording from Twilio into the recording store.

``RecordingUrl`` arrives in a webhook, so it is treated as untrusted: we only ever
connect to the configured API origin (scheme, host and port), follow redirects one hop
at a time and only to that origin (or an operator-listed media host, which never gets
our credentials), under a size limit and a deadline. The body is streamed to disk and
hashed on the way; it never sits in memory whole.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from gateway.calls import Recording, expiry
from gateway.events import JobContext, PermanentFailure, RetryLater
from gateway.identity import Team
from gateway.storage import recording_storage
from plugins.twilio_voice.settings import TwilioVoiceSettings
from plugins.twilio_voice.verify import Accounts

log = logging.getLogger("gateway.plugins.twilio_voice")

MAX_REDIRECTS = 5
CHUNK = 64 * 1024
_REDIRECTS = {301, 302, 303, 307, 308}
_EXTENSIONS = {"audio/mpeg": "mp3", "audio/mp3": "mp3"}


class Refused(Exception):
    """A URL we must not fetch."""


def origin(url: str) -> tuple[str, str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError for a bad port or a broken IPv6 literal
    except ValueError:
        raise Refused("not an http(s) URL") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise Refused("not an http(s) URL")
    port = port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, parts.hostname.lower(), port


class Downloader:
    def __init__(self, settings: TwilioVoiceSettings, accounts: Accounts) -> None:
        self.settings = settings
        self.accounts = accounts
        self.api_origin = origin(settings.api_base_url)
        self.redirect_origins = {origin(h) for h in settings.media_redirect_hosts}

    def media_url(self, source_url: str) -> str:
        path = urlsplit(source_url).path
        if self.settings.recording_format == "mp3" and "." not in path.rsplit("/", 1)[-1]:
            parts = urlsplit(source_url)
            return parts._replace(path=path + ".mp3").geturl()
        return source_url

    async def __call__(self, ctx: JobContext) -> None:
        sid = (ctx.event.payload or {}).get("RecordingSid")
        rec = await Recording.get_or_none(external_id=sid) if sid else None
        if rec is None or rec.status != "pending":
            return  # not ready yet, or already handled by an earlier attempt
        rec.attempts += 1
        try:
            await self._download(ctx, rec)
        except Refused as exc:
            await _finish(rec, status="refused", error=str(exc))
            raise PermanentFailure(f"recording {rec.external_id}: {exc}") from None
        except _Gone as exc:
            await _finish(rec, status="failed", error=str(exc))
            raise PermanentFailure(f"recording {rec.external_id}: {exc}") from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            await _finish(
                rec,
                status="pending",
                error="timeout" if isinstance(exc, TimeoutError) else "connection_error",
            )
            raise RuntimeError(f"recording {rec.external_id}: {type(exc).__name__}") from None

    async def _download(self, ctx: JobContext, rec: Recording) -> None:
        if not rec.source_url:
            raise _Gone("no_url")
        url = self.media_url(rec.source_url)
        if origin(url) != self.api_origin:
            raise Refused("host_not_allowed")
        auth = self.accounts.basic_auth(rec.account_id)
        if auth is None:
            raise _Gone("no_credentials")
        timeout = self.settings.recording_timeout_seconds
        async with asyncio.timeout(timeout):
            for _hop in range(MAX_REDIRECTS + 1):
                on_api = origin(url) == self.api_origin
                # Credentials only for Twilio's own host, never for a redirect target.
                basic = {"Authorization": _basic_auth(*auth)} if on_api else {}
                async with ctx.http.get(
                    url,
                    headers=basic,
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=timeout),
                ) as resp:
                    if resp.status in _REDIRECTS:
                        url = self._next_hop(url, resp.headers.get("Location"))
                        continue
                    await self._check_status(rec, resp)
                    await self._store(ctx, rec, resp)
                    return
        raise _Gone("too_many_redirects")

    def _next_hop(self, current: str, location: str | None) -> str:
        if not location:
            raise _Gone("redirect_without_location")
        target = urljoin(current, location)
        hop = origin(target)
        if hop != self.api_origin and hop not in self.redirect_origins:
            raise Refused("redirect_not_allowed")
        return target

    async def _check_status(self, rec: Recording, resp: aiohttp.ClientResponse) -> None:
        if resp.status == 200:
            length = resp.content_length
            if length is not None and length > self.settings.recording_max_bytes:
                raise _Gone("too_large")
            return
        if resp.status in {404, 410}:
            raise _Gone("not_found")
        if resp.status == 429 or resp.status >= 500:
            await _finish(rec, status="pending", error=f"http_{resp.status}")
            retry_after = resp.headers.get("Retry-After", "")
            if resp.status == 429 and retry_after.isdigit():
                raise RetryLater(float(retry_after), f"http_{resp.status}")
            raise RuntimeError(f"recording {rec.external_id}: http_{resp.status}")
        raise _Gone(f"http_{resp.status}")

    async def _store(self, ctx: JobContext, rec: Recording, resp: aiohttp.ClientResponse) -> None:
        content_type = (resp.content_type or "audio/x-wav").lower()
        ext = _EXTENSIONS.get(content_type, "wav")
        key = f"{rec.team_id or 'unassigned'}/{rec.external_id}.{ext}"
        writer = recording_storage(ctx.app).writer(key)
        try:
            async for chunk in resp.content.iter_chunked(CHUNK):
                if writer.size + len(chunk) > self.settings.recording_max_bytes:
                    raise _Gone("too_large")
                await writer.write(chunk)
            await writer.commit()
        except BaseException:
            await writer.abort()
            raise
        days = self.settings.default_retention_days
        if rec.team_id is not None:
            team = await Team.get_or_none(id=rec.team_id)
            if team is not None:
                days = team.recording_retention_days
        now = ctx.clock.now()
        await _finish(
            rec,
            status="stored",
            error=None,
            storage_key=key,
            size_bytes=writer.size,
            sha256=writer.hexdigest(),
            content_type=content_type,
            stored_at=now,
            expires_at=expiry(now, days),
        )
        log.info("stored recording %s (%d bytes)", rec.external_id, writer.size)


class _Gone(Exception):
    """Retrying cannot help: recorded on the row and dead-lettered."""


async def _finish(rec: Recording, **changes: Any) -> None:
    for name, value in changes.items():
        setattr(rec, name, value)
    await rec.save(update_fields=[*changes, "attempts", "updated_at"])


def _basic_auth(login: str, password: str) -> str:
    # RFC 7617 by hand: aiohttp 3.14 deprecates both BasicAuth and auth=, and its
    # replacement helper does not exist in the 3.10 we support.
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()

"""Deleting Twilio's copy of a recording once the gateway's copy expired.

The cron plugin's ``cleanup-recordings`` emits ``voice.recording.expired`` per recording
it deleted; this handler (registered only with ``delete_expired_recordings = true``)
sends Twilio's "Delete a Recording resource" request:
``DELETE {api_base_url}/2010-04-01/Accounts/{AccountSid}/Recordings/{Sid}.json``
(https://www.twilio.com/docs/voice/api/recording#delete-a-recording-resource), which
answers 204. A 404 means it is already gone: done. A 429 waits for its Retry-After, a
5xx or a network error is retried with backoff, 401/403 dead-letter the job (fix the
credentials, then ``gateway jobs retry``).
"""

from __future__ import annotations

import logging
import re

import aiohttp

from gateway.calls import VoiceRecordingExpired
from gateway.events import JobContext, PermanentFailure, RetryLater
from gateway.sync import retry_after_seconds
from plugins.twilio_voice.media import _basic_auth
from plugins.twilio_voice.settings import TwilioVoiceSettings
from plugins.twilio_voice.verify import Accounts

log = logging.getLogger("plugins.twilio_voice")

# Recordings made by Twilio; others (an agent's audio) are not Twilio's to delete.
_RECORDING_SID = re.compile(r"^RE[0-9a-fA-F]{32}$")


class DeleteExpiredRecording:
    def __init__(self, settings: TwilioVoiceSettings, accounts: Accounts) -> None:
        self.settings = settings
        self.accounts = accounts

    def url(self, account_sid: str, recording_sid: str) -> str:
        base = str(self.settings.api_base_url).rstrip("/")
        return f"{base}/2010-04-01/Accounts/{account_sid}/Recordings/{recording_sid}.json"

    async def __call__(self, ctx: JobContext) -> None:
        event = VoiceRecordingExpired.model_validate(ctx.event.payload)
        if not _RECORDING_SID.match(event.external_id):
            return
        auth = self.accounts.basic_auth(event.account_id)
        if auth is None:
            log.warning("twilio: no credentials for the account of recording %s", event.external_id)
            return
        url = self.url(auth[0], event.external_id)
        timeout = aiohttp.ClientTimeout(total=self.settings.rest_timeout_seconds)
        try:
            async with ctx.http.delete(
                url, headers={"Authorization": _basic_auth(*auth)}, timeout=timeout
            ) as resp:
                status, retry_after = resp.status, resp.headers.get("Retry-After", "")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RuntimeError(f"recording {event.external_id}: {type(exc).__name__}") from None
        if status in (200, 204, 404):
            return
        if status == 429:
            raise RetryLater(
                retry_after_seconds(retry_after, default=60.0), "http_429", count_attempt=False
            )
        if status in (401, 403):
            raise PermanentFailure(f"recording {event.external_id}: http_{status}")
        raise RuntimeError(f"recording {event.external_id}: http_{status}")

"""Posting a card through a Teams Workflows webhook (for tenants that forbid Graph).

The team's flow is the template "Post to a channel when a webhook request is received":
its trigger takes ``{"type": "message", "attachments": [{"contentType":
"application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": <card>}]}``
(https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using#send-adaptive-cards-using-an-incoming-webhook)
and answers ``202 Accepted`` once the run is queued (a Logic Apps request trigger without
a Response action: https://learn.microsoft.com/en-us/azure/connectors/connectors-native-reqres).

The URL is the credential (its ``sig`` parameter): it is a secret team setting, never
logged, never in an error text. The webhook has no read-back, so the plugin delivers
**at least once**: an attempt that sent the card and did not hear ``2xx`` (a timeout, a
crash before the commit) is sent again. Definite refusals (429, 4xx) are not retried
blind; see docs/plugins/microsoft_teams.md for why.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from gateway.events import JobContext, PermanentFailure, RetryLater
from gateway.sync import (
    DEFAULT_BUCKET,
    EffectHandle,
    ProviderUnavailable,
    RateLimit,
    limiter_of,
    retry_after_seconds,
)
from plugins.microsoft_teams.graph import ADAPTIVE
from plugins.microsoft_teams.settings import NAME, MicrosoftTeamsSettings

log = logging.getLogger("plugins.microsoft_teams")

TIMEOUT = aiohttp.ClientTimeout(total=15, connect=5)


def envelope(card: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [{"contentType": ADAPTIVE, "contentUrl": None, "content": card}],
    }


def allowed(url: str, op: MicrosoftTeamsSettings) -> bool:
    """The URL's scheme and host are ones the operator allows."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:  # e.g. a broken IPv6 literal
        return False
    if parts.scheme != "https" and not (parts.scheme == "http" and op.webhook_allow_http):
        return False
    return bool(host) and any(fnmatch.fnmatchcase(host, p.lower()) for p in op.webhook_hosts)


def _error_code(body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return f" {str(code)[:60]}" if code else ""


async def deliver(
    ctx: JobContext,
    op: MicrosoftTeamsSettings,
    url: str,
    card: dict[str, Any],
    effect: EffectHandle,
) -> None:
    if not allowed(url, op):
        reason = (
            "the team's Workflows webhook URL is not on an allowed host "
            "(plugins.microsoft_teams.webhook_hosts)"
        )
        await effect.fail(reason)
        raise PermanentFailure(reason)
    # One limit per webhook (its flow), keyed by a digest: the URL itself is a secret.
    key = f"{NAME}:workflows:{hashlib.sha256(url.encode()).hexdigest()[:16]}"
    limits = (RateLimit(op.rate_limit_requests, op.rate_limit_seconds),)
    wait = await limiter_of(ctx.app).acquire(key, limits, DEFAULT_BUCKET)
    if wait > 0:
        raise RetryLater(wait, "waiting for a Teams Workflows rate-limit slot", count_attempt=False)
    await effect.sending()
    try:
        # Not followed: a flow's Response action may answer 3xx with any Location, and
        # the allowed hosts are checked on this URL only.
        async with ctx.http.post(
            url, json=envelope(card), timeout=TIMEOUT, allow_redirects=False
        ) as resp:
            status, headers = resp.status, dict(resp.headers)
            try:
                body: Any = await resp.json(content_type=None)
            except ValueError:
                body = None
    except aiohttp.ClientConnectorError:
        await effect.unsend()  # never connected: nothing went out
        raise ProviderUnavailable("the Teams Workflows webhook is unreachable") from None
    except ValueError:  # a URL aiohttp cannot send to; its text would quote the URL
        reason = "the team's Workflows webhook URL is not a valid URL"
        await effect.fail(reason)
        raise PermanentFailure(reason) from None
    except (TimeoutError, aiohttp.ClientError) as exc:
        # It may have been accepted: at least once, the retry sends it again.
        raise ProviderUnavailable(
            f"the Teams Workflows webhook did not answer ({type(exc).__name__})"
        ) from None
    if 200 <= status < 300:
        run = headers.get("x-ms-workflow-run-id") or "accepted"
        await effect.created(run[:255])
        log.info("%s: card accepted by the Workflows webhook (run %s)", NAME, run)
        return
    await effect.unsend()  # an answer that is not 2xx: the flow did not take it
    if status == 429:
        seconds = retry_after_seconds(headers.get("Retry-After"))
        raise RetryLater(seconds, "the Teams Workflows webhook answered 429", count_attempt=False)
    if status >= 500:
        raise ProviderUnavailable(f"the Teams Workflows webhook answered HTTP {status}")
    reason = f"the Teams Workflows webhook refused the card: HTTP {status}{_error_code(body)}"
    await effect.fail(reason)
    raise PermanentFailure(reason)

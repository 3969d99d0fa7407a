"""Posting a card to a channel through Microsoft Graph, exactly once.

``POST {graph}/v1.0/teams/{team-id}/channels/{channel-id}/messages`` with the connected
user's delegated token (https://learn.microsoft.com/en-us/graph/api/channel-post-messages).
The card is an attachment (``application/vnd.microsoft.card.adaptive``, its JSON as a
string) referenced from the HTML body (https://learn.microsoft.com/en-us/graph/api/chatmessage-post).

Graph takes no client-chosen message id, so the ledger row is committed as ``sent``
before the POST and the attachment's id is the effect's marker. When an attempt died
after the POST and before recording the answer, the next one lists the channel's recent
messages (https://learn.microsoft.com/en-us/graph/api/channel-list-messages, newest
first, 50 a page) looking for that marker before posting again. Listing needs the
delegated ``ChannelMessage.Read.All``; a connection without it is posted to again (at
least once) and the ledger row remembers ``unverified``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from gateway.events import JobContext, PermanentFailure, RetryLater
from gateway.oauth import NotConnected, OAuthConnection, ReconnectRequired
from gateway.sync import EffectHandle, ProviderError, ProviderSession, ProviderThrottled, RateLimit
from plugins.microsoft_teams.settings import NAME, MicrosoftTeamsSettings, TeamsTeamSettings

log = logging.getLogger("plugins.microsoft_teams")

ADAPTIVE = "application/vnd.microsoft.card.adaptive"
NOT_CONNECTED = "not connected"
# Messages created this long before our POST are older than ours even with clock skew
# between the gateway and Microsoft: reading further back cannot find it.
SKEW = timedelta(minutes=5)


def channel_message(card: dict[str, Any], marker: str) -> dict[str, Any]:
    """The chatMessage body: the card as an attachment whose id is the marker."""
    return {
        "body": {"contentType": "html", "content": f'<attachment id="{marker}"></attachment>'},
        "attachments": [
            {
                "id": marker,
                "contentType": ADAPTIVE,
                "contentUrl": None,
                "content": json.dumps(card, separators=(",", ":"), ensure_ascii=False),
            }
        ],
    }


def carries(message: Any, marker: str) -> bool:
    if not isinstance(message, dict):
        return False
    for attachment in message.get("attachments") or []:
        if isinstance(attachment, dict) and attachment.get("id") == marker:
            return True
    body = message.get("body") or {}
    return isinstance(body, dict) and marker in str(body.get("content") or "")


def _created(message: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(message.get("createdDateTime")).replace("Z", "+00:00"))
    except ValueError:
        return None


def graph_refusal(method: str, what: str, exc: ProviderError) -> str:
    """Graph's ``{"error": {"code", "message"}}`` as one line for the job list."""
    error = exc.body.get("error") if isinstance(exc.body, dict) else None
    code = message = ""
    if isinstance(error, dict):
        code = str(error.get("code") or "")[:60]
        message = str(error.get("message") or "")[:200]
    detail = f" {code}" if code else ""
    detail += f": {message}" if message else ""
    return f"Microsoft Graph refused {method} {what}: HTTP {exc.status}{detail}"


def reconnect_reason(connection: OAuthConnection | None = None) -> str:
    why = f" ({connection.last_error})" if connection is not None and connection.last_error else ""
    return f"Microsoft Teams needs to be connected again by a team admin{why}"


def session_for(
    ctx: JobContext, op: MicrosoftTeamsSettings, team_id: int, connection: OAuthConnection
) -> ProviderSession:
    """A session rate-limited per Microsoft tenant (two teams on one tenant share it)."""
    account = dict(connection.account_data or {})
    who = account.get("tenant_id") or connection.account_id or f"team{team_id}"
    return ProviderSession(
        ctx.app,
        team_id,
        NAME,
        base_url=f"{op.graph_base_url}/v1.0",
        limits=(RateLimit(op.rate_limit_requests, op.rate_limit_seconds),),
        limit_key=f"{NAME}:{who}",
    )


async def find_posted(
    api: ProviderSession, op: MicrosoftTeamsSettings, path: str, effect: EffectHandle
) -> dict[str, Any] | None:
    """The channel message carrying ``effect.marker``, among those posted since the
    earlier attempt sent its request (at most ``reconcile_pages`` pages of 50)."""
    sent_at = effect.sent_at
    if sent_at is not None and sent_at.tzinfo is None:
        sent_at = sent_at.replace(tzinfo=UTC)
    cutoff = sent_at - SKEW if sent_at is not None else None
    params: dict[str, str] | None
    url, params = path, {"$top": "50"}
    for _ in range(op.reconcile_pages):
        try:
            page = (await api.request("GET", url, params=params)).body or {}
        except ProviderError as exc:
            if exc.status != 403:
                raise
            # Listing needs ChannelMessage.Read.All (admin consent). Without it nobody can
            # tell, and a card posted twice beats one lost: at least once, documented.
            log.warning(
                "%s: cannot list channel messages (%s); posting the card again",
                NAME,
                graph_refusal("GET", "the channel's messages", exc),
            )
            await effect.remember(unverified=True)
            return None
        all_older = True
        for message in page.get("value") or []:
            if carries(message, effect.marker):
                return dict(message)
            created = _created(message)
            if cutoff is None or created is None or created.tzinfo is None or created >= cutoff:
                all_older = False
        link = page.get("@odata.nextLink")
        # The next page's link is absolute: follow it only on Graph, the token goes with it.
        if all_older or not isinstance(link, str) or not link.startswith(op.graph_base_url + "/"):
            return None
        url, params = link, None
    return None


async def deliver(
    ctx: JobContext,
    op: MicrosoftTeamsSettings,
    settings: TeamsTeamSettings,
    team_id: int,
    card: dict[str, Any],
    effect: EffectHandle,
) -> None:
    connection = await OAuthConnection.get_or_none(team_id=team_id, provider=NAME)
    if connection is None:
        await effect.skip(NOT_CONNECTED)
        return
    if connection.status == "needs_reconnect":
        reason = reconnect_reason(connection)
        await effect.fail(reason)
        raise PermanentFailure(reason)
    api = session_for(ctx, op, team_id, connection)
    team = quote(settings.team_id or "", safe="")
    channel = quote(settings.channel_id or "", safe=":@.")
    path = f"/teams/{team}/channels/{channel}/messages"
    try:
        if effect.sent:
            wait = op.reconcile_lag_seconds
            if effect.sent_at is not None:
                wait -= (ctx.clock.now() - effect.sent_at).total_seconds()
            if wait > 0:  # a message just posted may not be listed yet
                raise RetryLater(wait, "waiting for Teams to list the message", count_attempt=False)
            found = await find_posted(api, op, path, effect)
            if found is not None:
                log.info("%s: card found by its marker as message %s", NAME, found.get("id"))
                await effect.created(str(found.get("id")), found.get("webUrl"))
                return
        await api.ready()  # a full limiter defers before anything is marked sent
        message = channel_message(card, effect.marker)
        try:
            made = (await effect.send(api, lambda: api.request("POST", path, json=message))).body
        except ProviderThrottled:
            # A 429 created nothing, and listing the channel needs a permission the team
            # may not have granted: post again rather than search.
            await effect.unsend()
            raise
        made = made if isinstance(made, dict) else {}
        await effect.created(str(made.get("id") or "unknown"), made.get("webUrl"))
        log.info("%s: posted a card as message %s", NAME, made.get("id"))
    except NotConnected:
        await effect.skip(NOT_CONNECTED)  # disconnected while the job ran
    except ReconnectRequired:  # the refresh was refused while this job ran
        fresh = await OAuthConnection.get_or_none(team_id=team_id, provider=NAME)
        reason = reconnect_reason(fresh)
        await effect.fail(reason)
        raise PermanentFailure(reason) from None
    except ProviderError as exc:
        reason = graph_refusal("POST", "the channel message", exc)
        await effect.fail(reason)
        raise PermanentFailure(reason) from None
    except PermanentFailure as exc:
        await effect.fail(str(exc))
        raise

"""Graph's channel messages on the loopback Microsoft fake (mixed into
:class:`tests.support.fake_microsoft.FakeMicrosoft`), as Microsoft documents them:

- ``POST /v1.0/teams/{team-id}/channels/{channel-id}/messages`` -> ``201`` chatMessage
  (https://learn.microsoft.com/en-us/graph/api/channel-post-messages); delegated scope
  ``ChannelMessage.Send``. Card attachments must be referenced from the HTML body by
  ``<attachment id="...">`` and carry the card JSON as a string
  (https://learn.microsoft.com/en-us/graph/api/chatmessage-post).
- ``GET`` of the same path -> ``{"value": [...], "@odata.nextLink"}``, newest first,
  ``$top`` 20 by default and at most 50 (https://learn.microsoft.com/en-us/graph/api/channel-list-messages);
  delegated scope ``ChannelMessage.Read.All``.
- Errors are Graph's ``{"error": {"code", "message", "innerError"}}``
  (https://learn.microsoft.com/en-us/graph/errors): 401 ``InvalidAuthenticationToken``,
  403 ``Forbidden`` (missing scope), 404 ``NotFound``, 400 ``BadRequest``, 429
  ``TooManyRequests`` with ``Retry-After`` (https://learn.microsoft.com/en-us/graph/throttling).

Controls: ``fail_next_graph(status, code, headers)`` answers the next channel-messages
request; ``fail_after_post`` stores the next message and answers 504; ``hold_after_post``
(an ``asyncio.Event``) stores and waits for it before answering (``posted`` is set at
each store). ``graph_requests`` records every request (method, path, query, JSON,
bearer).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

TEAM_GROUP_ID = "fbe2bf47-16c8-47cf-b4a5-4b9b187c508b"
CHANNEL_ID = "19:4a95f7d8db4c4e7fae857bcebe0623e6@thread.tacv2"
SEND_SCOPES = {"ChannelMessage.Send", "Group.ReadWrite.All"}
READ_SCOPES = {"ChannelMessage.Read.All", "Group.Read.All", "Group.ReadWrite.All"}
ADAPTIVE = "application/vnd.microsoft.card.adaptive"


def graph_error(status: int, code: str, message: str, headers: Any = None) -> web.Response:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": now,
                "request-id": str(uuid.uuid4()),
                "client-request-id": str(uuid.uuid4()),
            },
        }
    }
    return web.json_response(body, status=status, headers=headers)


MESSAGES = {
    400: ("BadRequest", "Invalid request body."),
    403: ("Forbidden", "Forbidden"),
    429: ("TooManyRequests", "Too many requests."),
    500: ("InternalServerError", "An internal server error occurred."),
    502: ("BadGateway", "Bad gateway."),
    503: ("ServiceUnavailable", "Service is unavailable."),
    504: ("GatewayTimeout", "The operation timed out."),
}


class TeamsChannelsApi:
    """Mixin: channels and their messages. Needs ``self.access`` (live tokens ->
    grant with ``.scope``) and ``self.url``."""

    access: dict[str, Any]
    url: str

    def init_channels(self) -> None:
        self.channels: dict[tuple[str, str], list[dict[str, Any]]] = {
            (TEAM_GROUP_ID, CHANNEL_ID): []
        }
        self.graph_requests: list[dict[str, Any]] = []
        self.canned_graph: list[tuple[int, str, dict[str, str]]] = []
        self.fail_after_post = False
        self.hold_after_post: asyncio.Event | None = None
        self.posted = asyncio.Event()
        self._message_ids = itertools.count(1_616_990_032_035)

    def add_channel_routes(self, app: web.Application) -> None:
        path = "/v1.0/teams/{team}/channels/{channel}/messages"
        app.router.add_post(path, self.post_message)
        app.router.add_get(path, self.list_messages)

    # --- test controls --------------------------------------------------------------

    def fail_next_graph(self, status: int, code: str | None = None, headers: Any = None) -> None:
        self.canned_graph.append((status, code or MESSAGES[status][0], dict(headers or {})))

    def messages(self, team: str = TEAM_GROUP_ID, channel: str = CHANNEL_ID) -> list[dict]:
        return self.channels[(team, channel)]

    def add_chatter(self, count: int, team: str = TEAM_GROUP_ID, channel: str = CHANNEL_ID) -> None:
        """People talking in the channel: ``count`` plain messages."""
        for n in range(count):
            self._store(team, channel, {"body": {"contentType": "text", "content": f"hi {n}"}})

    def posts(self, method: str = "POST") -> list[dict[str, Any]]:
        return [r for r in self.graph_requests if r["method"] == method]

    # --- the gate -----------------------------------------------------------------------

    async def _gate(self, request: web.Request, needs: set[str]) -> web.Response | None:
        body = None
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                body = "<not json>"
        header = request.headers.get("Authorization", "")
        bearer = header[7:] if header.startswith("Bearer ") else None
        self.graph_requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "json": body,
                "bearer": bearer,
            }
        )
        grant = self.access.get(bearer or "")
        if grant is None:
            return graph_error(
                401,
                "InvalidAuthenticationToken",
                "Access token has expired or is not yet valid.",
            )
        if self.canned_graph:
            status, code, headers = self.canned_graph.pop(0)
            return graph_error(status, code, MESSAGES.get(status, (code, code))[1], headers)
        if not needs & set(grant.scope.split()):
            return graph_error(
                403,
                "Forbidden",
                "Missing scope permissions on the request. API requires one of "
                f"'{', '.join(sorted(needs))}'. Scopes on the request '{grant.scope}'",
            )
        key = (request.match_info["team"], request.match_info["channel"])
        if key not in self.channels:
            return graph_error(404, "NotFound", "No team found with Group Id or channel.")
        return None

    # --- handlers -------------------------------------------------------------------------

    def _store(self, team: str, channel: str, body: dict[str, Any]) -> dict[str, Any]:
        mid = str(next(self._message_ids))
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        message = {
            "id": mid,
            "replyToId": None,
            "etag": mid,
            "messageType": "message",
            "createdDateTime": now,
            "lastModifiedDateTime": now,
            "subject": body.get("subject"),
            "importance": "normal",
            "webUrl": f"https://teams.microsoft.com/l/message/{channel}/{mid}?groupId={team}",
            "from": {"user": {"id": "87d349ed", "displayName": "Ada Rep"}},
            "body": {
                "contentType": body["body"].get("contentType", "text"),
                "content": body["body"]["content"],
            },
            "channelIdentity": {"teamId": team, "channelId": channel},
            "attachments": list(body.get("attachments") or []),
            "mentions": [],
            "reactions": [],
        }
        self.channels[(team, channel)].insert(0, message)  # newest first
        return message

    @staticmethod
    def _invalid(body: Any) -> str | None:
        if not isinstance(body, dict) or not isinstance(body.get("body"), dict):
            return "Missing body."
        content = body["body"].get("content")
        if not isinstance(content, str) or not content:
            return "Message body content is required."
        referenced = set(re.findall(r'<attachment id="([^"]+)"></attachment>', content))
        attachments = body.get("attachments") or []
        if {a.get("id") for a in attachments} != referenced:
            return "Attachment ids do not match the attachments referenced in the body."
        if referenced and body["body"].get("contentType") != "html":
            return "Attachments must be referenced from an html body."
        for attachment in attachments:
            if attachment.get("contentType") == ADAPTIVE:
                try:
                    card = json.loads(attachment.get("content"))
                except (TypeError, ValueError):
                    return "Attachment content must be a JSON string."
                if card.get("type") != "AdaptiveCard" or not card.get("body"):
                    return "Invalid adaptive card."
        return None

    async def post_message(self, request: web.Request) -> web.Response:
        refused = await self._gate(request, SEND_SCOPES)
        if refused is not None:
            return refused
        body = self.graph_requests[-1]["json"]
        problem = self._invalid(body)
        if problem is not None:
            return graph_error(400, "BadRequest", problem)
        message = self._store(request.match_info["team"], request.match_info["channel"], body)
        self.posted.set()
        if self.hold_after_post is not None:
            await self.hold_after_post.wait()
        if self.fail_after_post:
            self.fail_after_post = False
            return graph_error(504, "GatewayTimeout", "The operation timed out.")
        return web.json_response(
            {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#messages/$entity",
                **message,
            },
            status=201,
        )

    async def list_messages(self, request: web.Request) -> web.Response:
        refused = await self._gate(request, READ_SCOPES)
        if refused is not None:
            return refused
        try:
            top = int(request.query.get("$top", "20"))
            skip = int(request.query.get("$skiptoken", "0"))
        except ValueError:
            return graph_error(400, "BadRequest", "Invalid query.")
        if not 1 <= top <= 50:
            return graph_error(400, "BadRequest", "The page size must be between 1 and 50.")
        team, channel = request.match_info["team"], request.match_info["channel"]
        everything = self.channels[(team, channel)]
        page: dict[str, Any] = {"value": everything[skip : skip + top]}
        if skip + top < len(everything):
            page["@odata.nextLink"] = (
                f"{self.url}/v1.0/teams/{team}/channels/{channel}/messages"
                f"?$top={top}&$skiptoken={skip + top}"
            )
        return web.json_response(page)

"""Integrations: each provider's state and the Connect / Reconnect / Disconnect buttons.

Connect is a link to the API's own ``GET /api/integrations/<provider>/connect`` (it
binds this browser and redirects to the provider), with ``return_to`` bringing the
visitor back here, where the outcome in the query string is shown. A link rather than a
form: the page's ``form-action 'self'`` would stop a form's redirect to the provider."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from quart import request

from plugins.console import api
from plugins.console.blueprint import bp
from plugins.console.views import back, render, signed_in, visitor

PAGE = "/console/integrations"
# The API's callback error codes (gateway.oauth.flow), in words.
OUTCOMES = {
    "PROVIDER_ERROR": "the provider refused or the authorization was cancelled",
    "STATE_EXPIRED": "the authorization took too long; start again",
    "MISSING_CODE": "the provider sent no authorization code",
    "TOKEN_EXCHANGE_FAILED": "the provider did not hand over the tokens; try again",
    "IDENTITY_FAILED": "the connected account could not be identified; try again",
}


def state_of(entry: dict[str, Any]) -> tuple[str, str]:
    """(css class, words) for one status entry of ``/api/integrations/status``."""
    if not entry.get("configured"):
        return "off", "not configured"
    status = entry.get("status")
    if status == "not_connected":
        return "off", "not connected"
    if status == "connected":
        account = entry.get("account") or {}
        return "ok", f"connected as {account.get('label') or account.get('id') or 'unknown'}"
    reason = entry.get("last_error") or status or "unknown"
    return "bad", f"needs reconnect: {reason}"


def connect_url(provider: str, team_id: int) -> str:
    query = urlencode({"team_id": team_id, "return_to": PAGE})
    return f"/api/integrations/{provider}/connect?{query}"


@bp.get("/integrations")
@signed_in
async def integrations() -> Any:
    me = visitor()
    if me.team is None or not me.is_admin:
        return await render("integrations.html", entries=[], allowed=False)
    body = await api.get("/api/integrations/status", team_id=me.team["id"])
    entries = []
    for entry in body["integrations"]:
        css, words = state_of(entry)
        entries.append(
            {
                **entry,
                "css": css,
                "words": words,
                "connect_url": connect_url(entry["provider"], me.team["id"]),
            }
        )
    # Words from the query string only when they are ours (a provider listed here, a
    # known error code): a crafted link must not make the page say its own text.
    wanted = request.args.get("integration")
    provider = next((e["provider"] for e in entries if e["provider"] == wanted), None)
    outcome = None
    if provider:
        error = request.args.get("error")
        if error:
            words = OUTCOMES.get(error, "the authorization failed")
            outcome = ("bad", f"{provider}: not connected: {words}")
        elif request.args.get("status") == "connected":
            outcome = ("ok", f"{provider}: connected")
    return await render("integrations.html", entries=entries, allowed=True, outcome=outcome)


@bp.post("/integrations/<provider>/disconnect")
@signed_in
async def disconnect(provider: str) -> Any:
    me = visitor()
    if me.team is None:
        return back(PAGE)
    answer = await api.call(
        "POST", f"/api/integrations/{provider}/disconnect", query={"team_id": me.team["id"]}
    )
    if not answer.ok:
        raise api.ApiFailed(answer)
    return back(PAGE, notice="disconnected")

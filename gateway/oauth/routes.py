"""``/api/integrations/...``: connect, callback, disconnect, status."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, g, jsonify, redirect, request

from gateway import inputs, ratelimit
from gateway.auth import current_principal, team_role_required
from gateway.errors import GatewayError
from gateway.oauth import common, flow, revoke

bp = Blueprint("oauth", __name__)

LIMIT = "120/minute"  # per user, shared by connect, disconnect and status
MAX_ARG = 2000  # the longest stored one, return_to


async def _limit() -> None:
    await ratelimit.hit(
        common.gateway_of_app(), "integrations", f"user:{g.principal.user_id}", LIMIT
    )


async def _args() -> dict[str, str]:
    """Query args, plus a JSON body's string fields on POST (the body wins). They are
    kept with the state (options, return path), so each must fit a stored text."""
    args = dict(request.args)
    if request.method == "POST":
        body = await inputs.json_body(optional=True)
        args.update({k: v for k, v in body.items() if isinstance(v, str)})
    for name, value in args.items():
        inputs.check_text(value, name, MAX_ARG)
    return args


@bp.route("/api/integrations/<provider>/connect", methods=["GET", "POST"])
@team_role_required("owner", "admin")
async def connect(provider: str) -> Any:
    await _limit()
    gw = common.gateway_of()
    prov = common.provider_named(gw, provider)
    args = await _args()
    url = await flow.start(gw, prov, g.team, g.principal.user_id, args.get("return_to"), args)
    if request.method == "GET":
        return redirect(url, 302)
    return jsonify({"authorization_url": url})


@bp.get("/api/integrations/<provider>/callback")
async def callback(provider: str) -> Any:
    """Authenticated by the state (bound to team and user), not by a header: the browser
    arrives here from the provider. A principal, when present, must be the state's user."""
    gw = common.gateway_of()
    prov = common.provider_named(gw, provider)
    try:
        principal = await current_principal()
    except GatewayError:
        principal = None
    try:
        done = await flow.finish(gw, prov, request.args, principal.user_id if principal else None)
    except flow.CallbackError as exc:
        if exc.return_to:
            return redirect(
                flow.with_query(exc.return_to, {"integration": provider, "error": exc.code}), 302
            )
        raise
    if done.return_to:
        params = {"integration": provider, "status": "connected"}
        return redirect(flow.with_query(done.return_to, params), 302)
    row = done.connection
    await row.fetch_related("connected_by")
    return jsonify(revoke.connection_json(prov, row))


@bp.post("/api/integrations/<provider>/disconnect")
@team_role_required("owner", "admin")
async def disconnect(provider: str) -> Any:
    await _limit()
    gw = common.gateway_of()
    prov = common.provider_named(gw, provider)
    return jsonify(await revoke.disconnect(gw, prov, g.team.id))


@bp.get("/api/integrations/status")
@team_role_required("owner", "admin")
async def status() -> Response:
    await _limit()
    return jsonify(await revoke.status(common.gateway_of(), g.team.id))

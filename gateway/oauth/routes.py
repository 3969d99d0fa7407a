"""``/api/integrations/...``: connect, continue, callback, disconnect, status."""

from __future__ import annotations

from typing import Any, TypeVar

from quart import Blueprint, Response, g, jsonify, redirect, request
from werkzeug.sansio.response import Response as BaseResponse

from gateway import inputs, ratelimit
from gateway.auth import current_principal, require_principal, team_role_required
from gateway.contract import PUBLIC, SIGNED_IN, Redirect, TeamHeader, api
from gateway.errors import GatewayError
from gateway.oauth import binding, common, flow, revoke
from gateway.oauth import schemas as s

# Quart's redirect() is typed as werkzeug's response; both share the cookie methods.
R = TypeVar("R", bound=BaseResponse)

bp = Blueprint("oauth", __name__)

LIMIT = "120/minute"  # per user, shared by connect, disconnect and status
MAX_ARG = 2000  # the longest stored one, return_to


async def _limit(user_id: int | None = None) -> None:
    user = user_id if user_id is not None else g.principal.user_id
    await ratelimit.hit(common.gateway_of_app(), "integrations", f"user:{user}", LIMIT)


def _bound(gw: Any, provider: str, started: flow.Started, response: R) -> R:
    """``response`` carrying the cookie that binds this browser to ``started``."""
    max_age = int(flow.STATE_TTL.total_seconds())
    binding.attach(gw, response, provider, started.nonce, max_age)
    return response


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
@api(
    s.ConnectStarted,
    responses={302: Redirect},
    auth=SIGNED_IN,
    query=s.ConnectQuery,
    headers=TeamHeader,
    request=s.ConnectIn,
    optional_body=True,
    errors=(404, 429),
)
@team_role_required("owner", "admin")
async def connect(provider: str) -> Any:
    await _limit()
    gw = common.gateway_of()
    prov = common.provider_named(gw, provider)
    args = await _args()
    started = await flow.start(gw, prov, g.team, g.principal.user_id, args.get("return_to"), args)
    if request.method == "GET":
        return _bound(gw, provider, started, redirect(started.authorization_url, 302))
    # The answer's cookie binds the browser that made this request (a dashboard). A
    # script has no browser: its admin opens continue_url in theirs instead.
    continue_url = flow.with_query(
        f"{common.public_origin(gw)}/api/integrations/{provider}/continue",
        {"state": started.state},
    )
    body = {"authorization_url": started.authorization_url, "continue_url": continue_url}
    return _bound(gw, provider, started, jsonify(body))


@bp.get("/api/integrations/<provider>/continue")
@api(Redirect, status=302, auth=SIGNED_IN, query=s.ContinueQuery, errors=(404, 429))
async def continue_in_browser(provider: str) -> Any:
    """Open in a browser signed in to the gateway as the user who started the connect:
    binds that browser (one time) and redirects to the provider."""
    gw = common.gateway_of()
    prov = common.provider_named(gw, provider)
    principal = await require_principal()
    await _limit(principal.user_id)
    started = await flow.restart(gw, prov, request.args.get("state"), principal.user_id)
    return _bound(gw, provider, started, redirect(started.authorization_url, 302))


@bp.get("/api/integrations/<provider>/callback")
@api(
    s.ConnectionOut,
    responses={302: Redirect},
    auth=PUBLIC,
    query=s.CallbackQuery,
    errors=(403, 404, (400, "OAUTH_CALLBACK_FAILED"), 502),
)
async def callback(provider: str) -> Any:
    """Authenticated by the state (bound to team, user and the starting browser's
    cookie), not by a header: the browser arrives here from the provider. A principal,
    when present, must be the state's user."""
    gw = common.gateway_of()
    prov = common.provider_named(gw, provider)
    try:
        principal = await current_principal()
    except GatewayError:
        principal = None
    nonce = binding.presented(gw, request, provider)
    try:
        done = await flow.finish(
            gw, prov, request.args, principal.user_id if principal else None, nonce
        )
    except flow.CallbackError as exc:
        if exc.return_to:
            target = flow.with_query(exc.return_to, {"integration": provider, "error": exc.code})
            return _cleared(gw, provider, redirect(target, 302))
        raise
    if done.return_to:
        params = {"integration": provider, "status": "connected"}
        return _cleared(gw, provider, redirect(flow.with_query(done.return_to, params), 302))
    row = done.connection
    await row.fetch_related("connected_by")
    return _cleared(gw, provider, jsonify(revoke.connection_json(prov, row)))


def _cleared(gw: Any, provider: str, response: R) -> R:
    """The flow is over (its state used up): the browser's cookie has no more use."""
    binding.clear(gw, response, provider)
    return response


@bp.post("/api/integrations/<provider>/disconnect")
@api(s.Disconnected, auth=SIGNED_IN, query=s.TeamQuery, headers=TeamHeader, errors=(404, 429))
@team_role_required("owner", "admin")
async def disconnect(provider: str) -> Any:
    await _limit()
    gw = common.gateway_of()
    prov = common.provider_named(gw, provider)
    return jsonify(await revoke.disconnect(gw, prov, g.team.id))


@bp.get("/api/integrations/status")
@api(s.StatusOut, auth=SIGNED_IN, query=s.TeamQuery, headers=TeamHeader, errors=(404, 429))
@team_role_required("owner", "admin")
async def status() -> Response:
    await _limit()
    return jsonify(await revoke.status(common.gateway_of(), g.team.id))

"""What every console page shares: who is signed in (from ``/api/auth/me``), which of
their teams the page is about, rendering with the CSRF token, and error pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlencode

from quart import Response, g, redirect, render_template, request

from gateway.errors import GatewayError, NotFound
from plugins.console import api, csrf
from plugins.console.blueprint import bp

TEAM_COOKIE = "console_team"
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

# Outcomes a redirect may announce (``?notice=<key>``): fixed texts, so a link cannot
# make the page say anything else.
NOTICES = {
    "signed_out": "You are signed out.",
    "disconnected": "Disconnected.",
    "retried": "The job is queued again.",
    "replayed": "The event is replayed: its handlers run again.",
    "saved": "Settings saved.",
    "unchanged": "Nothing changed.",
    "invited": "Invitation sent.",
    "invitation_revoked": "Invitation revoked.",
    "token_revoked": "Token revoked.",
    "number_added": "Phone number added.",
    "number_removed": "Phone number removed.",
    "team_switched": "Team switched.",
    "password_set": "Welcome! Your password is set.",
}


@dataclass
class Visitor:
    user: dict[str, Any]
    teams: list[dict[str, Any]]
    team: dict[str, Any] | None

    @property
    def is_super_admin(self) -> bool:
        return bool(self.user.get("is_super_admin"))

    @property
    def role(self) -> str | None:
        if self.team is None:
            return None
        return "owner" if self.is_super_admin else self.team.get("role")

    @property
    def is_admin(self) -> bool:
        return self.role in {"owner", "admin"}


def visitor() -> Visitor:
    return g.console_visitor


def team_id() -> int:
    """The id of the team the page is about (a visitor in no team gets a 404 page)."""
    team = visitor().team
    if team is None:
        raise NotFound("You are not in any team yet")
    return int(team["id"])


def login_redirect() -> Response:
    path = request.full_path.rstrip("?") if request.method == "GET" else "/console/"
    return redirect("/console/login?" + urlencode({"next": path}), 303)  # type: ignore[return-value]


def signed_in(fn: F) -> F:
    """Pages for signed-in visitors: sets :func:`visitor`; others go to sign in."""

    @wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        answer = await api.call("GET", "/api/auth/me")
        if answer.status == 401:
            return login_redirect()
        if not answer.ok:
            raise api.ApiFailed(answer)
        teams = answer.body.get("teams") or []
        wanted = request.args.get("team") or request.cookies.get(TEAM_COOKIE)
        team = next((t for t in teams if str(t["id"]) == wanted), teams[0] if teams else None)
        g.console_visitor = Visitor(answer.body.get("user") or {}, teams, team)
        return await fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


async def render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    notice = NOTICES.get(request.args.get("notice", ""))
    html = await render_template(
        f"console/{template}",
        me=getattr(g, "console_visitor", None),
        csrf_token=csrf.token(),
        notice=notice,
        path=request.path,
        **context,
    )
    return html, status


def back(path: str, **query: Any) -> Response:
    """303 to a console page (after a form post), with ``?notice=...`` etc."""
    params = {k: v for k, v in query.items() if v not in (None, "")}
    target = path + ("?" + urlencode(params) if params else "")
    return redirect(target, 303)  # type: ignore[return-value]


def pass_cookies(response: Response, answer: api.Answer) -> Response:
    for header in answer.set_cookies:
        response.headers.add("Set-Cookie", header)
    return response


@bp.errorhandler(api.ApiFailed)
async def api_failed(exc: api.ApiFailed) -> Any:
    if exc.answer.status == 401:
        return login_redirect()
    status = exc.answer.status if exc.answer.status in {400, 403, 404, 409, 429} else 502
    return await render("error.html", status, message=exc.answer.error, http_status=status)


@bp.errorhandler(GatewayError)
async def gateway_error(exc: GatewayError) -> Any:
    return await render("error.html", exc.status, message=exc.message, http_status=exc.status)

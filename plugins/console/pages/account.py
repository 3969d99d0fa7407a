"""Sign in, sign out, the team switcher and accepting an invitation."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from quart import redirect, request

from plugins.console import api
from plugins.console.blueprint import bp
from plugins.console.csrf import secure_cookies
from plugins.console.views import (
    TEAM_COOKIE,
    back,
    pass_cookies,
    render,
    signed_in,
    visitor,
)


def _local(target: str | None, default: str = "/console/calls") -> str:
    """Only a path inside the console: ``next`` must not send anyone elsewhere."""
    if not target:
        return default
    # It becomes a Location header: a control character, a space or a backslash there
    # is refused, not sent (a line break was a 500, a NUL a raw byte in the header).
    if any(ord(c) < 0x21 or c in "\\\x7f" for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console/"):
        return default
    return quote(target, safe=_PRINTABLE)  # only non-ASCII is escaped


_PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))


@bp.get("/")
async def home() -> Any:
    return redirect("/console/calls", 303)


@bp.get("/login")
async def login_form() -> Any:
    return await render("login.html", next=_local(request.args.get("next")), email="")


@bp.post("/login")
async def login() -> Any:
    form = await request.form
    email, target = form.get("email", ""), _local(form.get("next"))
    answer = await api.call(
        "POST", "/api/auth/login", json={"email": email, "password": form.get("password", "")}
    )
    if not answer.ok:
        status = answer.status if answer.status in {400, 401, 429} else 400
        return await render("login.html", status, next=target, email=email, error=answer.error)
    return pass_cookies(back(target), answer)


@bp.post("/logout")
async def logout() -> Any:
    answer = await api.call("POST", "/api/auth/logout")
    response = pass_cookies(back("/console/login", notice="signed_out"), answer)
    response.delete_cookie(TEAM_COOKIE, path="/console")
    return response


@bp.post("/team")
@signed_in
async def switch_team() -> Any:
    form = await request.form
    wanted = form.get("team_id", "")
    team = next((t for t in visitor().teams if str(t["id"]) == wanted), None)
    target = _local(form.get("next"))
    response = back(target)
    if team is not None:
        response.set_cookie(
            TEAM_COOKIE,
            str(team["id"]),
            path="/console",
            httponly=True,
            samesite="Lax",
            secure=secure_cookies(),
        )
    return response


@bp.get("/invitations/<token>")
async def invitation(token: str) -> Any:
    answer = await api.call("GET", f"/api/invitations/{token}")
    if not answer.ok:
        return await render("invitation.html", answer.status, invitation=None, error=answer.error)
    me = await api.call("GET", "/api/auth/me")
    return await render(
        "invitation.html",
        invitation=answer.body["invitation"],
        signed_in_as=(me.body or {}).get("user", {}).get("email") if me.ok else None,
        token=token,
    )


@bp.post("/invitations/<token>")
async def accept_invitation(token: str) -> Any:
    form = await request.form
    body: dict[str, Any] = {}
    if form.get("password"):
        body = {"password": form["password"]}
        if form.get("name", "").strip():
            body["name"] = form["name"].strip()
        if form.get("password") != form.get("password_again"):
            return await _invitation_error(token, "The two passwords differ", "password_again")
    answer = await api.call("POST", f"/api/invitations/{token}/accept", json=body)
    if not answer.ok:
        return await _invitation_error(token, answer.error, answer.field, answer.status)
    team_id = answer.body["team"]["id"]
    response = pass_cookies(back("/console/calls", team=team_id, notice="password_set"), answer)
    return response


async def _invitation_error(token: str, message: str, field: str | None, status: int = 400) -> Any:
    shown = await api.call("GET", f"/api/invitations/{token}")
    return await render(
        "invitation.html",
        status if status in {400, 401, 403, 404, 409, 429} else 400,
        invitation=shown.body["invitation"] if shown.ok else None,
        token=token,
        error=message,
        error_field=field,
    )

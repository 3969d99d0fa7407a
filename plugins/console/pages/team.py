"""Team: members and invitations, phone numbers, voice agents, the team-settings forms
(generated from each plugin's model) and the visitor's own API tokens."""

from __future__ import annotations

from typing import Any

from quart import request

from plugins.console import api, forms
from plugins.console.blueprint import bp
from plugins.console.views import back, render, signed_in, team_id, visitor

PAGE = "/console/team"


async def _team_page(status: int = 200, **extra: Any) -> Any:
    me = visitor()
    if me.team is None:
        return await render("team.html", status, team=None, **extra)
    tid = me.team["id"]
    members = (await api.get(f"/api/teams/{tid}/members"))["members"]
    numbers = (await api.get(f"/api/teams/{tid}/phone-numbers"))["phone_numbers"]
    agents = (await api.get(f"/api/teams/{tid}/agents"))["agents"]
    settings = (await api.get(f"/api/teams/{tid}/settings"))["settings"]
    invitations: list[dict[str, Any]] = []
    if me.is_admin:
        invitations = (await api.get(f"/api/teams/{tid}/invitations"))["invitations"]
    tokens = (await api.get("/api/auth/tokens"))["tokens"]
    return await render(
        "team.html",
        status,
        team=me.team,
        members=members,
        numbers=numbers,
        agents=agents,
        settings=settings,
        invitations=invitations,
        tokens=[t for t in tokens if not t.get("revoked_at")],
        **extra,
    )


@bp.get("/team")
@signed_in
async def team() -> Any:
    return await _team_page()


@bp.post("/team/invitations")
@signed_in
async def invite() -> Any:
    form = await request.form
    tid = team_id()
    answer = await api.call(
        "POST",
        f"/api/teams/{tid}/invitations",
        json={"email": form.get("email", ""), "role": form.get("role", "member")},
    )
    if not answer.ok:
        return await _team_page(400, invite_error=answer.error, invite_email=form.get("email"))
    link = f"/console/invitations/{answer.body['invitation']['token']}"
    return await _team_page(201, invite_link=link)


@bp.post("/team/invitations/<int:invitation_id>/revoke")
@signed_in
async def revoke_invitation(invitation_id: int) -> Any:
    tid = team_id()
    answer = await api.call("DELETE", f"/api/teams/{tid}/invitations/{invitation_id}")
    if not answer.ok:
        raise api.ApiFailed(answer)
    return back(PAGE, notice="invitation_revoked")


@bp.post("/team/phone-numbers")
@signed_in
async def add_number() -> Any:
    form = await request.form
    tid = team_id()
    answer = await api.call(
        "POST", f"/api/teams/{tid}/phone-numbers", json={"number": form.get("number", "")}
    )
    if not answer.ok:
        return await _team_page(400, number_error=answer.error, number_value=form.get("number"))
    return back(PAGE, notice="number_added")


@bp.post("/team/phone-numbers/<int:number_id>/remove")
@signed_in
async def remove_number(number_id: int) -> Any:
    tid = team_id()
    answer = await api.call("DELETE", f"/api/teams/{tid}/phone-numbers/{number_id}")
    if not answer.ok:
        raise api.ApiFailed(answer)
    return back(PAGE, notice="number_removed")


@bp.post("/tokens")
@signed_in
async def create_token() -> Any:
    form = await request.form
    body: dict[str, Any] = {"label": form.get("label", "")}
    days = form.get("expires_in_days", "").strip()
    if days:
        body["expires_in_days"] = days  # anything but a number: the API says why not
        # Not isdigit(): "²" is a digit int() refuses, as is a number of 5000 digits.
        if days.isascii() and days.isdigit() and len(days) <= 18:
            body["expires_in_days"] = int(days)
    answer = await api.call("POST", "/api/auth/tokens", json=body)
    if not answer.ok:
        return await _team_page(400, token_error=answer.error)
    return await _team_page(201, new_token=answer.body["token"])


@bp.post("/tokens/<int:token_id>/revoke")
@signed_in
async def revoke_token(token_id: int) -> Any:
    answer = await api.call("DELETE", f"/api/auth/tokens/{token_id}")
    if not answer.ok:
        raise api.ApiFailed(answer)
    return back(PAGE, notice="token_revoked")


# -- team settings -----------------------------------------------------------------------


async def _settings_view(plugin: str) -> dict[str, Any]:
    tid = team_id()
    return await api.get(f"/api/teams/{tid}/settings/{plugin}")


@bp.get("/settings/<plugin>")
@signed_in
async def settings_form(plugin: str) -> Any:
    view = await _settings_view(plugin)
    fields = forms.groups(view["schema"], view.get("values") or {}, view.get("secrets") or {})
    return await render("settings.html", view=view, groups=fields, plugin=plugin)


@bp.post("/settings/<plugin>")
@signed_in
async def save_settings(plugin: str) -> Any:
    view = await _settings_view(plugin)
    groups = forms.groups(view["schema"], view.get("values") or {}, view.get("secrets") or {})
    posted = await request.form
    every = [f for g in groups for f in g.fields]
    error: tuple[str | None, str] | None = None
    try:
        doc = forms.document(posted, every)
    except forms.FormError as exc:
        error = (exc.field, str(exc))
    else:
        tid = team_id()
        answer = await api.call("PUT", f"/api/teams/{tid}/settings/{plugin}", json=doc)
        if answer.ok:
            notice = "saved" if answer.body.get("changed") else "unchanged"
            return back(f"/console/settings/{plugin}", notice=notice)
        if answer.status != 400:
            raise api.ApiFailed(answer)
        error = (answer.field, answer.error)
    # Show what was typed, with the message next to its field.
    for f in every:
        if f.kind == "checkbox":
            f.value = f.name in posted
        elif f.kind != "secret":
            f.value = posted.get(f.name, "")
    return await render(
        "settings.html",
        400,
        view=view,
        groups=groups,
        plugin=plugin,
        error=error[1],
        error_field=error[0],
    )

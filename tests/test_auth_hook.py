"""The ``authenticate`` hook as a plugin author uses it: a plugin's principal (with the
team roles its own tokens grant) is honoured by the same role checks, plugins are asked
before the built-ins, and a plugin that raises Unauthorized stops the request."""

from __future__ import annotations

from typing import Any

from gateway.auth import Principal
from gateway.errors import Unauthorized
from hookspecs import hookimpl
from tests.support.identity import make_team, make_user, token_for


class HeaderAuth:
    """Trusts ``X-Test-User: <id>:<team>:<role>``; ``X-Test-User: bad`` is refused."""

    @hookimpl
    async def authenticate(self, request: Any, config: Any) -> Principal | None:
        raw = request.headers.get("X-Test-User")
        if raw is None:
            return None
        if raw == "bad":
            raise Unauthorized("Bad test credentials")
        uid, team, role = raw.split(":")
        return Principal(
            user_id=int(uid), email="ext@example.com", via="test", team_roles={int(team): role}
        )


async def test_plugin_principal_with_team_roles(make_app: Any, db_kind: str) -> None:
    app = await make_app(db=db_kind, extra_plugins=[("header_auth", HeaderAuth())])
    owner = await make_user("ann@example.com")
    team = await make_team("Acme", owner)
    other = await make_team("Other", owner)
    client = app.test_client()
    as_admin = {"X-Test-User": f"99:{team.id}:admin"}
    resp = await client.patch(f"/api/teams/{team.id}", json={"name": "Acme 2"}, headers=as_admin)
    assert resp.status_code == 200
    # The roles came from the plugin, not the database: no access to the other team.
    assert (await client.get(f"/api/teams/{other.id}", headers=as_admin)).status_code == 403
    as_member = {"X-Test-User": f"99:{team.id}:member"}
    assert (await client.get(f"/api/teams/{team.id}", headers=as_member)).status_code == 200
    resp = await client.patch(f"/api/teams/{team.id}", json={"name": "x"}, headers=as_member)
    assert resp.status_code == 403
    me = await (await client.get("/api/auth/me", headers=as_admin)).get_json()
    assert me["via"] == "test" and me["teams"] == [
        {"id": team.id, "name": "Acme 2", "role": "admin"}
    ]


async def test_plugin_refusal_is_401_even_with_a_valid_token(make_app: Any) -> None:
    app = await make_app(extra_plugins=[("header_auth", HeaderAuth())])
    user = await make_user("ann@example.com")
    headers = {**(await token_for(user)), "X-Test-User": "bad"}
    resp = await app.test_client().get("/api/auth/me", headers=headers)
    assert resp.status_code == 401
    assert await resp.get_json() == {"error": "Bad test credentials", "code": "UNAUTHORIZED"}

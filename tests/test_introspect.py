"""``GET /api/plugins``: the admin-only view of what is installed and wired."""

from __future__ import annotations

from gateway.auth.tokens import create_api_token
from gateway.identity.models import User


async def test_plugins_view_is_for_super_admins_only(app):
    client = app.test_client()
    assert (await client.get("/api/plugins")).status_code == 401

    plain = await User.create(email="member@example.com")
    token, _ = await create_api_token(plain)
    response = await client.get("/api/plugins", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert (await response.get_json())["code"] == "FORBIDDEN"

    boss = await User.create(email="root@example.com", is_super_admin=True)
    token, _ = await create_api_token(boss)
    response = await client.get("/api/plugins", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    rows = {row["name"]: row for row in (await response.get_json())["plugins"]}
    assert "GET /healthz" in rows["gateway.health"]["routes"]
    assert rows["gateway.introspect"]["hooks"] == ["register_routes"]

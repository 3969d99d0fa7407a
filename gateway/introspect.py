"""What is installed and wired: plugins, versions, hooks, routes and registered names.
Shown by ``gateway plugins`` and, to super admins, at ``GET /api/plugins``."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from quart import Blueprint, Quart, jsonify

from gateway.config import GatewayConfig
from gateway.contract import SIGNED_IN, api
from gateway.contract import admin_models as m
from hookspecs import hookimpl


def plugin_report(app: Quart, include_disabled: bool = False) -> list[dict[str, Any]]:
    from gateway.plugins import ENTRY_POINT_GROUP, distribution_version
    from gateway.registries import REGISTRIES

    gw = app.extensions["gateway"]
    owners = app.extensions.get("gateway_routes", {})
    routes: dict[str, list[str]] = {}
    for rule in app.url_map.iter_rules():
        plugin = owners.get(rule.endpoint.split(".", 1)[0])
        if plugin:
            methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
            routes.setdefault(plugin, []).append(f"{','.join(methods)} {rule.rule}")
    report = []
    for name, info in gw.pm.gateway_info.items():
        hooks = sorted(h.name for h in gw.pm.get_hookcallers(info.module) or [])
        registered = {
            spec.kind: sorted(n for n, (p, _i) in gw.registries[hook].items() if p == name)
            for hook, spec in REGISTRIES.items()
        }
        report.append(
            {
                "name": name,
                "version": info.version,
                "enabled": True,
                "builtin_core": info.builtin,
                "hooks": hooks,
                "routes": sorted(routes.get(name, [])),
                **{kind: names for kind, names in registered.items() if names},
            }
        )
    if include_disabled:
        enabled = {row["name"] for row in report}
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name not in enabled:
                version = distribution_version(ep)
                report.append(
                    {
                        "name": ep.name,
                        "version": version,
                        "enabled": False,
                        "blocked": gw.config.blocked_reason(ep.name) or "not loaded",
                    }
                )
    return report


@hookimpl
def register_routes(app: Quart, config: GatewayConfig) -> Blueprint:
    bp = Blueprint("introspect", __name__)

    @bp.get("/api/plugins")
    @api(m.PluginsOut, auth=SIGNED_IN)
    async def plugins() -> Any:
        from gateway.auth import require_super_admin

        await require_super_admin()
        return jsonify({"plugins": plugin_report(app, include_disabled=True)})

    return bp

"""``GET /docs``: the OpenAPI document as one server-rendered HTML page (no script, no
CDN: the page must render on a network that reaches nothing but the gateway)."""

from __future__ import annotations

from typing import Any

from markupsafe import escape

STYLE = """body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}
h2{margin-top:2rem}code{background:#f3f3f3;padding:0 .2rem}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem;
vertical-align:top;text-align:left}.m{font-weight:bold;text-transform:uppercase}"""


def _ref_name(schema: dict[str, Any] | None) -> str:
    if not schema:
        return ""
    ref = schema.get("$ref")
    if ref:
        return ref.rsplit("/", 1)[-1]
    return str(schema.get("title") or schema.get("type") or "object")


def _content_names(content: dict[str, Any] | None) -> str:
    if not content:
        return ""
    return ", ".join(f"{_ref_name(c.get('schema'))} ({t})" for t, c in content.items())


def _where(scheme: dict[str, Any]) -> str:
    if scheme.get("type") == "http":
        return f"Authorization: {scheme.get('scheme', '').title()} ..."
    return f"{scheme.get('in', '')} {scheme.get('name', '')}"


def render(doc: dict[str, Any]) -> str:
    rows: list[str] = []
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            auth = " or ".join(next(iter(s)) for s in op.get("security", []) if s) or "public"
            params = ", ".join(
                f"{p['name']} ({p['in']})" for p in op.get("parameters", []) if "name" in p
            )
            body = _content_names((op.get("requestBody") or {}).get("content"))
            answers = "<br>".join(
                f"{escape(code)} {escape(r.get('description', ''))} "
                f"{escape(_content_names(r.get('content')))}"
                for code, r in op.get("responses", {}).items()
            )
            rows.append(
                "<tr>"
                f"<td class=m>{escape(method)}</td><td><code>{escape(path)}</code><br>"
                f"{escape(op.get('summary', ''))}</td>"
                f"<td>{escape(auth)}</td><td>{escape(params)}</td><td>{escape(body)}</td>"
                f"<td>{answers}</td></tr>"
            )
    schemes = "".join(
        f"<li><code>{escape(name)}</code> ({escape(_where(s))}): "
        f"{escape(s.get('description', ''))}</li>"
        for name, s in doc.get("components", {}).get("securitySchemes", {}).items()
    )
    models = "".join(
        f"<li><code>{escape(name)}</code></li>"
        for name in sorted(doc.get("components", {}).get("schemas", {}))
    )
    title = escape(doc.get("info", {}).get("title", "API"))
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title>"
        f"<style>{STYLE}</style></head><body><h1>{title}</h1>"
        "<p>The machine-readable contract is <a href=/openapi.json>/openapi.json</a> "
        '(OpenAPI 3.1). Every error answer is <code>{"error", "code"}</code>.</p>'
        f"<h2>Authentication</h2><ul>{schemes}</ul>"
        "<h2>Operations</h2><table><tr><th>Method</th><th>Path</th><th>Auth</th>"
        "<th>Parameters</th><th>Body</th><th>Answers</th></tr>"
        f"{''.join(rows)}</table><h2>Models</h2><ul>{models}</ul></body></html>"
    )

"""Team-settings forms generated from each plugin's JSON schema (pydantic's
``model_json_schema``, as ``/api/teams/<id>/settings`` serves it), and the posted form
turned back into the JSON document the API validates. Validation is the API's: its 400
message is shown next to the field it names, so the form never disagrees with it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

SECRET_PLACEHOLDER = "**********"  # noqa: S105  (what the API shows for a set secret)


@dataclass
class Field:
    name: str  # dotted for nested models: "overrides.language"
    label: str
    kind: str  # checkbox | number | integer | select | secret | text | lines | json
    value: Any = None
    description: str | None = None
    options: list[str] = field(default_factory=list)
    optional: bool = False
    is_set: bool = False  # secrets: a value is stored

    @property
    def html_id(self) -> str:
        return "f-" + self.name.replace(".", "-").replace("_", "-")


@dataclass
class Group:
    title: str | None
    fields: list[Field]


def _resolve(prop: dict[str, Any], defs: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(the property's own schema, whether null is allowed)."""
    optional = False
    if "anyOf" in prop:
        kinds = [p for p in prop["anyOf"] if p.get("type") != "null"]
        optional = len(kinds) < len(prop["anyOf"])
        merged = {k: v for k, v in prop.items() if k != "anyOf"}
        prop = {**(kinds[0] if len(kinds) == 1 else {"type": "json"}), **merged}
    if "$ref" in prop:
        target = defs.get(prop["$ref"].rsplit("/", 1)[-1], {})
        prop = {**target, **{k: v for k, v in prop.items() if k != "$ref"}}
    if "allOf" in prop and len(prop["allOf"]) == 1:
        rest = {k: v for k, v in prop.items() if k != "allOf"}
        return _resolve({**prop["allOf"][0], **rest}, defs)
    return prop, optional


def _kind(prop: dict[str, Any]) -> str:
    kind = prop.get("type")
    if prop.get("format") == "password" or prop.get("writeOnly"):
        return "secret"
    if "enum" in prop:
        return "select"
    if kind == "boolean":
        return "checkbox"
    if kind in {"integer", "number"}:
        return kind
    if kind == "string":
        return "text"
    if kind == "array" and (prop.get("items") or {}).get("type") == "string":
        return "lines"
    return "json"


def _label(name: str, prop: dict[str, Any]) -> str:
    return str(prop.get("title") or name.replace("_", " ").capitalize())


def groups(schema: dict[str, Any], values: dict[str, Any], secrets: dict[str, Any]) -> list[Group]:
    """The form's fields: the model's own, then one group per nested model."""
    defs = schema.get("$defs", {})
    top = Group(None, [])
    out = [top]
    for name, raw in (schema.get("properties") or {}).items():
        prop, optional = _resolve(raw, defs)
        if prop.get("type") == "object" and "properties" in prop:
            nested = values.get(name) or {}
            sub = Group(_label(name, prop), [])
            for sub_name, sub_raw in prop["properties"].items():
                sub_prop, sub_optional = _resolve(sub_raw, defs)
                sub.fields.append(
                    _field(f"{name}.{sub_name}", sub_name, sub_prop, sub_optional, nested, {})
                )
            out.append(sub)
            continue
        top.fields.append(_field(name, name, prop, optional, values, secrets))
    return [g for g in out if g.fields]


def _field(
    dotted: str,
    name: str,
    prop: dict[str, Any],
    optional: bool,
    values: dict[str, Any],
    secrets: dict[str, Any],
) -> Field:
    kind = _kind(prop)
    value = values.get(name, prop.get("default"))
    if kind == "lines":
        value = "\n".join(str(v) for v in value or [])
    elif kind == "json":
        value = json.dumps(value, indent=2) if value is not None else ""
    elif kind == "secret":
        value = ""
    return Field(
        name=dotted,
        label=_label(name, prop),
        kind=kind,
        value=value,
        description=prop.get("description"),
        options=[str(o) for o in prop.get("enum", [])],
        optional=optional,
        is_set=secrets.get(name) == "set" or values.get(name) == SECRET_PLACEHOLDER,
    )


class FormError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def document(form: Any, fields: list[Field]) -> dict[str, Any]:
    """The JSON document for the API from the posted ``form``.

    :raises FormError: a value that cannot even be sent (a number field with letters,
        JSON that does not parse).
    """
    doc: dict[str, Any] = {}
    for f in fields:
        raw = form.get(f.name)
        value: Any
        if f.kind == "checkbox":
            value = raw is not None
        elif f.kind == "secret":
            if not raw:
                continue  # left empty: the stored secret is kept
            value = raw
        elif raw is None or raw.strip() == "":
            if not f.optional and f.kind not in {"text", "lines", "json"}:
                continue  # the model's default applies
            value = None if f.kind != "lines" else []
            if f.kind == "text" and not f.optional:
                value = ""
        elif f.kind in {"integer", "number"}:
            try:
                value = int(raw) if f.kind == "integer" else float(raw)
            except ValueError:
                raise FormError(f.name, f"{f.label} must be a number") from None
        elif f.kind == "lines":
            value = [line.strip() for line in raw.splitlines() if line.strip()]
        elif f.kind == "json":
            try:
                value = json.loads(raw)
            except ValueError:
                raise FormError(f.name, f"{f.label} must be JSON") from None
        else:
            value = raw
        head, _, tail = f.name.partition(".")
        if tail:
            doc.setdefault(head, {})[tail] = value
        else:
            doc[head] = value
    return doc

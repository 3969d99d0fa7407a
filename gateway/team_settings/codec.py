"""Settings documents as JSON, with their secrets taken out.

Pure functions on pydantic models and plain JSON, so the rules can be tested without a
database:

- :func:`split` turns a validated model into the JSON stored in ``values`` (only the
  fields that were set; every ``SecretStr`` leaf, nested ones included, replaced by
  ``null``) and ``{path: plaintext}`` for the secrets; :func:`join` puts them back.
- :func:`merge_patch` is RFC 7396 JSON merge patch (PATCH).
- :func:`omitted_secrets` finds ``SecretStr`` fields a write left out (they keep the
  stored value), :func:`secret_state` which secrets are set, :func:`changed_paths` the
  dotted names of the leaves two documents disagree on.

Paths are tuples of keys (strings; list positions as integers), shown dotted (``a.b``).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic_core import to_jsonable_python

# What pydantic shows for a set SecretStr; a write that sends it back means "unchanged".
PLACEHOLDER = "**********"

Path = tuple[str | int, ...]


def dotted(path: Path) -> str:
    return ".".join(str(p) for p in path)


# --- secrets out and back in ---------------------------------------------------------


def split(model: BaseModel) -> tuple[dict[str, Any], dict[Path, str]]:
    """``(values, secrets)``: the fields that were set, as JSON (by alias), with every
    secret leaf ``None``; and each secret's plaintext by path."""
    raw = model.model_dump(mode="python", by_alias=True, exclude_unset=True, round_trip=True)
    secrets: dict[Path, str] = {}
    values = _take_secrets(raw, (), secrets)
    return to_jsonable_python(values), secrets


def _take_secrets(value: Any, path: Path, out: dict[Path, str]) -> Any:
    if isinstance(value, SecretStr):
        out[path] = value.get_secret_value()
        return None
    if isinstance(value, dict):
        return {k: _take_secrets(v, (*path, k), out) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_take_secrets(v, (*path, i), out) for i, v in enumerate(value)]
    return value


def join(values: dict[str, Any], secrets: dict[Path, str]) -> dict[str, Any]:
    """A copy of ``values`` with the secrets put back at their paths (missing
    intermediate objects are created: an omitted nested model still keeps its secret)."""
    doc = _copy(values)
    for path, plaintext in secrets.items():
        node: Any = doc
        for key in path[:-1]:
            node = _child(node, key)
        last = path[-1]
        if isinstance(node, dict):
            node[last] = plaintext
        elif isinstance(node, list) and isinstance(last, int) and last < len(node):
            node[last] = plaintext
    return doc


def _child(node: Any, key: str | int) -> Any:
    if isinstance(node, dict):
        child = node.get(key)
        if not isinstance(child, dict | list):
            child = node[key] = {}
        return child
    if isinstance(node, list) and isinstance(key, int) and key < len(node):
        return node[key]
    return None


def revealed(model: BaseModel) -> dict[str, Any]:
    """Every effective value as JSON, secrets in plaintext (for comparing, never shown)."""
    raw = model.model_dump(mode="python", by_alias=True, round_trip=True)
    secrets: dict[Path, str] = {}
    values = _take_secrets(raw, (), secrets)
    return join(to_jsonable_python(values), secrets)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def encode_secrets(secrets: dict[Path, str]) -> list[list[Any]]:
    """The secrets as JSON (``[[path, plaintext], ...]``), to be encrypted as one text."""
    return [[list(path), plaintext] for path, plaintext in sorted(secrets.items(), key=str)]


def decode_secrets(data: Any) -> dict[Path, str]:
    return {tuple(path): str(plaintext) for path, plaintext in data or []}


# --- what a write left out -----------------------------------------------------------


def _is_secret(annotation: Any) -> bool:
    """``SecretStr``, ``SecretStr | None``, ``Optional[SecretStr]``, ``Annotated[...]``."""
    if isinstance(annotation, type) and issubclass(annotation, SecretStr):
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _is_secret(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return any(_is_secret(arg) for arg in typing.get_args(annotation))
    return False


def _models(value: Any, path: Path) -> Iterator[tuple[BaseModel, Path]]:
    """Every model inside ``value`` (itself, nested fields, dict values, list items)."""
    if isinstance(value, BaseModel):
        yield value, path
        for name, field in type(value).model_fields.items():
            yield from _models(getattr(value, name), (*path, field.alias or name))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _models(item, (*path, key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _models(item, (*path, i))


def secret_fields(model: BaseModel) -> Iterator[tuple[Path, Any, bool]]:
    """``(path, value, explicitly_set)`` for every field typed ``SecretStr`` in any model
    of the document."""
    for sub, path in _models(model, ()):
        for name, field in type(sub).model_fields.items():
            if _is_secret(field.annotation):
                yield (*path, field.alias or name), getattr(sub, name), name in sub.model_fields_set


def omitted_secrets(model: BaseModel) -> list[Path]:
    """Secret fields the input did not mention (they keep what is stored)."""
    return [path for path, _value, given in secret_fields(model) if not given]


def secret_state(model: BaseModel) -> dict[str, str]:
    """``{"a.b": "set" | "unset"}`` for every secret field, and for every secret inside
    a dict or list of the document."""
    state = {
        dotted(path): "unset" if value is None else "set"
        for path, value, _given in secret_fields(model)
    }
    _values, secrets = split(model)
    for path in secrets:
        state[dotted(path)] = "set"
    return state


def redacted(model: BaseModel) -> dict[str, Any]:
    """The effective values as JSON, secrets shown as :data:`PLACEHOLDER` (or null)."""
    return model.model_dump(mode="json", by_alias=True)


# --- input checks ---------------------------------------------------------------------


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _nested_model(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        found = [m for arg in typing.get_args(annotation) if (m := _nested_model(arg))]
        return found[0] if len(found) == 1 else None
    return None


def unknown_keys(doc: Any, model: type[BaseModel], path: Path = ()) -> list[Path]:
    """Keys of ``doc`` that no field of ``model`` (or of a nested model field) takes.

    Writes refuse them even when the model would ignore them, so a misspelt name is an
    error rather than a silently lost setting; reads drop them, so a field a plugin
    removed does not make the stored document unreadable.
    """
    if not isinstance(doc, dict):
        return []
    fields: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        fields[name] = field.annotation
        if field.alias:
            fields[field.alias] = field.annotation
    found: list[Path] = []
    for key, value in doc.items():
        if key not in fields:
            found.append((*path, key))
            continue
        nested = _nested_model(fields[key])
        if nested is not None:
            found += unknown_keys(value, nested, (*path, key))
    return found


def drop(doc: dict[str, Any], paths: list[Path]) -> dict[str, Any]:
    """A copy of ``doc`` without the keys at ``paths``."""
    out = _copy(doc)
    for path in paths:
        node: Any = out
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return out


# --- PATCH and history ----------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 (https://www.rfc-editor.org/rfc/rfc7396): objects merge key by key,
    ``null`` removes a key, anything else replaces. Eight lines of a fully specified
    algorithm; not worth a dependency."""
    if not isinstance(patch, dict):
        return _copy(patch)
    out = _copy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def changed_paths(old: Any, new: Any, path: Path = ()) -> list[str]:
    """Dotted names of the leaves that differ between two JSON documents (a whole list
    counts as one leaf)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            out += changed_paths(old.get(key), new.get(key), (*path, key))
        return out
    return [] if old == new else [dotted(path) or "(document)"]

"""The two query languages the loopback Salesforce understands, as far as the gateway
uses them (docs/plugins/salesforce.md lists the sources):

- SOSL ``FIND {term OR term} IN PHONE FIELDS RETURNING Obj(f, ...), Obj(...)``: the
  reserved characters ``? & | ! { } [ ] ( ) ^ ~ * : \\ " ' + -`` must be escaped with a
  backslash inside the braces (else ``MALFORMED_SEARCH``);
- SOQL ``SELECT f, ... FROM Obj [WHERE cond] [LIMIT n]`` where ``cond`` is
  ``Field = 'literal'`` / ``Field = true|false`` joined by ``AND`` / ``OR`` with
  parentheses; a literal escapes ``'`` and ``\\`` with a backslash (else
  ``MALFORMED_QUERY``).

Parse errors raise :class:`QueryError` carrying Salesforce's error code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

SOSL_RESERVED = set("?&|!{}[]()^~*:\\\"'+-")
SOQL_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'"}
SOQL_ESCAPES["\\"] = "\\"


class QueryError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class Search:
    terms: list[str]
    returning: list[tuple[str, list[str]]]


@dataclass
class Query:
    fields: list[str]
    sobject: str
    where: Callable[[Mapping[str, Any]], bool]
    limit: int | None


def parse_sosl(text: str) -> Search:
    if not text.startswith("FIND {"):
        raise QueryError("MALFORMED_SEARCH", "unexpected token: expecting FIND {")
    terms, current, i = [], [], len("FIND {")
    while True:
        if i >= len(text):
            raise QueryError("MALFORMED_SEARCH", "missing '}' at end of the search query")
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            current.append(text[i + 1])
            i += 2
            continue
        if char == "}":
            break
        if char in SOSL_RESERVED:
            raise QueryError("MALFORMED_SEARCH", f"mismatched character '{char}' expecting '}}'")
        current.append(char)
        i += 1
    terms = [t.strip() for t in "".join(current).split(" OR ") if t.strip()]
    rest = text[i + 1 :]
    match = re.fullmatch(r"\s+IN PHONE FIELDS RETURNING\s+(.+)", rest, re.DOTALL)
    if not match or not terms:
        raise QueryError("MALFORMED_SEARCH", "expecting IN PHONE FIELDS RETURNING")
    returning = [
        (name, [f.strip() for f in fields.split(",")])
        for name, fields in re.findall(r"(\w+)\(([^)]*)\)", match.group(1))
    ]
    if not returning:
        raise QueryError("MALFORMED_SEARCH", "RETURNING names no object")
    return Search(terms, returning)


TOKEN = re.compile(r"\s*(?:(\()|(\))|('(?:\\.|[^'\\])*')|(=)|([A-Za-z_][\w.]*))")


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text.rstrip()):
        match = TOKEN.match(text, pos)
        if not match:
            raise QueryError("MALFORMED_QUERY", f"unexpected token near '{text[pos : pos + 10]}'")
        out.append(next(g for g in match.groups() if g is not None))
        pos = match.end()
    return out


def _literal(token: str) -> Any:
    if token.lower() in ("true", "false"):
        return token.lower() == "true"
    if not token.startswith("'"):
        raise QueryError("MALFORMED_QUERY", f"unexpected token: {token}")
    out, body, i = [], token[1:-1], 0
    while i < len(body):
        if body[i] == "\\":
            escaped = SOQL_ESCAPES.get(body[i + 1]) if i + 1 < len(body) else None
            if escaped is None:
                raise QueryError("MALFORMED_QUERY", "Invalid string literal: illegal escape")
            out.append(escaped)
            i += 2
            continue
        out.append(body[i])
        i += 1
    return "".join(out)


class _Where:
    """``cond := and (OR and)*``, ``and := atom (AND atom)*``, ``atom := ( cond ) |
    Field = literal``."""

    def __init__(self, tokens: list[str], fields: set[str], sobject: str) -> None:
        self.tokens, self.pos, self.fields, self.sobject = tokens, 0, fields, sobject

    def _next(self) -> str:
        if self.pos >= len(self.tokens):
            raise QueryError("MALFORMED_QUERY", "unexpected end of the WHERE clause")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def parse(self) -> Callable[[Mapping[str, Any]], bool]:
        cond = self._or()
        if self._peek() is not None:
            raise QueryError("MALFORMED_QUERY", f"unexpected token: {self._peek()}")
        return cond

    def _or(self) -> Callable[[Mapping[str, Any]], bool]:
        parts = [self._and()]
        while (self._peek() or "").upper() == "OR":
            self._next()
            parts.append(self._and())
        return lambda r: any(p(r) for p in parts)

    def _and(self) -> Callable[[Mapping[str, Any]], bool]:
        parts = [self._atom()]
        while (self._peek() or "").upper() == "AND":
            self._next()
            parts.append(self._atom())
        return lambda r: all(p(r) for p in parts)

    def _atom(self) -> Callable[[Mapping[str, Any]], bool]:
        token = self._next()
        if token == "(":
            cond = self._or()
            if self._next() != ")":
                raise QueryError("MALFORMED_QUERY", "expecting ')'")
            return cond
        if token not in self.fields:
            raise QueryError(
                "INVALID_FIELD", f"No such column '{token}' on entity '{self.sobject}'"
            )
        if self._next() != "=":
            raise QueryError("MALFORMED_QUERY", "only '=' is understood here")
        value = _literal(self._next())
        return lambda r: r.get(token) == value


def parse_soql(text: str, known: Mapping[str, set[str]]) -> Query:
    match = re.fullmatch(
        r"SELECT\s+(.+?)\s+FROM\s+(\w+)(?:\s+WHERE\s+(.+?))?(?:\s+LIMIT\s+(\d+))?\s*",
        text,
        re.DOTALL,
    )
    if not match:
        raise QueryError("MALFORMED_QUERY", "unexpected token: expecting SELECT ... FROM")
    fields = [f.strip() for f in match.group(1).split(",")]
    sobject = match.group(2)
    if sobject not in known:
        raise QueryError("INVALID_TYPE", f"sObject type '{sobject}' is not supported.")
    for name in fields:
        if name not in known[sobject]:
            raise QueryError("INVALID_FIELD", f"No such column '{name}' on entity '{sobject}'")
    where = match.group(3)
    cond = _Where(_tokens(where), known[sobject], sobject).parse() if where else (lambda r: True)
    limit = int(match.group(4)) if match.group(4) else None
    return Query(fields, sobject, cond, limit)

"""The JSON API, called in-process with the visitor's own credentials: the request goes
through the app exactly as if the browser had sent it (authentication, team checks,
validation, rate limits per client), so the console can show nothing the API would not.

Only the session cookie and the client's address travel along; the answer's
``Set-Cookie`` headers (sign in, sign out, the OAuth browser binding) are handed back
to the browser by the page that asked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from quart import current_app, request

SESSION_COOKIE = "gateway_session"
_FORWARDED = ("X-Forwarded-For", "User-Agent", "Accept-Language")


@dataclass
class Answer:
    status: int
    body: Any
    set_cookies: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error(self) -> str:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), str):
            return self.body["error"]
        return f"HTTP {self.status}"

    @property
    def field(self) -> str | None:
        value = self.body.get("field") if isinstance(self.body, dict) else None
        return value if isinstance(value, str) else None


class ApiFailed(Exception):
    """A call the page cannot do without failed (401 signs out, 404 is a 404 page...)."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.error)
        self.answer = answer


def _headers(cookie: str | None) -> dict[str, str]:
    headers = {name: request.headers[name] for name in _FORWARDED if name in request.headers}
    value = cookie if cookie is not None else request.cookies.get(SESSION_COOKIE)
    if value:
        headers["Cookie"] = f"{SESSION_COOKIE}={value}"
    return headers


async def call(
    method: str,
    path: str,
    *,
    query: dict[str, Any] | None = None,
    json: Any = None,
    cookie: str | None = None,
) -> Answer:
    """One API request as the visitor; never raises for an HTTP error status."""
    params = {k: v for k, v in (query or {}).items() if v not in (None, "")}
    target = f"{path}?{urlencode(params)}" if params else path
    # No cookie jar: nothing is kept between requests, the browser keeps the cookies.
    client = current_app.test_client(use_cookies=False)
    kwargs: dict[str, Any] = {"method": method, "headers": _headers(cookie)}
    if json is not None:
        kwargs["json"] = json
    client_addr = request.scope.get("client")
    if client_addr:
        kwargs["scope_base"] = {"client": tuple(client_addr)}
    response = await client.open(target, **kwargs)
    body: Any = None
    if response.mimetype == "application/json":
        body = await response.get_json()
    return Answer(response.status_code, body, response.headers.getlist("Set-Cookie"))


async def get(path: str, **query: Any) -> Any:
    """The body of a GET that must succeed (:class:`ApiFailed` otherwise)."""
    answer = await call("GET", path, query=query)
    if not answer.ok:
        raise ApiFailed(answer)
    return answer.body

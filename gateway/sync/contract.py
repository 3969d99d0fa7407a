"""What a CRM plugin hands the core (the contract), after the pattern of ``OAuthProvider``.

A plugin describes only what it alone knows: which OAuth connection it uses, how to find
a contact by phone number, how to log a call (and, optionally, create a contact), how to
find a call it logged earlier by the gateway's idempotency marker, and its rate limits.
The core's sync engine (:mod:`gateway.sync.engine`) owns everything around that: the
``voice.call.analyzed`` subscription, the effects ledger, tokens and refresh, rate
limiting, retries, the caller lookup for personalization and what the call timeline
shows. See docs/sync.md for a complete minimal CRM.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from gateway.calls.analysis import TranscriptTurn
    from gateway.sync.session import ProviderSession

# Every request counts against the limits of this bucket; a request that names another
# bucket (a search endpoint with its own, lower limit) counts against both.
DEFAULT_BUCKET = "api"


@dataclass(frozen=True)
class RateLimit:
    """At most ``requests`` per ``seconds`` per provider account (a CRM portal, an org,
    a tenant: the connection's ``account_id``), across every worker process.

    :param bucket: ``"api"`` (every request) or the name a request passes as
        ``bucket=`` (e.g. ``"search"``) for a limit that only some endpoints share.
    """

    requests: int
    seconds: int
    bucket: str = DEFAULT_BUCKET

    def __post_init__(self) -> None:
        if self.requests < 1 or self.seconds < 1:
            raise ValueError("a rate limit needs requests >= 1 and whole seconds >= 1")

    def __str__(self) -> str:
        return f"{self.requests} per {self.seconds} s ({self.bucket})"


@dataclass(frozen=True)
class Contact:
    """A contact in a CRM. ``id`` is the CRM's own; the rest is what the agent may use
    as dynamic variables when the contact calls (all optional)."""

    id: str
    name: str | None = None
    first_name: str | None = None
    email: str | None = None
    phone: str | None = None  # E.164
    company: str | None = None
    owner: str | None = None
    last_activity: str | None = None  # ISO 8601 as the CRM reports it
    url: str | None = None  # the record in the CRM's UI
    variables: Mapping[str, Any] = field(default_factory=dict)  # anything else

    def as_lookup(self, source: str) -> dict[str, Any]:
        """The ``lookup_contact`` answer: the fields that are set, ``variables`` merged
        in, and ``source`` (the CRM that answered) and ``id``."""
        out: dict[str, Any] = {
            k: v
            for k, v in (
                ("name", self.name),
                ("first_name", self.first_name),
                ("email", self.email),
                ("phone", self.phone),
                ("company", self.company),
                ("owner", self.owner),
                ("last_activity", self.last_activity),
                ("url", self.url),
            )
            if v not in (None, "")
        }
        out.update(self.variables)
        out["id"], out["source"] = self.id, source
        return out


@dataclass(frozen=True)
class Logged:
    """A record the CRM created (a call, a contact): its id and, if known, a link."""

    id: str
    url: str | None = None


@dataclass(frozen=True)
class CallToLog:
    """The analyzed call, as the engine hands it to :attr:`CRM.log_call`.

    :param marker: the gateway's idempotency marker (letters and digits only): store it
        on the record (a property, an external id, a token in the body), so that
        :attr:`CRM.find_logged_call` can find the record again after a crash.
    :param customer_number: the other party's number in E.164 (the caller of an inbound
        call, the callee of an outbound one), ``None`` if unknown.
    :param transcript: the turns, for an excerpt. Never log them: a transcript is
        personal data.
    """

    analysis_id: int
    conversation_id: str
    marker: str
    direction: str | None
    customer_number: str | None
    agent_number: str | None
    from_number: str | None
    to_number: str | None
    started_at: datetime | None
    duration_seconds: int | None
    outcome: str
    summary: str | None
    transcript: tuple[TranscriptTurn, ...] = ()
    data_collection: Mapping[str, Any] = field(default_factory=dict)
    agent_id: str | None = None

    def excerpt(self, max_chars: int = 2000) -> str:
        """``Role: message`` lines from the start of the transcript, cut at a turn
        boundary to at most ``max_chars``."""
        lines: list[str] = []
        used = 0
        for turn in self.transcript:
            if not turn.message:
                continue
            line = f"{turn.role.capitalize()}: {turn.message.strip()}"
            if used + len(line) > max_chars:
                if not lines:
                    lines.append(line[: max(0, max_chars - 1)] + "…")
                break
            lines.append(line)
            used += len(line) + 1
        return "\n".join(lines)


@dataclass
class CRMRequest:
    """What every callable of a :class:`CRM` receives.

    :param api: the team's rate-limited, token-refreshing session to the CRM's API
        (``await api.request("POST", "/path", json=...)``); relative paths are joined to
        :attr:`CRM.base_url`.
    :param team_id: the team whose CRM this is.
    :param account: the connection's account data (``OAuthConnection.account_data``:
        hub id, instance URL, ...).
    :param app: the Quart app (read your team settings with
        ``get_team_settings(team_id, <plugin>, Model, app=app)``).
    """

    api: ProviderSession
    team_id: int
    account: Mapping[str, Any]
    app: Any


class Skip(Exception):
    """Raise from a CRM callable when the team does not want this done (its settings say
    so): the ledger records the effect as ``skipped`` with ``reason``, the job completes.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


FindContact = Callable[[CRMRequest, str], Awaitable[Contact | None]]
LogCall = Callable[[CRMRequest, CallToLog, Contact | None], Awaitable[Logged]]
FindLoggedCall = Callable[[CRMRequest, CallToLog], Awaitable[Logged | None]]
CreateContact = Callable[[CRMRequest, CallToLog], Awaitable[Contact | None]]


@dataclass(frozen=True)
class CRM:
    """A CRM, as a plugin describes it (``register_crms``).

    :param name: unique, e.g. ``"acme_crm"``; the ledger's plugin name and the handler
        name ``<name>.log_call``.
    :param provider: the OAuth provider (``register_oauth_providers``) whose team
        connection and tokens are used.
    :param display_name: shown on the call timeline.
    :param base_url: the API's base URL, or ``(account data) -> url`` when it depends on
        the connection (an instance URL kept in the account data): read from the stored
        connection before the first request and again after a token refresh.
    :param find_contact: ``async (req, phone_e164) -> Contact | None``. Used by the
        caller lookup (under the personalization deadline) and before logging a call.
    :param log_call: ``async (req, call, contact | None) -> Logged``: create the call
        record, with ``call.marker`` stored on it, associated with ``contact``.
    :param find_logged_call: ``async (req, call) -> Logged | None``: the record carrying
        ``call.marker``, if one exists (asked only when an earlier attempt may have
        created it).
    :param create_contact: ``async (req, call) -> Contact | None`` for a caller the CRM
        does not know; ``None`` (or raising :class:`Skip`) when the team's settings do
        not allow it. Leave unset if the CRM never creates contacts.
    :param rate_limits: the provider's limits per account; the engine keeps every
        request (lookup included) within them, across processes.
    :param search_lag_seconds: how long a new record may take to become findable by
        ``find_logged_call`` / ``find_contact`` (search indexes lag): a retry after a
        crash waits that long before it concludes nothing was created.
    :param token_rejected: ``(status, body) -> bool``: the response means "this access
        token is no longer valid" (default: HTTP 401). The engine then refreshes once
        and retries once.
    :param lookup: take part in the caller lookup.
    """

    name: str
    provider: str
    display_name: str
    base_url: str | Callable[[Mapping[str, Any]], str]
    find_contact: FindContact
    log_call: LogCall
    find_logged_call: FindLoggedCall
    create_contact: CreateContact | None = None
    rate_limits: tuple[RateLimit, ...] = ()
    search_lag_seconds: float = 0.0
    token_rejected: Callable[[int, Any], bool] | None = None
    lookup: bool = True

    @property
    def handler_name(self) -> str:
        return f"{self.name}.log_call"

    def api_base(self, account: Mapping[str, Any]) -> str:
        base = self.base_url(account) if callable(self.base_url) else self.base_url
        return str(base).rstrip("/")

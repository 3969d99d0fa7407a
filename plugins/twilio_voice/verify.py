"""Which Auth Token may have signed a request, and the check itself.

Tokens are chosen by the request's ``AccountSid``: the main account's (current and
previous, so a rotation never drops a webhook) or a configured subaccount's. A request
for an account we do not know is refused, and with no token configured at all every
request is refused: nothing unverified gets in.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pydantic import SecretStr

from gateway.webhooks import WebhookRequest
from plugins.twilio_voice import signature
from plugins.twilio_voice.settings import TwilioVoiceSettings

log = logging.getLogger("gateway.plugins.twilio_voice")

# Finds the team a request is about (by its number or its call), for subaccounts bound
# to one team.
TeamOf = Callable[[WebhookRequest], Awaitable[int | None]]


@dataclass(frozen=True)
class Account:
    sid: str | None
    tokens: tuple[str, ...]  # current first
    team_id: int | None = None


def _plain(*secrets: SecretStr | None) -> tuple[str, ...]:
    return tuple(s.get_secret_value() for s in secrets if s is not None)


class Accounts:
    def __init__(self, settings: TwilioVoiceSettings) -> None:
        self.main_sid = settings.account_sid
        self.main = Account(
            settings.account_sid, _plain(settings.auth_token, settings.previous_auth_token)
        )
        self.subaccounts = {
            sid: Account(sid, _plain(sub.auth_token, sub.previous_auth_token), sub.team_id)
            for sid, sub in settings.subaccounts.items()
        }
        self.shared_keys = {k: v.get_secret_value() for k, v in settings.shared_keys.items()}

    def for_sid(self, account_sid: str | None) -> Account | None:
        """The account whose tokens may sign for ``account_sid``."""
        if account_sid and account_sid in self.subaccounts:
            return self.subaccounts[account_sid]
        if not self.main.tokens:
            return None
        # With the main AccountSid configured, only its own requests match it.
        if self.main_sid is not None and account_sid != self.main_sid:
            return None
        return self.main

    def basic_auth(self, account_sid: str | None) -> tuple[str, str] | None:
        """``(AccountSid, current token)`` for fetching this account's media."""
        account = self.for_sid(account_sid)
        sid = account_sid or (account.sid if account else None)
        if account is None or not sid:
            return None
        return sid, account.tokens[0]


class Verifier:
    """``WebhookSource.verify`` for one route."""

    def __init__(self, accounts: Accounts, team_of: TeamOf | None = None) -> None:
        self.accounts = accounts
        self.team_of = team_of

    async def __call__(self, req: WebhookRequest) -> bool:
        sig = req.headers.get(signature.SIGNATURE_HEADER)
        if not sig:
            return False
        key_id, algorithm = signature.request_signing(req.headers)
        if key_id is not None:
            # A Webhooks rule signed this with a SharedKey: only that key's secret counts.
            shared = self.accounts.shared_keys.get(key_id)
            account = Account(None, (shared,)) if shared else None
        else:
            account = self.accounts.for_sid(req.form.get("AccountSid"))
        if account is None:
            return False
        body_ok = signature.body_hash_ok(req.public_url, req.body)
        if body_ok is False:
            return False
        # A JSON body is covered by bodySHA256 in the URL; a form body by its params.
        params = None if body_ok else req.form
        if signature.matching_token(account.tokens, req.public_url, params, sig, algorithm) is None:
            return False
        if account.team_id is not None:
            team_id = await self.team_of(req) if self.team_of else None
            if team_id != account.team_id:
                log.warning("subaccount signature for another team's call refused")
                return False
        return True

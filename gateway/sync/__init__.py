"""After-call sync: the CRM contract, the effects ledger, provider rate limits and
provider sessions (tokens in handlers). See docs/sync.md.

A CRM plugin returns a :class:`CRM` from ``register_crms``; any handler that creates
something at a provider records it with :func:`gateway.sync.ledger.effect` and calls the
provider through a :class:`ProviderSession` (``ctx.provider_session(provider)``).
"""

from __future__ import annotations

from gateway.contacts import MISSED, ContactAnswer, ContactCache, find_contact, lookup_contact
from gateway.sync import ledger  # the documented namespace: ledger.effect(...)
from gateway.sync.contract import (
    CRM,
    DEFAULT_BUCKET,
    CallToLog,
    Contact,
    CRMRequest,
    Logged,
    RateLimit,
    Skip,
)
from gateway.sync.ledger import (
    EffectHandle,
    analysis_subject,
    effect,
    effect_json,
    effects_for_call,
    event_subject,
)
from gateway.sync.limiter import limiter_of
from gateway.sync.phone import national_digits, same_number, to_e164
from gateway.sync.session import (
    ProviderAuthFailed,
    ProviderError,
    ProviderResponse,
    ProviderSession,
    ProviderThrottled,
    ProviderUnavailable,
    retry_after_seconds,
)

__all__ = [
    "CRM",
    "DEFAULT_BUCKET",
    "MISSED",
    "CRMRequest",
    "CallToLog",
    "Contact",
    "ContactAnswer",
    "ContactCache",
    "EffectHandle",
    "Logged",
    "ProviderAuthFailed",
    "ProviderError",
    "ProviderResponse",
    "ProviderSession",
    "ProviderThrottled",
    "ProviderUnavailable",
    "RateLimit",
    "Skip",
    "analysis_subject",
    "effect",
    "effect_json",
    "effects_for_call",
    "event_subject",
    "find_contact",
    "ledger",
    "limiter_of",
    "lookup_contact",
    "national_digits",
    "retry_after_seconds",
    "same_number",
    "to_e164",
]

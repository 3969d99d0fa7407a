"""Process roles, and whether a configuration is fit for running each as several replicas.

The gateway runs as one process by default. Past one machine its roles run apart:
``api`` (``gateway serve --no-worker``), ``worker`` (``gateway worker``), ``scheduler``
(``gateway scheduler``), plus ``gateway migrate`` as a one-shot deploy step. Every
replica of every role must agree on state and secrets, so ``gateway check --role``
refuses what only works on one machine (see docs/operations.md#roles).
"""

from __future__ import annotations

from typing import Any

from gateway.config import GatewayConfig
from gateway.db import is_sqlite
from gateway.secrets import OWNED

ROLES = ("api", "worker", "scheduler")
# Roles that read or write recordings: the API (audio webhooks, the console's player),
# the worker (downloads), the scheduler (retention clean-up deletes blobs).
_RECORDINGS = {"api", "worker", "scheduler"}
_LOCAL_URLS = ("http://127.0.0.1", "http://localhost", "https://127.0.0.1", "https://localhost")


def roles_of(role: str) -> tuple[str, ...]:
    return ROLES if role == "all" else (role,)


def _unresolved(config: GatewayConfig, key: str) -> str:
    for item in config.unresolved.get("gateway", []):
        if item == key or item.startswith((f"{key} ", f"{key}.")):
            return " " + item.removeprefix(key).strip()
    return ""


def replica_problems(config: GatewayConfig, role: str) -> list[str]:
    """One line per reason ``config`` only works on one machine for ``role``
    (``"api"``, ``"worker"``, ``"scheduler"`` or ``"all"``); empty when it is fit."""
    settings = config.gateway
    roles = roles_of(role)
    problems: list[str] = []
    if is_sqlite(settings.resolved_database_url):
        problems.append(
            "database_url: SQLite is a file on one machine; replicas need PostgreSQL "
            "(postgres://...)"
        )
    elif settings.auto_migrate:
        problems.append(
            "auto_migrate: every replica would migrate as it starts; leave it unset and run "
            "`gateway migrate` once per deploy"
        )
    for name in OWNED:
        value: Any = getattr(settings, name)
        if not value:
            why = _unresolved(config, name)
            ref = f'{{ env = "GATEWAY_{name.upper()}" }}'
            example = f"[{ref.replace('KEYS', 'KEY')}]" if name == "encryption_keys" else ref
            problems.append(
                f"{name}: not set, so each machine would generate its own{why}; set it, "
                f"e.g. {name} = {example}"
            )
    if "api" in roles:
        if settings.rate_limit_storage.startswith("memory"):
            problems.append(
                "rate_limit_storage: memory:// counts in each process; use redis://... so "
                "replicas share the limits"
            )
        if settings.public_url.startswith(_LOCAL_URLS):
            problems.append(
                f"public_url: {settings.public_url} is not the URL senders use; webhook "
                "signatures would not match"
            )
    if _RECORDINGS & set(roles) and settings.recording_storage != "s3":
        problems.append(
            'recording_storage: local disk is one machine\'s; use "s3" with [gateway.s3] '
            "so every replica reads the same recordings"
        )
    return problems


async def reach_services(config: GatewayConfig, role: str) -> tuple[list[str], list[str]]:
    """Reach what the role's replicas share besides the database and the bucket (which
    ``check`` reaches for every role): the rate-limit store. Returns what answered and
    one problem line for what did not."""
    settings = config.gateway
    answered: list[str] = []
    problems: list[str] = []
    if "api" in roles_of(role) and not settings.rate_limit_storage.startswith("memory"):
        from gateway.ratelimit import _Limiter

        scheme = settings.rate_limit_storage.split("://", 1)[0]
        limiter = _Limiter(settings.rate_limit_storage)
        try:
            ok, why = bool(await limiter.storage.check()), "no answer"
        except Exception as exc:  # whatever the client raises means "cannot reach"
            ok, why = False, type(exc).__name__
        finally:
            await limiter.close()
        if ok:
            answered.append(f"rate limits: {scheme} ok")
        else:
            problems.append(f"rate_limit_storage: cannot reach {scheme} ({why})")
    return answered, problems

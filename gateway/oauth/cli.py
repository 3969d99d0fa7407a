"""``gateway keys rotate``: put a new token-encryption key first and re-encrypt every
stored token (and pending PKCE verifier) under it.

Generated keys (no ``encryption_keys`` in the config): a new key is generated (or taken
from ``--new-key``) and written first into the generated secrets file; the old keys stay
after it so nothing becomes unreadable, and ``--prune`` drops them once every row is
re-encrypted. Configured keys: the operator owns them, so the order is: put the new key
first in ``encryption_keys``, restart the gateway, then run ``gateway keys rotate``; it
re-encrypts everything under that first key and says when the old ones can be removed.

Running gateways read their keys at startup: restart them after a rotation of generated
keys so they encrypt with the new key too. Rows they write meanwhile use the old key
(still listed), and a second ``rotate --prune`` after the restart catches them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from cryptography.fernet import Fernet

from gateway.config import GatewayConfig
from gateway.crypto import TokenCipher


def add_commands(sub: argparse._SubParsersAction) -> None:
    keys = sub.add_parser("keys", help="token encryption keys").add_subparsers(
        dest="action", required=True
    )
    p = keys.add_parser("rotate", help="new key first, re-encrypt every stored token")
    p.add_argument("--new-key", help="use this Fernet key instead of generating one")
    p.add_argument(
        "--prune", action="store_true", help="drop the old generated keys after re-encrypting"
    )
    p.set_defaults(handler=_rotate_handler)


def _rotate_handler(args: argparse.Namespace, config: GatewayConfig) -> int:
    try:
        return asyncio.run(rotate(config, new_key=args.new_key, prune=args.prune))
    except ValueError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2


def new_key_ring(config: GatewayConfig, new_key: str | None) -> tuple[str, ...]:
    """The keys to use from now on (newest first), written to the generated secrets file
    when the keys are generated ones.

    :raises ValueError: for a malformed ``--new-key``, or ``--new-key`` with configured keys.
    """
    from gateway.secrets import new_fernet_key, read_generated, write_generated

    if config.gateway.encryption_keys:
        if new_key:
            raise ValueError(
                "encryption_keys are configured: put the new key first in encryption_keys, "
                "restart the gateway, then run `gateway keys rotate` without --new-key"
            )
        return tuple(k.get_secret_value() for k in config.gateway.encryption_keys)
    key = new_key or new_fernet_key()
    try:
        Fernet(key.encode())
    except ValueError:
        raise ValueError("--new-key is not a Fernet key (32 url-safe base64 bytes)") from None
    generated = read_generated(config)
    old = [str(k) for k in generated.get("encryption_keys") or [] if str(k) != key]
    generated["encryption_keys"] = [key, *old]
    write_generated(config, generated)
    return (key, *old)


async def reencrypt_all(cipher: TokenCipher) -> dict[str, int]:
    """Re-encrypt every token column (and the secrets of team settings) under the
    cipher's first key. Each row is updated only if it still holds the ciphertext that
    was read (a refresh or a settings change running meanwhile wins, and the next run
    picks its row up)."""
    from gateway.oauth.models import OAuthConnection, OAuthState
    from gateway.team_settings.models import TeamPluginSettings

    counts = {"connections": 0, "states": 0, "team_settings": 0, "skipped": 0}
    for model, columns, label in (
        (OAuthConnection, ("access_token_enc", "refresh_token_enc"), "connections"),
        (OAuthState, ("code_verifier_enc",), "states"),
        (TeamPluginSettings, ("secrets_enc",), "team_settings"),
    ):
        for row in await model.all():
            old = {c: getattr(row, c) for c in columns}
            new = {c: cipher.rotate(v) if v else v for c, v in old.items()}
            if new == old:
                continue
            current = {c: v for c, v in old.items() if v is not None}
            changed = await model.filter(id=row.id, **current).update(**new)
            counts[label if changed else "skipped"] += 1
    return counts


async def rotate(config: GatewayConfig, new_key: str | None = None, prune: bool = False) -> int:
    from gateway.app import opened
    from gateway.commands import print_json
    from gateway.secrets import read_generated, write_generated

    keys = new_key_ring(config, new_key)
    async with opened(config) as gw:
        if await gw.db.pending_migrations():
            print("gateway: migrations pending; run `gateway migrate`", file=sys.stderr)
            return 1
        counts = await reencrypt_all(TokenCipher(keys))
    result: dict[str, Any] = {"rotated": counts, "keys": len(keys)}
    if config.gateway.encryption_keys:
        result["next"] = "old keys may now be removed from encryption_keys after a restart"
    elif prune and counts["skipped"] == 0:
        generated = read_generated(config)
        generated["encryption_keys"] = [keys[0]]
        write_generated(config, generated)
        result["keys"] = 1
    else:
        result["next"] = "restart the gateway so it encrypts with the new key"
    print_json(result)
    return 0

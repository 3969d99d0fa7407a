"""Password hashing lives with the users it protects (:mod:`gateway.identity.passwords`);
this name stays for the code that imported it from here."""

from __future__ import annotations

from gateway.identity.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    check_strength,
    hash_password,
    needs_rehash,
    rehash,
    verify_password,
)

__all__ = [
    "MAX_LENGTH",
    "MIN_LENGTH",
    "check_strength",
    "hash_password",
    "needs_rehash",
    "rehash",
    "verify_password",
]

"""Password hashing with argon2id (argon2-cffi's defaults, RFC 9106 low-memory profile).

Unknown e-mail addresses still cost one hash verification, so the login endpoint's
timing does not tell an attacker which addresses have accounts.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.errors import ValidationError

MIN_LENGTH = 10
MAX_LENGTH = 1024  # argon2 accepts anything; a cap stops a megabyte "password" DoS

_hasher = PasswordHasher()
# A hash of a random throwaway password, verified against when the user is unknown.
_DUMMY_HASH = _hasher.hash("dummy password that nobody will ever type")


def check_strength(password: str, field: str = "password") -> None:
    """Reject passwords too short to resist offline guessing of a leaked hash."""
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        raise ValidationError(
            f"{field} must be at least {MIN_LENGTH} characters", extra={"field": field}
        )
    if len(password) > MAX_LENGTH:
        raise ValidationError(f"{field} is too long", extra={"field": field})


def hash_password(password: str) -> str:
    check_strength(password)
    return _hasher.hash(password)


def rehash(password: str) -> str:
    """A fresh hash of an already accepted password (no strength check: a password set
    under an older policy must keep working)."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches. A missing hash (user without a password, or no
    such user) burns the same time and answers False."""
    if not isinstance(password, str) or len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's defaults."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return False

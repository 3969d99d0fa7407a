"""Encryption at rest for provider tokens.

Fernet (AES-128-CBC + HMAC-SHA256, with a timestamp) through ``MultiFernet``: the first
key encrypts, every key decrypts, so a new key can be put first while rows written
under the old ones keep working until ``gateway keys rotate`` re-encrypts them. The keys
come from :class:`gateway.secrets.OwnedSecrets` (configured, or generated on first use).
"""

from __future__ import annotations

from collections.abc import Iterable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = ["InvalidToken", "TokenCipher"]


class TokenCipher:
    """Encrypt and decrypt short secrets (tokens) as ASCII strings fit for a text column."""

    def __init__(self, keys: Iterable[str]) -> None:
        fernets = [Fernet(k.encode() if isinstance(k, str) else k) for k in keys]
        if not fernets:
            raise ValueError("at least one encryption key is required")
        self._multi = MultiFernet(fernets)

    def encrypt(self, plaintext: str) -> str:
        return self._multi.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        """:raises InvalidToken: when no configured key opens it (or it was tampered with)."""
        return self._multi.decrypt(ciphertext.encode("ascii")).decode()

    def encrypt_optional(self, plaintext: str | None) -> str | None:
        return None if plaintext is None else self.encrypt(plaintext)

    def decrypt_optional(self, ciphertext: str | None) -> str | None:
        return None if ciphertext is None else self.decrypt(ciphertext)

    def rotate(self, ciphertext: str) -> str:
        """The same plaintext under the newest key (``MultiFernet.rotate`` keeps the
        original timestamp)."""
        return self._multi.rotate(ciphertext.encode("ascii")).decode("ascii")

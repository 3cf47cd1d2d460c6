"""Users' secret keys: generated, stored salted and hashed, checked in constant time.

Secrets are checked on every request, so the hash must be cheap: SHA-256 of a salted secret,
which is sound for generated keys (256 random bits). Operators who choose their own key with
``--secret`` should make it as random.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def generate_secret() -> str:
    """A new secret key: 43 URL-safe characters, 256 random bits."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str, salt: bytes | None = None) -> tuple[bytes, bytes]:
    """(salt, hash) to store for ``secret``."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    return salt, hashlib.sha256(salt + secret.encode()).digest()


def secret_matches(secret: str, salt: bytes, stored_hash: bytes) -> bool:
    """Whether ``secret`` is the one whose hash was stored."""
    return hmac.compare_digest(hash_secret(secret, salt)[1], stored_hash)

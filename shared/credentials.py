"""Users' secret keys: generated, stored salted and hashed, checked in constant time.

Secrets are checked on every request, so the hash must be cheap: SHA-256 of a salted secret,
which is sound for generated keys (256 random bits). Operators who choose their own key with
``--secret`` should make it as random.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

# App keys' names (the ``username`` an app sends) start with this; no user's name may.
APP_KEY_PREFIX = "ak_"


def generate_app_key_name() -> str:
    """A new app key's name: the prefix and 80 random bits in hex."""
    return APP_KEY_PREFIX + secrets.token_hex(10)


def generate_secret() -> str:
    """A new secret key: 43 URL-safe characters, 256 random bits."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str, salt: bytes | None = None) -> tuple[bytes, bytes]:
    """(salt, hash) to store for ``secret``."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    return salt, hashlib.sha256(salt + secret.encode()).digest()


def secret_matches(secret: str, salt: bytes | None, stored_hash: bytes | None) -> bool:
    """Whether ``secret`` is the one whose hash was stored. With nothing stored (no such
    user) the same work is done, so that the answer's timing does not tell names apart."""
    if salt is None or stored_hash is None:
        hmac.compare_digest(hash_secret(secret, _NO_SALT)[1], _NO_HASH)
        return False
    return hmac.compare_digest(hash_secret(secret, salt)[1], stored_hash)


_NO_SALT = bytes(16)
_NO_HASH = bytes(32)

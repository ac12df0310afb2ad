"""HMAC-signed, expiring links for the local backend (its stand-in for S3 presigned URLs).

The API serves ``/storage/<key>?expires=..&signature=..`` by checking ``verify_signature`` and
then streaming the file, so a link can be handed to a browser or ``curl`` without a token.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from .keys import validate_key


def _message(key: str, expires: int) -> bytes:
    return f"{key}\n{expires}".encode()


def sign(key: str, expires: int, secret: bytes) -> str:
    """Hex HMAC-SHA256 over the key and the expiry time (unix seconds)."""
    return hmac.new(secret, _message(key, expires), hashlib.sha256).hexdigest()


def verify_signature(
    key: str,
    expires: int | str,
    signature: str,
    secret: bytes,
    now: float | None = None,
) -> bool:
    """True if ``signature`` was made with ``secret`` for this key and has not expired.

    Accepts ``expires`` straight from a query string; any malformed input is simply invalid.
    """
    try:
        validate_key(key)
        expires_at = int(expires)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if current > expires_at:
        return False
    return hmac.compare_digest(sign(key, expires_at, secret), str(signature))

"""Pick the raw credential out of a request's cookie and ``Authorization`` header.

Order follows conda-store: the first credential *present* wins, even when it turns out invalid:
1. cookie ``conda-store-auth`` (if non-empty);
2. ``Authorization: Bearer <jwt>``;
3. ``Authorization: Basic base64(<anything>:<jwt>)`` — the password part is the token.
Any other scheme, or a header that cannot be parsed, means anonymous. Upstream answers a bare
``Bearer`` with 500; here it is simply anonymous.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

AUTH_COOKIE_NAME = "conda-store-auth"


def credential_from_basic(value: str) -> str | None:
    """The password of a Basic credential, or ``None`` if it is not base64 ``user:password``."""
    try:
        decoded = base64.b64decode(value).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    _user, sep, password = decoded.partition(":")
    return password if sep else None


def credential_from_authorization(header: str | None) -> str | None:
    """The token carried by an ``Authorization`` header value (scheme is case-insensitive)."""
    if not header:
        return None
    scheme, _sep, rest = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return rest or None
    if scheme == "basic":
        return credential_from_basic(rest)
    return None


def extract_credential(
    cookies: Mapping[str, str],
    authorization: str | None,
    cookie_name: str = AUTH_COOKIE_NAME,
) -> str | None:
    """The raw token string for this request, or ``None`` when the caller presents none.

    The cookie beats the header so a browser session is not overridden by a stale header, as
    upstream does.
    """
    cookie = cookies.get(cookie_name)
    if cookie:
        return cookie
    return credential_from_authorization(authorization)

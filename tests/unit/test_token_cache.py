"""A verified token is remembered by its exact text, but its expiry is still checked each time."""

from __future__ import annotations

import time
from datetime import timedelta

from shared.auth import AuthenticationToken
from shared.auth.tokens import TokenCodec, utcnow

SECRET = "cache-secret-0123456789abcdef0123456789abcdef"


def test_a_remembered_token_still_expires() -> None:
    codec = TokenCodec(SECRET)
    token = codec.encode(AuthenticationToken(exp=utcnow() + timedelta(seconds=1)))
    first = codec.authenticate(token)
    assert first is not None
    assert codec.authenticate(token) is first  # verified once
    time.sleep(1.1)
    assert codec.authenticate(token) is None


def test_forged_and_garbage_tokens_stay_anonymous() -> None:
    codec = TokenCodec(SECRET)
    other = TokenCodec("another-secret-0123456789abcdef0123456789ab")
    forged = other.encode(AuthenticationToken(role_bindings={"*/*": ["admin"]}))
    for credential in (forged, "garbage", forged):
        assert codec.authenticate(credential) is None

"""The identity token (``AuthenticationToken``) and its JWT form.

The JWT must stay interchangeable with conda-store's: HS256 over the JSON object ``{"exp": <epoch
seconds>, "primary_namespace": str, "role_bindings": {arn: [roles]}}`` in that key order, so tokens
minted by either implementation (with the same secret) decode in the other.
"""

from __future__ import annotations

import calendar
import secrets
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.auth.arn import validate_binding_key
from shared.wire import find_bad_text, text_problem

DEFAULT_JWT_ALGORITHM = "HS256"
TOKEN_LIFETIME = timedelta(days=1)
VERIFIED_CACHE_SIZE = 4096


def utcnow() -> datetime:
    """Timezone-aware now; every expiry comparison in this package is between aware datetimes."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Read naive datetimes as UTC, as conda-store (and PyJWT) do, so comparisons never raise."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def normalize_roles(roles: Iterable[str]) -> list[str]:
    """Roles as a list: sequences keep their order; sets (config defaults) are sorted."""
    if isinstance(roles, str):
        return [roles]
    if isinstance(roles, Set):
        return sorted(roles)
    return list(roles)


class AuthenticationToken(BaseModel):
    """Who the caller is and what extra role bindings it carries."""

    model_config = ConfigDict(extra="ignore")

    exp: datetime = Field(default_factory=lambda: utcnow() + TOKEN_LIFETIME)
    primary_namespace: str = "default"
    role_bindings: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("exp")
    @classmethod
    def _exp_is_utc(cls, value: datetime) -> datetime:
        return as_utc(value)

    @field_validator("primary_namespace")
    @classmethod
    def _namespace_is_storable(cls, value: str) -> str:
        """A token is read on every request; text no query can carry would fail them all."""
        problem = text_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("role_bindings")
    @classmethod
    def _roles_are_storable(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        found = find_bad_text(value)
        if found:
            raise ValueError(f"{found[1]} ({found[0]})")
        return value

    @field_validator("role_bindings", mode="before")
    @classmethod
    def _bindings_shape(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {
                validate_binding_key(k): (
                    normalize_roles(v) if isinstance(v, Set | str | tuple) else v
                )
                for k, v in value.items()
            }
        return value


def token_payload(token: AuthenticationToken) -> dict[str, Any]:
    """The JWT claims for ``token``; ``exp`` as integer epoch seconds, as PyJWT does."""
    return {
        "exp": calendar.timegm(token.exp.utctimetuple()),
        "primary_namespace": token.primary_namespace,
        "role_bindings": {k: list(v) for k, v in token.role_bindings.items()},
    }


def encode_token(
    token: AuthenticationToken, secret: str, algorithm: str = DEFAULT_JWT_ALGORITHM
) -> str:
    """Sign ``token`` as a JWT."""
    return jwt.encode(token_payload(token), secret, algorithm=algorithm)


def decode_token(
    encoded: str | None, secret: str, algorithm: str = DEFAULT_JWT_ALGORITHM
) -> AuthenticationToken | None:
    """Verify and parse a JWT; ``None`` (anonymous) for anything invalid, expired or malformed.

    Bad credentials must degrade to anonymous rather than error, because conda-store answers such
    requests as an unauthenticated caller (e.g. ``GET /permission/`` returns 200 with
    ``authenticated: false``).
    """
    if not encoded or not isinstance(encoded, str):
        return None
    try:
        claims = jwt.decode(encoded, secret, algorithms=[algorithm])
        return AuthenticationToken.model_validate(claims)
    except Exception:
        return None


def generate_secret() -> str:
    """A fresh random signing secret (upstream's default: 256 hex characters, per process)."""
    return secrets.token_hex(128)


@dataclass(frozen=True)
class TokenCodec:
    """Signing config plus ``predefined_tokens`` (literal string -> token dict, for services)."""

    secret: str
    algorithm: str = DEFAULT_JWT_ALGORITHM
    predefined_tokens: Mapping[str, Mapping[str, Any] | AuthenticationToken] = field(
        default_factory=dict
    )
    # Verifying a JWT (HMAC key checks, claims, the model) was a tenth of the API's CPU under
    # load, for the same few tokens again and again; a signed token never changes, so each
    # credential is verified once and only its expiry is checked on later requests.
    _verified: OrderedDict[str, AuthenticationToken | None] = field(
        default_factory=OrderedDict, compare=False, repr=False
    )

    def encode(self, token: AuthenticationToken) -> str:
        """Sign ``token``."""
        return encode_token(token, self.secret, self.algorithm)

    def authenticate(self, credential: str | None) -> AuthenticationToken | None:
        """Resolve a raw credential: predefined tokens first, then JWT; ``None`` means anonymous.

        A predefined token without ``exp`` gets a fresh now+1 day each time, matching upstream which
        re-validates the configured dict on every request.
        """
        if credential is None:
            return None
        predefined = self.predefined_tokens.get(credential)
        if predefined is not None:
            try:
                if isinstance(predefined, AuthenticationToken):
                    return predefined
                return AuthenticationToken.model_validate(dict(predefined))
            except Exception:
                return None
        if credential in self._verified:
            self._verified.move_to_end(credential)
            token = self._verified[credential]
        else:
            token = decode_token(credential, self.secret, self.algorithm)
            self._verified[credential] = token
            if len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        if token is not None and token.exp <= utcnow():
            return None
        return token


def format_expiration(exp: datetime) -> str:
    """``exp`` as ``/permission/`` shows it: ISO-8601 UTC with a ``Z`` suffix, as pydantic does."""
    return as_utc(exp).isoformat().replace("+00:00", "Z")

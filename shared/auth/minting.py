"""``POST /api/v1/token/``: derive a new token that can never exceed the caller's own rights."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from shared.auth.arn import is_arn_subset
from shared.auth.bindings import (
    AUTHENTICATED_ROLE_BINDINGS,
    RoleBindings,
    binding_permissions,
    effective_bindings,
)
from shared.auth.permissions import DEFAULT_ROLE_MAPPINGS, RoleMappings
from shared.auth.tokens import TOKEN_LIFETIME, AuthenticationToken, as_utc, utcnow

SUBSET_ERROR = "Requested role_bindings are not a subset of current permissions"
EXPIRATION_ERROR = "Requested expiration of token is greater than current permissions"

DbBindingsLookup = Callable[[str], RoleBindings]


class TokenMintError(Exception):
    """A mint request asks for more than the caller has; the API answers 400 with ``message``."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _no_db_bindings(_namespace: str) -> RoleBindings:
    return {}


def is_subset_bindings(
    caller_bindings: RoleBindings,
    new_bindings: RoleBindings,
    role_mappings: RoleMappings = DEFAULT_ROLE_MAPPINGS,
) -> bool:
    """Whether each new binding's permissions are covered by the caller's bindings that contain it.

    For each new key, the caller's permissions are pooled over every caller key that is an
    ARN-superset of it (``*/*`` vouches for ``team/*``; ``team/*`` does not vouch for ``*/*``), so
    rights split across keys still count.
    """
    caller = binding_permissions(caller_bindings, role_mappings)
    for new_key, new_perms in binding_permissions(new_bindings, role_mappings).items():
        available = frozenset().union(
            *(perms for key, perms in caller.items() if is_arn_subset(new_key, key))
        )
        if not new_perms <= available:
            return False
    return True


def anonymous_mint_caller(
    default_namespace: str, now: datetime | None = None
) -> AuthenticationToken:
    """The synthetic identity an anonymous caller mints with; it counts as *authenticated*."""
    return AuthenticationToken(
        exp=(now or utcnow()) + TOKEN_LIFETIME,
        primary_namespace=default_namespace,
        role_bindings={},
    )


def mint_token(
    caller: AuthenticationToken | None,
    *,
    primary_namespace: str | None = None,
    expiration: datetime | None = None,
    role_bindings: Mapping[str, Sequence[str]] | None = None,
    default_namespace: str = "default",
    authenticated_defaults: RoleBindings = AUTHENTICATED_ROLE_BINDINGS,
    db_bindings_for: DbBindingsLookup = _no_db_bindings,
    role_mappings: RoleMappings = DEFAULT_ROLE_MAPPINGS,
    now: datetime | None = None,
) -> AuthenticationToken:
    """Build the token ``POST /token/`` returns, or raise :class:`TokenMintError`.

    Omitted (or empty/falsy) fields inherit from the caller: its expiry, its primary namespace and
    its full *effective* bindings. Both the caller and the new token are evaluated as authenticated,
    each with the database bindings of its own primary namespace: ``db_bindings_for(namespace)``
    must be a pure lookup, so prefetch for ``caller.primary_namespace`` and the requested
    ``primary_namespace``. The subset check runs before the expiry check, matching upstream's error
    precedence. Invalid binding keys raise ``InvalidArnError``-caused ``ValidationError`` and
    unknown roles ``UnknownRoleError`` (upstream: 500).
    """
    if caller is None:
        caller = anonymous_mint_caller(default_namespace, now)

    caller_bindings = effective_bindings(
        caller,
        authenticated=True,
        authenticated_defaults=authenticated_defaults,
        db_bindings=db_bindings_for(caller.primary_namespace),
    )
    new_token = AuthenticationToken(
        exp=expiration or caller.exp,
        primary_namespace=primary_namespace or caller.primary_namespace,
        role_bindings=dict(role_bindings) if role_bindings else caller_bindings,
    )
    new_bindings = effective_bindings(
        new_token,
        authenticated=True,
        authenticated_defaults=authenticated_defaults,
        db_bindings=db_bindings_for(new_token.primary_namespace),
    )

    if not is_subset_bindings(caller_bindings, new_bindings, role_mappings):
        raise TokenMintError(SUBSET_ERROR)
    if as_utc(new_token.exp) > as_utc(caller.exp):
        raise TokenMintError(EXPIRATION_ERROR)
    return new_token

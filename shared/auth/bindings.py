"""Role bindings: which roles a caller holds on which ARN globs, and what that lets it do.

Bindings are plain ``{binding_key: [role, ...]}`` dicts. Insertion order matters only for
presentation (``/permission/`` lists keys in the order the sources were merged).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from shared.auth.arn import arn_matches, glob_matches_name, split_binding_key, sql_like_patterns
from shared.auth.permissions import (
    DEFAULT_ROLE_MAPPINGS,
    Permission,
    RoleMappings,
    roles_to_permissions,
)
from shared.auth.tokens import AuthenticationToken, format_expiration, normalize_roles

RoleBindings = Mapping[str, Iterable[str]]

# ``RBACAuthorizationBackend.unauthenticated_role_bindings`` / ``authenticated_role_bindings``
# defaults.
UNAUTHENTICATED_ROLE_BINDINGS: RoleBindings = MappingProxyType({"default/*": ("viewer",)})
AUTHENTICATED_ROLE_BINDINGS: RoleBindings = MappingProxyType(
    {"default/*": ("viewer",), "filesystem/*": ("viewer",)}
)


@dataclass(frozen=True)
class RoleDefaults:
    """The configured defaults a caller's bindings start from (conda-store's RBAC traitlets)."""

    unauthenticated: Mapping[str, list[str]]
    authenticated: Mapping[str, list[str]]
    mappings_version: int = 1


def effective_bindings(
    token: AuthenticationToken | None,
    authenticated: bool,
    unauthenticated_defaults: RoleBindings = UNAUTHENTICATED_ROLE_BINDINGS,
    authenticated_defaults: RoleBindings = AUTHENTICATED_ROLE_BINDINGS,
    db_bindings: RoleBindings | None = None,
) -> dict[str, list[str]]:
    """Merge the binding sources for one caller.

    Anonymous: unauthenticated defaults, then the token's. Authenticated: authenticated defaults,
    then the token's, then the database's (role mappings of the caller's primary namespace). A later
    source *replaces* the roles of an identical key rather than adding to them — that is how a token
    can narrow a default. ``db_bindings`` is ignored for anonymous callers, as upstream never
    queries them.
    """
    sources: list[RoleBindings] = (
        [authenticated_defaults] if authenticated else [unauthenticated_defaults]
    )
    if token is not None:
        sources.append(token.role_bindings)
    if authenticated and db_bindings:
        sources.append(db_bindings)
    merged: dict[str, list[str]] = {}
    for source in sources:
        for key, roles in source.items():
            merged[key] = normalize_roles(roles)
    return merged


def binding_permissions(
    bindings: RoleBindings, role_mappings: RoleMappings = DEFAULT_ROLE_MAPPINGS
) -> dict[str, frozenset[Permission]]:
    """Permissions granted per binding key (not yet matched against any resource)."""
    return {key: roles_to_permissions(roles, role_mappings) for key, roles in bindings.items()}


def entity_permissions(
    bindings: RoleBindings, arn: str, role_mappings: RoleMappings = DEFAULT_ROLE_MAPPINGS
) -> set[Permission]:
    """Everything the caller may do on ``arn``: the union over every binding key that matches it."""
    result: set[Permission] = set()
    for key, roles in bindings.items():
        if arn_matches(key, arn):
            result |= roles_to_permissions(roles, role_mappings)
    return result


def is_authorized(
    bindings: RoleBindings,
    arn: str,
    permissions_required: Permission | Iterable[Permission],
    role_mappings: RoleMappings = DEFAULT_ROLE_MAPPINGS,
) -> bool:
    """Whether all of ``permissions_required`` are held on ``arn``; an empty set always is."""
    required = (
        {permissions_required}
        if isinstance(permissions_required, str)
        else set(permissions_required)
    )
    return required <= entity_permissions(bindings, arn, role_mappings)


def list_filter_patterns(bindings: RoleBindings) -> list[tuple[str, str]]:
    """Distinct (namespace, name) SQL LIKE patterns (escape ``\\``) of every key, in key order.

    List endpoints (namespaces, environments, builds, usage) show any object matched by *any*
    binding regardless of its roles, so the roles are deliberately ignored. An empty result must
    list nothing.
    """
    patterns: list[tuple[str, str]] = []
    for key in bindings:
        pair = sql_like_patterns(key)
        if pair not in patterns:
            patterns.append(pair)
    return patterns


def is_visible(bindings: RoleBindings, namespace: str, name: str | None = None) -> bool:
    """In-memory twin of the list filter: is this namespace (or environment) shown in lists?"""
    for key in bindings:
        ns_glob, name_glob = split_binding_key(key)
        if glob_matches_name(ns_glob, namespace) and (
            name is None or glob_matches_name(name_glob, name)
        ):
            return True
    return False


def permission_response_data(
    token: AuthenticationToken | None,
    bindings: RoleBindings,
    default_namespace: str = "default",
    role_mappings: RoleMappings = DEFAULT_ROLE_MAPPINGS,
) -> dict[str, Any]:
    """The ``data`` object of ``GET /api/v1/permission/``.

    ``bindings`` must be the caller's effective bindings. Permissions are listed per binding key
    (not resolved against any resource) and sorted by their string value, so ``environment::*``
    sorts before ``environment:create``. Anonymous callers report ``default_namespace`` and a null
    expiration.
    """
    authenticated = token is not None
    return {
        "authenticated": authenticated,
        "primary_namespace": token.primary_namespace if token is not None else default_namespace,
        "entity_permissions": {
            key: sorted(p.value for p in perms)
            for key, perms in binding_permissions(bindings, role_mappings).items()
        },
        "entity_roles": {key: normalize_roles(roles) for key, roles in bindings.items()},
        "expiration": format_expiration(token.exp) if token is not None else None,
    }

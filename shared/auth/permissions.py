"""Permissions, roles and the role -> permission table of conda-store 2025.2.2.

The string values are what clients see in ``GET /api/v1/permission/``, so they must match upstream
byte for byte, including the single colon in ``environment:create`` that upstream ships.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from enum import StrEnum
from types import MappingProxyType


class Permission(StrEnum):
    """An action on an ARN; values are conda-store's wire strings."""

    ENVIRONMENT_CREATE = "environment:create"
    ENVIRONMENT_READ = "environment::read"
    ENVIRONMENT_UPDATE = "environment::update"
    ENVIRONMENT_DELETE = "environment::delete"
    ENVIRONMENT_SOLVE = "environment::solve"
    BUILD_CANCEL = "build::cancel"
    BUILD_DELETE = "build::delete"
    NAMESPACE_CREATE = "namespace::create"
    NAMESPACE_READ = "namespace::read"
    NAMESPACE_UPDATE = "namespace::update"
    NAMESPACE_DELETE = "namespace::delete"
    NAMESPACE_ROLE_MAPPING_CREATE = "namespace-role-mapping::create"
    NAMESPACE_ROLE_MAPPING_READ = "namespace-role-mapping::read"
    NAMESPACE_ROLE_MAPPING_UPDATE = "namespace-role-mapping::update"
    NAMESPACE_ROLE_MAPPING_DELETE = "namespace-role-mapping::delete"
    SETTING_READ = "setting::read"
    SETTING_UPDATE = "setting::update"


class Role(StrEnum):
    """Built-in role names.

    ``editor`` is the user-facing name and ``developer`` the name stored in the database; both
    resolve to the same permissions (see :func:`role_permissions`).
    """

    VIEWER = "viewer"
    EDITOR = "editor"
    DEVELOPER = "developer"
    ADMIN = "admin"

    @property
    def stored(self) -> Role:
        """The form the database keeps: ``editor`` is written as ``developer``."""
        return Role.DEVELOPER if self is Role.EDITOR else self


P = Permission

VIEWER_PERMISSIONS: frozenset[Permission] = frozenset(
    {P.ENVIRONMENT_READ, P.NAMESPACE_READ, P.NAMESPACE_ROLE_MAPPING_READ}
)
EDITOR_PERMISSIONS: frozenset[Permission] = VIEWER_PERMISSIONS | {
    P.BUILD_CANCEL,
    P.ENVIRONMENT_CREATE,
    P.ENVIRONMENT_UPDATE,
    P.ENVIRONMENT_SOLVE,
    P.SETTING_READ,
}
ADMIN_PERMISSIONS: frozenset[Permission] = frozenset(Permission)

# Mirrors ``RBACAuthorizationBackend.role_mappings``' default; deployments may pass their own
# mapping.
RoleMappings = Mapping[str, Set[Permission]]
DEFAULT_ROLE_MAPPINGS: RoleMappings = MappingProxyType(
    {
        Role.VIEWER.value: VIEWER_PERMISSIONS,
        Role.EDITOR.value: EDITOR_PERMISSIONS,
        Role.ADMIN.value: ADMIN_PERMISSIONS,
    }
)

# Roles the role-mapping tables accept after the editor -> developer conversion.
STORABLE_ROLES: frozenset[str] = frozenset({"admin", "viewer", "developer"})


class UnknownRoleError(ValueError):
    """A binding names a role absent from the role mappings (upstream answers 500 here)."""

    def __init__(self, role: str) -> None:
        super().__init__(f"role={role} not valid role name")
        self.role = role


class InvalidRoleError(ValueError):
    """A role-mapping write names a role the database does not accept."""


def role_permissions(
    role: str, role_mappings: RoleMappings = DEFAULT_ROLE_MAPPINGS
) -> frozenset[Permission]:
    """Permissions granted by one role.

    ``developer`` (the stored name) and ``editor`` (the user-facing alias) look up
    ``role_mappings["editor"]`` first and fall back to ``role_mappings["developer"]``, so configs
    written with either name keep working. Upstream raises for a literal ``editor`` here; accepting
    it is deliberate since it can only grant what ``developer`` grants.
    """
    if role in (Role.DEVELOPER, Role.EDITOR):
        perms = role_mappings.get(Role.EDITOR.value) or role_mappings.get(Role.DEVELOPER.value)
    else:
        perms = role_mappings.get(role)
    if perms is None:
        raise UnknownRoleError(role)
    return frozenset(Permission(p) for p in perms)


def roles_to_permissions(
    roles: Iterable[str], role_mappings: RoleMappings = DEFAULT_ROLE_MAPPINGS
) -> frozenset[Permission]:
    """Union of the permissions of ``roles``; an empty role list grants nothing."""
    result: frozenset[Permission] = frozenset()
    for role in roles:
        result |= role_permissions(role, role_mappings)
    return result


def storable_role(role: str, *, mapping_version: int = 1) -> str:
    """Normalise a role for writing into a role-mapping table (``editor`` -> ``developer``).

    The error text reproduces upstream's ORM validators, which the API returns as a 400 detail: the
    v1 table says ``invalid entity=<role>`` (sic) and the v2 table ``invalid role=<role>``.
    """
    normalized = Role.DEVELOPER.value if role == Role.EDITOR else role
    if normalized not in STORABLE_ROLES:
        label = "entity" if mapping_version == 1 else "role"
        raise InvalidRoleError(f"invalid {label}={role}")
    return normalized

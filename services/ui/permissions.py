"""What the current user may do, from ``GET /api/v1/permission/``, to hide what they may not.

Hiding is a courtesy only: the API checks every action again and its refusal is shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.auth.arn import InvalidArnError, arn_matches

ENVIRONMENT_CREATE = "environment:create"
ENVIRONMENT_READ = "environment::read"
ENVIRONMENT_UPDATE = "environment::update"
ENVIRONMENT_DELETE = "environment::delete"
BUILD_CANCEL = "build::cancel"
BUILD_DELETE = "build::delete"
NAMESPACE_CREATE = "namespace::create"
NAMESPACE_DELETE = "namespace::delete"
SETTING_READ = "setting::read"
SETTING_UPDATE = "setting::update"


@dataclass
class Viewer:
    """The caller as the API sees them."""

    authenticated: bool = False
    primary_namespace: str = "default"
    entity_permissions: dict[str, list[str]] = field(default_factory=dict)
    entity_roles: dict[str, list[str]] = field(default_factory=dict)
    expiration: str | None = None

    @classmethod
    def from_api(cls, data: dict[str, Any] | None) -> Viewer:
        if not data:
            return cls()
        return cls(
            authenticated=bool(data.get("authenticated")),
            primary_namespace=data.get("primary_namespace") or "default",
            entity_permissions=data.get("entity_permissions") or {},
            entity_roles=data.get("entity_roles") or {},
            expiration=data.get("expiration"),
        )

    def can(self, permission: str, arn: str) -> bool:
        """Whether any binding that covers ``arn`` grants ``permission``."""
        for key, permissions in self.entity_permissions.items():
            if permission not in permissions:
                continue
            try:
                if arn_matches(key, arn):
                    return True
            except InvalidArnError:
                continue
        return False

    def can_anywhere(self, permission: str) -> bool:
        """Whether some binding grants ``permission`` (to show forms whose target is typed in)."""
        return any(permission in perms for perms in self.entity_permissions.values())

    def creatable_namespaces(self, namespaces: list[str]) -> list[str]:
        """Namespaces where a new environment may be submitted, primary namespace first."""
        names = list(dict.fromkeys([self.primary_namespace, *namespaces]))
        # A bare namespace ARN is covered by every key whose namespace part matches it.
        return [ns for ns in names if self.can(ENVIRONMENT_CREATE, ns)]

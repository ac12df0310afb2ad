"""Who a caller is, with what the database adds: role mappings and the shared signing secret.

The pure rules live in ``shared.auth``; this adapter reads the namespaces read model, so the
API gateway and the registry decide access identically.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg

from shared.artifacts import local_signing_key
from shared.auth import AuthenticationToken, RoleDefaults, effective_bindings


def jwt_secret(secret: str, data_dir: Path) -> str:
    """The token-signing secret every service shares: configured, else one kept in data_dir."""
    return secret or local_signing_key(secret, data_dir).hex()


async def db_role_bindings(
    pool: asyncpg.Pool, primary_namespace: str, version: int = 1
) -> dict[str, list[str]]:
    """Role mappings stored for the caller's primary namespace (v1) or granted to it (v2)."""
    try:
        if version == 1:
            value = await pool.fetchval(
                "SELECT role_mappings FROM namespaces WHERE name = $1 AND deleted_on IS NULL",
                primary_namespace,
            )
            return dict(value or {})
        rows = await pool.fetch(
            "SELECT n.name, m->>'role' AS role FROM namespaces n, "
            "jsonb_array_elements(n.role_mappings_v2) m "
            "WHERE n.deleted_on IS NULL AND m->>'other_namespace' = $1",
            primary_namespace,
        )
    except asyncpg.UndefinedTableError:  # read model not created yet
        return {}
    return {f"{r['name']}/*": [r["role"]] for r in rows}


async def caller_bindings(
    pool: asyncpg.Pool, defaults: RoleDefaults, token: AuthenticationToken | None
) -> dict[str, list[str]]:
    """Effective role bindings of an anonymous (None) or authenticated caller."""
    if token is None:
        return effective_bindings(None, False, unauthenticated_defaults=defaults.unauthenticated)
    return effective_bindings(
        token,
        True,
        authenticated_defaults=defaults.authenticated,
        db_bindings=await db_role_bindings(
            pool, token.primary_namespace, defaults.mappings_version
        ),
    )

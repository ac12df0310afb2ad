"""The solve cache in Postgres: one result per normalized request and repodata fingerprint.

Shared by every solver replica and by the NATS endpoint, so a spec solved once (by a build or
by ``conda-store solve``) is answered from here next time, as long as the channels' repodata is
unchanged. The fingerprint is part of the key, so stale entries are simply never looked up.
"""

from __future__ import annotations

import asyncpg

from .types import SolveRequest, SolveResult


class SolveCache:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def get(self, key: str) -> SolveResult | None:
        raw = await self.pool.fetchval(
            "UPDATE solve_cache SET last_hit_at = now() WHERE cache_key = $1 RETURNING result",
            key,
        )
        return None if raw is None else SolveResult.model_validate(raw)

    async def put(self, key: str, request: SolveRequest, result: SolveResult) -> None:
        await self.pool.execute(
            "INSERT INTO solve_cache (cache_key, request, result) VALUES ($1, $2, $3) "
            "ON CONFLICT (cache_key) DO NOTHING",
            key,
            request.normalized(),
            result.model_dump(mode="json"),
        )

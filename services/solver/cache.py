"""The solve cache in Postgres: one result per normalized request and repodata fingerprint.

Shared by every solver replica and by the NATS endpoint, so a spec solved once (by a build or
by ``conda-store solve``) is answered from here next time, as long as the channels' repodata is
unchanged. The fingerprint is part of the key, so stale entries are simply never looked up.
Results travel as JSON text and are parsed by pydantic's Rust core: a hit must take
milliseconds even for environments of a thousand packages.
"""

from __future__ import annotations

import asyncio

import asyncpg

from .types import SolveRequest, SolveResult


class SolveCache:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._touches: set[asyncio.Task[None]] = set()

    async def get(self, key: str) -> SolveResult | None:
        raw = await self.pool.fetchval(
            "SELECT result::text FROM solve_cache WHERE cache_key = $1", key
        )
        if raw is None:
            return None
        task = asyncio.create_task(self._touch(key))  # bookkeeping off the hot path
        self._touches.add(task)
        task.add_done_callback(self._touches.discard)
        return SolveResult.model_validate_json(raw)

    async def _touch(self, key: str) -> None:
        try:
            await self.pool.execute(
                "UPDATE solve_cache SET last_hit_at = now() WHERE cache_key = $1", key
            )
        except Exception:  # only feeds future eviction; never worth failing a solve
            pass

    async def put(self, key: str, request: SolveRequest, result: SolveResult) -> None:
        await self.pool.execute(
            "INSERT INTO solve_cache (cache_key, request, result) VALUES ($1, $2, $3::text::jsonb) "
            "ON CONFLICT (cache_key) DO NOTHING",
            key,
            request.normalized(),
            result.model_dump_json(),
        )

"""The solve cache in Postgres: one result per normalized request and repodata fingerprint.

Shared by every solver replica and by the NATS endpoint, so a spec solved once (by a build or
by ``conda-store solve``) is answered from here next time, as long as the channels' repodata is
unchanged. The fingerprint is part of the key, so stale entries are simply never looked up.
Results travel as JSON text and are parsed by pydantic's Rust core: a hit must take
milliseconds even for environments of a thousand packages. Entries never change (the key
names their inputs), so each process also keeps the most recently used results in memory and
answers a repeated request without the database round trip and the parse.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

import asyncpg

from .types import SolveRequest, SolveResult

MEMORY_ENTRIES = 64


class SolveCache:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._touches: set[asyncio.Task[None]] = set()
        self._recent: OrderedDict[str, SolveResult] = OrderedDict()

    async def get(self, key: str) -> SolveResult | None:
        result = self._recent.get(key)
        if result is None:
            raw = await self.pool.fetchval(
                "SELECT result::text FROM solve_cache WHERE cache_key = $1", key
            )
            if raw is None:
                return None
            result = SolveResult.model_validate_json(raw)
        self._remember(key, result)
        task = asyncio.create_task(self._touch(key))  # bookkeeping off the hot path
        self._touches.add(task)
        task.add_done_callback(self._touches.discard)
        return result

    def _remember(self, key: str, result: SolveResult) -> None:
        self._recent[key] = result
        self._recent.move_to_end(key)
        while len(self._recent) > MEMORY_ENTRIES:
            self._recent.popitem(last=False)

    async def _touch(self, key: str) -> None:
        try:
            await self.pool.execute(
                "UPDATE solve_cache SET last_hit_at = now() WHERE cache_key = $1", key
            )
        except Exception:  # only feeds future eviction; never worth failing a solve
            pass

    async def prune(self, max_age_days: float) -> int:
        """Delete entries neither made nor used within ``max_age_days``; returns how many.

        Only a cache: a pruned spec is solved again next time it is asked for.
        """
        status = await self.pool.execute(
            "DELETE FROM solve_cache WHERE coalesce(last_hit_at, created_at)"
            " < now() - make_interval(secs => $1)",
            max_age_days * 86400.0,
        )
        self._recent.clear()
        return int(status.split()[-1])

    async def put(self, key: str, request: SolveRequest, result: SolveResult) -> None:
        await self.pool.execute(
            "INSERT INTO solve_cache (cache_key, request, result) VALUES ($1, $2, $3::text::jsonb) "
            "ON CONFLICT (cache_key) DO NOTHING",
            key,
            request.normalized(),
            result.model_dump_json(),
        )
        self._remember(key, result)

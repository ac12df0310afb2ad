"""One solve, start to finish: repodata → fingerprint → cache or (rattler + uv) → result.

Both entry points (the SpecSubmitted worker and the NATS endpoint) call ``Resolver.resolve``,
so they share the gateway, the cache and the channel index.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import rattler

from shared.eventstore import EventStore
from shared.memo import BoundedMemo
from shared.pip_index import PipIndex
from shared.settings import Settings

from .cache import SolveCache
from .channels import ChannelIndexer
from .conda_solve import CondaSolver, fingerprint_records, match_specs
from .pip_pins import pin_pip, split_pip_entries
from .types import LockedPackage, SolveRequest, SolveResult

FINGERPRINT_MEMO_SIZE = 1024


def locked_from_record(record: rattler.RepoDataRecord, platform: str) -> LockedPackage:
    """Built without validation: rattler already typed every field, and validating a
    thousand records cost a tenth of a remote solve's overhead."""
    return LockedPackage.model_construct(
        manager="conda",
        name=record.name.normalized,
        version=str(record.version),
        build=str(record.build),
        channel=(record.channel or "").rstrip("/"),
        subdir=record.subdir,
        url=record.url,
        md5=record.md5.hex() if record.md5 else None,
        sha256=record.sha256.hex() if record.sha256 else None,
        size=record.size,
        license=record.license,
        platform=platform,
        depends=list(record.depends),
    )


@dataclass
class Resolution:
    result: SolveResult
    cache_hit: bool
    fingerprint: str


class Resolver:
    def __init__(
        self,
        solver: CondaSolver,
        cache: SolveCache,
        pip_base: PipIndex,
        uv_cache_dir: Path,
        timeout_s: float,
        indexer: ChannelIndexer | None = None,
    ) -> None:
        self.solver = solver
        self.cache = cache
        self.pip_base = pip_base
        self.uv_cache_dir = uv_cache_dir
        self.timeout_s = timeout_s
        self.indexer = indexer
        self._fingerprints: BoundedMemo[tuple[str, tuple[int, ...]], str] = BoundedMemo(
            FINGERPRINT_MEMO_SIZE
        )

    @classmethod
    def from_settings(cls, settings: Settings, pool, index_channels: bool = True) -> Resolver:  # type: ignore[no-untyped-def]
        """The resolver a service process uses: caches under ``Settings.cache_root``."""
        cache_root = settings.cache_root
        solver = CondaSolver(
            cache_root / "repodata", settings.solve_timeout_s, settings.repodata_ttl_s
        )
        indexer = (
            ChannelIndexer(EventStore(pool), solver, settings.repodata_ttl_s)
            if index_channels
            else None
        )
        return cls(
            solver,
            SolveCache(pool),
            settings.pip_index,
            cache_root / "uv",
            settings.solve_timeout_s,
            indexer,
        )

    async def fingerprint(self, request: SolveRequest) -> str:
        """Hash of every repodata record each target platform's solve could use.

        Hashing tens of thousands of records takes longer than a cache hit may, so the result
        is remembered until the gateway next refreshes one of the request's channels.
        """
        generations = self.solver.refresh(request.channels)
        memo_key = (json.dumps(request.normalized(), sort_keys=True), generations)
        known = self._fingerprints.get(memo_key)
        if known is not None:
            return known
        specs = match_specs(request.conda)
        digest = hashlib.sha256()
        for platform in request.targets():
            records = await self.solver.fetch(request.channels, platform, specs)
            digest.update(f"{platform}:{fingerprint_records(records)};".encode())
        fingerprint = digest.hexdigest()
        self._fingerprints.put(memo_key, fingerprint)
        return fingerprint

    async def resolve(self, request: SolveRequest) -> Resolution:
        """Solve ``request`` (or reuse the cached answer); SolveFailed for user errors."""
        fingerprint = await self.fingerprint(request)
        if self.indexer is not None:
            self.indexer.schedule(request.channels, request.targets())
        requirements, pip_config = split_pip_entries(request.pip, self.pip_base)
        key = request.cache_key(fingerprint, pip_config.as_key())
        if request.use_cache:
            cached = await self.cache.get(key)
            if cached is not None:
                return Resolution(cached, True, fingerprint)
        specs = match_specs(request.conda)
        packages: list[LockedPackage] = []
        for platform in request.targets():
            records = await self.solver.solve(
                request.channels, platform, specs, request.virtual_packages
            )
            conda = [locked_from_record(r, platform) for r in records]
            conda.sort(key=lambda p: p.name)
            pip = await pin_pip(
                requirements, pip_config, platform, conda, self.uv_cache_dir, self.timeout_s
            )
            packages += conda + pip
        result = SolveResult(
            channels=list(request.channels),
            platforms=request.targets(),
            packages=packages,
            content_hash=key,
            virtual_packages=dict(request.virtual_packages),
        )
        await self.cache.put(key, request, result)
        return Resolution(result, False, fingerprint)

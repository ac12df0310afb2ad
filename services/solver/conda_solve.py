"""The py-rattler adapter: fetch repodata through one shared gateway, fingerprint it, solve.

One ``CondaSolver`` lives per process. Its gateway keeps repodata on disk (shared by every solve
and every process using the same ``cache_dir``) and in memory; the in-memory copy of a channel
is dropped after ``repodata_ttl_s`` so that a long-running worker notices channel updates (the
gateway revalidates its disk cache with conditional requests, so that costs a 304).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path

import rattler
from rattler.exceptions import GatewayError, SolverError

from .types import SolveFailed

VIRTUAL_PACKAGES: dict[str, list[tuple[str, str, str]]] = {
    # Fixed, machine-independent virtual packages (as conda-lock does): a solve must not
    # depend on which worker ran it, or the solve cache would lie.
    "linux": [("__unix", "0", "0"), ("__linux", "5.10", "0"), ("__glibc", "2.28", "0")],
    "osx": [("__unix", "0", "0"), ("__osx", "11.0", "0")],
    "win": [("__win", "0", "0")],
}
ARCHSPEC = {"64": "x86_64", "aarch64": "aarch64", "arm64": "arm64", "ppc64le": "ppc64le"}


ONLY_ON = {"__glibc": "linux", "__linux": "linux", "__osx": "osx", "__win": "win", "__unix": ""}
"""Virtual packages that exist on one OS only ("" for every OS but win); others (``__cuda``,
``__archspec``, anything custom) apply to every target platform."""


def _applies(name: str, os_name: str) -> bool:
    only = ONLY_ON.get(name)
    if only is None:
        return True
    return os_name != "win" if only == "" else os_name == only


def virtual_packages(
    platform: str, overrides: Mapping[str, str] | None = None
) -> list[rattler.GenericVirtualPackage]:
    """The virtual packages assumed present on ``platform`` (e.g. ``linux-64``), with the
    build's ``overrides`` (name → version[=build], or "" to remove one) applied."""
    os_name, _, arch = platform.partition("-")
    entries = {name: (version, build) for name, version, build in VIRTUAL_PACKAGES.get(os_name, [])}
    if arch in ARCHSPEC:
        entries["__archspec"] = ("1", ARCHSPEC[arch])
    for name, value in (overrides or {}).items():
        if not _applies(name, os_name):
            continue
        if not value:
            entries.pop(name, None)
            continue
        version, _, build = value.partition("=")
        entries[name] = (version, build or "0")
    return [
        rattler.GenericVirtualPackage(
            rattler.PackageName(name), rattler.Version(version), rattler.BuildString(build)
        )
        for name, (version, build) in sorted(entries.items())
    ]


def match_specs(specs: Iterable[str]) -> list[rattler.MatchSpec]:
    """Parse specs as MatchSpec objects (``solve()`` parses bare strings too strictly)."""
    parsed = []
    for spec in specs:
        try:
            parsed.append(rattler.MatchSpec(spec))
        except Exception as exc:  # rattler's parse errors share no base class
            raise SolveFailed(f"Invalid conda package dependency specification {spec}") from exc
    return parsed


def subdirs(platform: str) -> list[str]:
    return [platform] if platform == "noarch" else [platform, "noarch"]


def fingerprint_records(records: Iterable[rattler.RepoDataRecord]) -> str:
    """A content hash of repodata records (metadata and URL, so repodata patches count)."""
    digest = hashlib.sha256()
    for line in sorted(r.to_json() + r.url for r in records):
        digest.update(line.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _is_user_error(exc: GatewayError) -> bool:
    """A channel or subdir that does not exist is the spec's fault; a network error is not."""
    text = str(exc)
    return any(s in text for s in ("404", "could not find", "not found", "invalid", "Invalid"))


class CondaSolver:
    """Fetch, fingerprint and solve with py-rattler; counts real solver calls in ``solve_count``."""

    def __init__(self, cache_dir: Path, timeout_s: float, repodata_ttl_s: float = 60.0) -> None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        self.cache_dir = cache_dir
        self.gateway = rattler.Gateway(cache_dir=cache_dir)
        self.timeout = timedelta(seconds=timeout_s)
        self.repodata_ttl_s = repodata_ttl_s
        self.solve_count = 0
        self._loaded_at: dict[str, float] = {}
        self._generation: dict[str, int] = {}

    def channels(self, names: Sequence[str]) -> list[rattler.Channel]:
        try:
            return [rattler.Channel(n) for n in names]
        except Exception as exc:
            raise SolveFailed(f"Invalid channel: {exc}") from exc

    def refresh(self, names: Sequence[str]) -> tuple[int, ...]:
        """Drop in-memory repodata older than the TTL; return each channel's generation.

        Between two refreshes the gateway serves the same in-memory records, so anything
        derived from them (a fingerprint) stays valid while the generations are unchanged.
        """
        now = time.monotonic()
        for name in names:
            loaded = self._loaded_at.get(name)
            if loaded is not None and now - loaded > self.repodata_ttl_s:
                self.gateway.clear_repodata_cache(rattler.Channel(name))
                del self._loaded_at[name]
                self._generation[name] = self._generation.get(name, 0) + 1
        return tuple(self._generation.get(name, 0) for name in names)

    async def fetch(
        self, names: Sequence[str], platform: str, specs: Sequence[rattler.MatchSpec]
    ) -> list[rattler.RepoDataRecord]:
        """Every record the solve could use (the recursive closure of ``specs``).

        Raises SolveFailed for channels that do not exist and GatewayError for network errors.
        """
        channels = self.channels(names)
        self.refresh(names)
        try:
            result = await self.gateway.query(channels, subdirs(platform), specs, recursive=True)
        except GatewayError as exc:
            if _is_user_error(exc):
                raise SolveFailed(str(exc)) from exc
            raise
        now = time.monotonic()
        for name in names:
            self._loaded_at.setdefault(name, now)
        return [record for per_channel in result for record in per_channel]

    async def channel_records(self, name: str, subdir: str) -> list[rattler.RepoDataRecord]:
        """All records of one channel subdir (for the package index)."""
        channel = rattler.Channel(name)
        names = await self.gateway.names([channel], [subdir])
        if not names:
            return []
        specs = [rattler.MatchSpec(n.normalized) for n in names]
        result = await self.gateway.query([channel], [subdir], specs, recursive=False)
        return [record for per_channel in result for record in per_channel]

    async def solve(
        self,
        names: Sequence[str],
        platform: str,
        specs: Sequence[rattler.MatchSpec],
        virtual: Mapping[str, str] | None = None,
    ) -> list[rattler.RepoDataRecord]:
        """Solve ``specs`` for ``platform`` (with ``virtual`` overrides of the virtual
        packages); SolveFailed carries rattler's explanation tree."""
        self.solve_count += 1
        try:
            return await rattler.solve(
                sources=self.channels(names),
                specs=list(specs),
                gateway=self.gateway,
                platforms=subdirs(platform),
                virtual_packages=virtual_packages(platform, virtual),
                timeout=self.timeout,
            )
        except SolverError as exc:
            text = str(exc)
            if "cancelled" in text:
                seconds = self.timeout.total_seconds()
                text = f"The solve did not finish within {seconds:g} s and was stopped.\n{text}"
            raise SolveFailed(text) from exc
        except GatewayError as exc:
            if _is_user_error(exc):
                raise SolveFailed(str(exc)) from exc
            raise

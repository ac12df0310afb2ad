"""The solver's contract: what a solve is asked for and what it answers.

The same two models serve the event-driven worker, the NATS request/reply endpoint and the
solve cache (which stores ``SolveResult`` as JSON), so a cached answer is indistinguishable
from a fresh one.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict, Field

from shared.conda_formats import current_platform
from shared.events import PackageRef, SpecSubmitted

CACHE_FORMAT = 1
"""Bump when the solve procedure changes in a way that makes old cached results wrong."""


class SolveRequest(BaseModel):
    """Channels (URLs or names), conda match specs, pip entries (PEP 508 or index options)."""

    model_config = ConfigDict(frozen=True)
    channels: list[str]
    conda: list[str] = Field(default_factory=list)
    pip: list[str] = Field(default_factory=list)
    platforms: list[str] = Field(default_factory=lambda: ["linux-64"])
    virtual_packages: dict[str, str] = Field(
        default_factory=dict,
        description="Virtual packages beyond the platform's (name → version[=build], or '' to "
        "remove one): SpecSubmitted.virtual_packages.",
    )
    use_cache: bool = Field(default=True, description="False forces a fresh solve.")

    def targets(self) -> list[str]:
        """Platforms to solve for, sorted; ``noarch`` is always searched, never a target."""
        return sorted(set(self.platforms) - {"noarch"}) or ["noarch"]

    def normalized(self) -> dict[str, object]:
        """Order-insensitive for dependencies (as the spec hash is), order-kept for channels
        (channel priority changes the answer)."""
        normalized: dict[str, object] = {
            "channels": list(dict.fromkeys(c.rstrip("/") for c in self.channels)),
            "conda": sorted(set(self.conda)),
            "pip": sorted(set(self.pip)),
            "platforms": self.targets(),
        }
        if self.virtual_packages:  # absent when unused: earlier cache keys stay valid
            normalized["virtual_packages"] = dict(sorted(self.virtual_packages.items()))
        return normalized

    def cache_key(self, fingerprint: str, pip_config: dict[str, object]) -> str:
        """Key of a solve: the normalized request, the repodata fingerprint and pip config."""
        doc = {
            "format": CACHE_FORMAT,
            "request": self.normalized(),
            "repodata": fingerprint,
            "pip": pip_config,
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


class LockedPackage(PackageRef):
    """A resolved package for one target platform, with what the lockfile needs besides."""

    platform: str
    depends: list[str] = Field(default_factory=list)

    def ref(self) -> PackageRef:
        return PackageRef(**self.model_dump(exclude={"platform", "depends"}))


def request_of(spec: SpecSubmitted) -> SolveRequest:
    """The solve a submitted build asks for (its build, and any later update check of it)."""
    return SolveRequest(
        channels=spec.channels,
        conda=spec.conda_dependencies,
        pip=spec.pip_dependencies,
        platforms=spec.platforms,
        virtual_packages=spec.virtual_packages,
    )


class SolveResult(BaseModel):
    """Per target platform: conda records then pip pins; plus the inputs that produced them.

    Frozen: the solve cache hands the same instance to every caller that asks for it.
    """

    model_config = ConfigDict(frozen=True)
    channels: list[str]
    platforms: list[str]
    packages: list[LockedPackage]
    content_hash: str = ""
    virtual_packages: dict[str, str] = Field(
        default_factory=dict, description="The request's, recorded in the lockfile."
    )

    def for_platform(self, platform: str) -> list[LockedPackage]:
        return [p for p in self.packages if p.platform == platform]

    def primary_platform(self) -> str:
        """The platform whose packages describe the build: this machine's, else the first."""
        here = current_platform()
        return here if here in self.platforms else self.platforms[0]


class SolveFailed(Exception):
    """A user error: the request cannot be solved. ``reason`` is shown to users verbatim."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

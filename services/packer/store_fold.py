"""What the store directory should look like after an event: a pure fold, tested without I/O.

The store linker (``services.packer.linker``) loads the rows an event touches, applies the
event here and carries out the resulting actions on disk. The rules follow the read model's
(``shared.projections.model``) so that ``envs/<name>`` points where the API's current build is:

- ``Packed`` makes its build complete and current; ``CurrentBuildSet`` makes a complete build
  current (a rollback). The link follows the current build.
- ``BuildFailed``/``BuildCanceled`` before completion, ``BuildDeleted``, ``EnvironmentDeleted``
  and ``NamespaceDeleted`` make builds ``gone``: their directories are removed, and a link to
  one of them is removed rather than left dangling. A ``Packed`` that arrives for a build that
  is already gone (a cancel that raced the end of packing) removes what the packer left.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from .store import prefix_of

Status = Literal["pending", "complete", "gone"]
EnvKey = tuple[str, str]

EVENT_TYPES = (
    "SpecSubmitted",
    "Packed",
    "BuildFailed",
    "BuildCanceled",
    "BuildDeleted",
    "CurrentBuildSet",
    "EnvironmentDeleted",
    "NamespaceDeleted",
)


@dataclass(frozen=True)
class StoreBuild:
    build_id: int
    namespace: str
    environment: str
    prefix: str
    status: Status = "pending"


@dataclass(frozen=True)
class Link:
    namespace: str
    environment: str
    prefix: str


@dataclass(frozen=True)
class Unlink:
    namespace: str
    environment: str


@dataclass(frozen=True)
class RemovePrefix:
    prefix: str


@dataclass(frozen=True)
class RemoveNamespace:
    namespace: str


Action = Link | Unlink | RemovePrefix | RemoveNamespace


@dataclass
class StoreState:
    """The rows one event needs, as loaded; ``apply`` changes them and lists the actions."""

    store: Path
    builds: dict[int, StoreBuild] = field(default_factory=dict)
    links: dict[EnvKey, int | None] = field(default_factory=dict)
    actions: list[Action] = field(default_factory=list)
    changed_builds: set[int] = field(default_factory=set)
    changed_links: set[EnvKey] = field(default_factory=set)

    def apply(self, event_type: str, data: dict[str, Any]) -> None:
        handler = getattr(self, f"_on_{event_type}", None)
        if handler is not None:
            handler(data)

    # --- helpers ---------------------------------------------------------------------------

    def _set_build(self, build: StoreBuild) -> None:
        self.builds[build.build_id] = build
        self.changed_builds.add(build.build_id)

    def _set_link(self, key: EnvKey, build_id: int | None) -> None:
        self.links[key] = build_id
        self.changed_links.add(key)
        if build_id is None:
            self.actions.append(Unlink(*key))
        else:
            self.actions.append(Link(*key, self.builds[build_id].prefix))

    def _gone(self, build: StoreBuild) -> None:
        if build.status != "gone":
            self._set_build(replace(build, status="gone"))
        self.actions.append(RemovePrefix(build.prefix))
        key = (build.namespace, build.environment)
        if self.links.get(key) == build.build_id:
            self._set_link(key, None)

    def _builds_of(self, namespace: str, environment: str | None = None) -> list[StoreBuild]:
        return [
            b
            for b in self.builds.values()
            if b.namespace == namespace and (environment is None or b.environment == environment)
        ]

    # --- the fold --------------------------------------------------------------------------

    def _on_SpecSubmitted(self, d: dict[str, Any]) -> None:
        if d["build_id"] in self.builds:
            return
        prefix = prefix_of(self.store, d["namespace"], d["build_key"])
        self._set_build(StoreBuild(d["build_id"], d["namespace"], d["environment"], str(prefix)))

    def _on_Packed(self, d: dict[str, Any]) -> None:
        build = self.builds.get(d["build_id"])
        if build is None:
            return
        if build.status == "gone":
            self.actions.append(RemovePrefix(build.prefix))
            return
        if d.get("directory"):
            build = replace(build, prefix=d["directory"])
        self._set_build(replace(build, status="complete"))
        self._set_link((build.namespace, build.environment), build.build_id)

    def _on_BuildFailed(self, d: dict[str, Any]) -> None:
        build = self.builds.get(d["build_id"])
        if build is not None and build.status == "pending":
            self._gone(build)

    _on_BuildCanceled = _on_BuildFailed

    def _on_BuildDeleted(self, d: dict[str, Any]) -> None:
        build = self.builds.get(d["build_id"])
        if build is not None:
            self._gone(build)

    def _on_CurrentBuildSet(self, d: dict[str, Any]) -> None:
        build = self.builds.get(d["build_id"])
        if build is not None and build.status == "complete":
            self._set_link((d["namespace"], d["environment"]), build.build_id)

    def _on_EnvironmentDeleted(self, d: dict[str, Any]) -> None:
        for build in self._builds_of(d["namespace"], d["environment"]):
            self._gone(build)
        key = (d["namespace"], d["environment"])
        if self.links.get(key) is not None:
            self._set_link(key, None)

    def _on_NamespaceDeleted(self, d: dict[str, Any]) -> None:
        for build in self._builds_of(d["namespace"]):
            self._gone(build)
        for key, current in list(self.links.items()):
            if key[0] == d["namespace"] and current is not None:
                self._set_link(key, None)
        self.actions.append(RemoveNamespace(d["namespace"]))

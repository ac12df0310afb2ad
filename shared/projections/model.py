"""The read model as a pure fold over events: no I/O, so it is tested and replayed cheaply.

The projector keeps one ``ReadModel`` in memory, applies each event, and writes the rows the
event touched (``dirty``) back to Postgres. Ids of namespaces, environments, specifications and
artifacts are assigned here in event order, so a replay from position 0 reproduces them exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.events import NO_IMAGE_REASON, RecordedEvent

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELED"})


@dataclass(slots=True)
class Namespace:
    id: int
    name: str
    created_on: datetime
    metadata: dict[str, Any] = field(default_factory=dict)
    role_mappings: dict[str, list[str]] = field(default_factory=dict)
    role_mappings_v2: list[dict[str, Any]] = field(default_factory=list)
    deleted_on: datetime | None = None


@dataclass(slots=True)
class Environment:
    id: int
    namespace_id: int
    namespace: str
    name: str
    created_on: datetime
    current_build_id: int | None = None
    description: str | None = None
    deleted_on: datetime | None = None


@dataclass(slots=True)
class Specification:
    id: int
    name: str
    spec: dict[str, Any]
    sha256: str
    created_on: datetime


@dataclass(slots=True)
class Artifact:
    id: int
    artifact_type: str
    key: str


@dataclass(slots=True)
class Build:
    id: int
    environment_id: int
    namespace: str
    environment: str
    specification_id: int
    status: str
    scheduled_on: datetime
    build_key: str = ""
    is_lockfile: bool = False
    status_info: str | None = None
    size: int = 0
    started_on: datetime | None = None
    ended_on: datetime | None = None
    deleted_on: datetime | None = None
    artifacts: dict[str, Artifact] = field(default_factory=dict)
    image_status: str | None = None
    """None until the registry answers for a completed build; then PUSHED or FAILED."""
    image_reason: str | None = None
    image_digest: str | None = None


@dataclass
class Dirty:
    namespaces: set[str] = field(default_factory=set)
    environments: set[tuple[str, str]] = field(default_factory=set)
    specifications: set[str] = field(default_factory=set)
    builds: set[int] = field(default_factory=set)
    packages: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    settings: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return any(
            (
                self.namespaces,
                self.environments,
                self.specifications,
                self.builds,
                self.packages,
                self.settings,
            )
        )


@dataclass
class ReadModel:
    namespaces: dict[str, Namespace] = field(default_factory=dict)
    environments: dict[tuple[str, str], Environment] = field(default_factory=dict)
    specifications: dict[str, Specification] = field(default_factory=dict)
    builds: dict[int, Build] = field(default_factory=dict)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    builds_by_environment: dict[int, list[int]] = field(default_factory=dict)
    next_ids: dict[str, int] = field(default_factory=dict)
    dirty: Dirty = field(default_factory=Dirty)

    # --- helpers ---------------------------------------------------------------------------

    def _new_id(self, kind: str) -> int:
        value = self.next_ids.get(kind, 0) + 1
        self.next_ids[kind] = value
        return value

    def _namespace(self, name: str, at: datetime) -> Namespace:
        ns = self.namespaces.get(name)
        if ns is None:
            ns = Namespace(id=self._new_id("namespace"), name=name, created_on=at)
            self.namespaces[name] = ns
        self.dirty.namespaces.add(name)
        return ns

    def _environment(self, namespace: str, name: str, at: datetime) -> Environment:
        env = self.environments.get((namespace, name))
        if env is None:
            ns = self._namespace(namespace, at)
            env = Environment(
                id=self._new_id("environment"),
                namespace_id=ns.id,
                namespace=namespace,
                name=name,
                created_on=at,
            )
            self.environments[(namespace, name)] = env
        self.dirty.environments.add((namespace, name))
        return env

    def _build(self, build_id: int) -> Build | None:
        build = self.builds.get(build_id)
        if build is not None:
            self.dirty.builds.add(build_id)
        return build

    def _set_artifact(self, build: Build, artifact_type: str, key: str | None) -> None:
        if not key:
            return
        existing = build.artifacts.get(artifact_type)
        if existing is None:
            build.artifacts[artifact_type] = Artifact(self._new_id("artifact"), artifact_type, key)
        else:
            existing.key = key

    def add_build(self, build: Build) -> None:
        self.builds[build.id] = build
        self.builds_by_environment.setdefault(build.environment_id, []).append(build.id)
        self.dirty.builds.add(build.id)

    def _finish(self, build: Build, status: str, at: datetime) -> None:
        build.status = status
        build.ended_on = at

    # --- the fold --------------------------------------------------------------------------

    def apply(self, event: RecordedEvent) -> None:
        handler = getattr(self, f"_on_{event.type}", None)
        if handler is not None:
            handler(event.data, event.recorded_at)

    def _on_NamespaceCreated(self, d: dict[str, Any], at: datetime) -> None:
        self._namespace(d["namespace"], at).deleted_on = None

    def _on_NamespaceDeleted(self, d: dict[str, Any], at: datetime) -> None:
        ns = self.namespaces.get(d["namespace"])
        if ns is None:
            return
        ns.deleted_on = at
        # destructive, like conda-store's worker: nothing of the old namespace survives a re-create
        ns.metadata, ns.role_mappings, ns.role_mappings_v2 = {}, {}, []
        self.dirty.namespaces.add(ns.name)
        for key, env in self.environments.items():
            if env.namespace == ns.name:
                self._delete_environment(key, env, at)

    def _on_NamespaceMetadataSet(self, d: dict[str, Any], at: datetime) -> None:
        self._namespace(d["namespace"], at).metadata = dict(d["metadata"])

    def _on_RoleBindingsChanged(self, d: dict[str, Any], at: datetime) -> None:
        self._namespace(d["namespace"], at).role_mappings = {
            arn: ["developer" if r == "editor" else r for r in roles]
            for arn, roles in d["role_mappings"].items()
        }

    def _on_NamespaceRoleSet(self, d: dict[str, Any], at: datetime) -> None:
        ns = self._namespace(d["namespace"], at)
        rows = [r for r in ns.role_mappings_v2 if r["other_namespace"] != d["other_namespace"]]
        if d["role"] is not None:
            existing = next(
                (r for r in ns.role_mappings_v2 if r["other_namespace"] == d["other_namespace"]),
                None,
            )
            role = "developer" if d["role"] == "editor" else d["role"]
            row_id = existing["id"] if existing else self._new_id("role_mapping_v2")
            rows.append({"id": row_id, "other_namespace": d["other_namespace"], "role": role})
        ns.role_mappings_v2 = sorted(rows, key=lambda r: r["id"])

    def _on_SpecSubmitted(self, d: dict[str, Any], at: datetime) -> None:
        env = self._environment(d["namespace"], d["environment"], at)
        new_environment = env.current_build_id is None or env.deleted_on is not None
        env.deleted_on = None
        description = d.get("description") or (d.get("specification") or {}).get("description")
        if description:  # version 1 repeated it beside the spec; version 2 has it only inside
            env.description = description
        spec = self.specifications.get(d["sha256"])
        if spec is None:
            spec = Specification(
                id=self._new_id("specification"),
                name=d["environment"],
                spec=d["specification"],
                sha256=d["sha256"],
                created_on=at,
            )
            self.specifications[d["sha256"]] = spec
            self.dirty.specifications.add(d["sha256"])
        build = Build(
            id=d["build_id"],
            environment_id=env.id,
            namespace=env.namespace,
            environment=env.name,
            specification_id=spec.id,
            status="QUEUED",
            scheduled_on=at,
            build_key=d.get("build_key", ""),
            is_lockfile=d.get("is_lockfile", False),
        )
        if d.get("make_image") is False:
            build.image_status, build.image_reason = "SKIPPED", NO_IMAGE_REASON
        self.add_build(build)
        if new_environment:
            env.current_build_id = build.id

    def _on_BuildStarted(self, d: dict[str, Any], at: datetime) -> None:
        build = self._build(d["build_id"])
        if build is None or build.status in TERMINAL:
            return
        build.status = "BUILDING"
        build.started_on = build.started_on or at

    def _on_Solved(self, d: dict[str, Any], at: datetime) -> None:
        build = self._build(d["build_id"])
        if build is None:
            return
        # Even after a cancel (the status stays CANCELED), the solver did store these files.
        # 571be92's solver solved every build canceled while queued, and a replay of such a
        # log must list them, with the artifact and package ids that followed, as it did.
        self._set_artifact(build, "LOCKFILE", d["lockfile_key"])
        self._set_artifact(build, "YAML", d["yaml_key"])
        self.dirty.packages[build.id] = d["packages"]

    def _on_Packed(self, d: dict[str, Any], at: datetime) -> None:
        build = self._build(d["build_id"])
        if build is None or build.status in TERMINAL:
            return
        self._finish(build, "COMPLETED", at)
        build.size = d["size"]
        self._set_artifact(build, "CONDA_PACK", d["archive_key"])
        self._set_artifact(build, "LOGS", d["logs_key"])
        self._set_artifact(build, "DIRECTORY", d.get("directory"))
        self._set_artifact(build, "SBOM", d.get("sbom_key"))
        if d.get("packages"):
            self.dirty.packages[build.id] = d["packages"]
        env = self.environments.get((build.namespace, build.environment))
        if env is not None and build.deleted_on is None:
            env.current_build_id = build.id
            self.dirty.environments.add((env.namespace, env.name))

    def _on_ImagePushed(self, d: dict[str, Any], at: datetime) -> None:
        build = self._build(d["build_id"])
        if build is not None:
            self._set_artifact(build, "DOCKER_MANIFEST", d["manifest_key"])
            build.image_status, build.image_reason = "PUSHED", None
            build.image_digest = d["manifest_digest"]

    def _on_ImageFailed(self, d: dict[str, Any], at: datetime) -> None:
        build = self._build(d["build_id"])
        if build is not None and build.image_status != "PUSHED":
            build.image_status, build.image_reason = "FAILED", d["reason"]

    def _on_BuildFailed(self, d: dict[str, Any], at: datetime) -> None:
        build = self._build(d["build_id"])
        if build is None or build.status in TERMINAL:
            return
        self._finish(build, "FAILED", at)
        build.status_info = d["reason"]
        self._set_artifact(build, "LOGS", d.get("logs_key"))

    def _on_BuildCanceled(self, d: dict[str, Any], at: datetime) -> None:
        build = self._build(d["build_id"])
        if build is None or build.status in TERMINAL:
            return
        self._finish(build, "CANCELED", at)
        build.status_info = d.get("reason")

    def _on_BuildDeleted(self, d: dict[str, Any], at: datetime) -> None:
        build = self._build(d["build_id"])
        if build is None:
            return
        build.deleted_on = build.deleted_on or at
        build.size = 0
        kept = set(d.get("kept_artifacts", []))
        build.artifacts = {t: a for t, a in build.artifacts.items() if t in kept}

    def _delete_environment(self, key: tuple[str, str], env: Environment, at: datetime) -> None:
        env.deleted_on = env.deleted_on or at
        self.dirty.environments.add(key)
        for build_id in self.builds_by_environment.get(env.id, []):
            build = self.builds[build_id]
            if build.deleted_on is None or build.artifacts:
                build.deleted_on = build.deleted_on or at
                # every artifact goes with the environment (the keep list does not apply)
                build.artifacts = {}
                build.size = 0
                self.dirty.builds.add(build.id)

    def _on_EnvironmentDeleted(self, d: dict[str, Any], at: datetime) -> None:
        key = (d["namespace"], d["environment"])
        env = self.environments.get(key)
        if env is not None:
            self._delete_environment(key, env, at)

    def _on_EnvironmentDescriptionSet(self, d: dict[str, Any], at: datetime) -> None:
        env = self.environments.get((d["namespace"], d["environment"]))
        if env is not None:
            env.description = d["description"]
            self.dirty.environments.add((env.namespace, env.name))

    def _on_CurrentBuildSet(self, d: dict[str, Any], at: datetime) -> None:
        env = self.environments.get((d["namespace"], d["environment"]))
        if env is not None:
            env.current_build_id = d["build_id"]
            self.dirty.environments.add((env.namespace, env.name))

    def _on_SettingsChanged(self, d: dict[str, Any], at: datetime) -> None:
        parts = [p for p in (d.get("namespace"), d.get("environment")) if p]
        level = "/".join(parts)
        self.settings.setdefault(level, {}).update(d["values"])
        self.dirty.settings.add(level)

    def take_dirty(self) -> Dirty:
        dirty, self.dirty = self.dirty, Dirty()
        return dirty

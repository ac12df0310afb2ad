"""The event vocabulary: one pydantic class per fact, named in the past tense.

Payload classes carry only the domain fields; the envelope (`NewEvent` before it is stored,
`RecordedEvent` after) adds identity, position and causality. Subscribers outside the project
rely on these shapes, so a change that is not backwards compatible bumps ``schema_version``.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

BuildStatus = Literal["QUEUED", "BUILDING", "COMPLETED", "FAILED", "CANCELED"]
ArtifactType = Literal[
    "DIRECTORY",
    "LOCKFILE",
    "LOGS",
    "YAML",
    "CONDA_PACK",
    "DOCKER_MANIFEST",
    "CONSTRUCTOR_INSTALLER",
    "CONTAINER_REGISTRY",
    "DOCKER_BLOB",
    "SBOM",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class EventData(BaseModel):
    """Base of every event payload; subclasses register themselves by class name."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: ClassVar[int] = 1
    registry: ClassVar[dict[str, type[EventData]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        EventData.registry[cls.__name__] = cls

    @classmethod
    def event_type(cls) -> str:
        return cls.__name__


# --- build flow -------------------------------------------------------------------------------


class PackageRef(BaseModel):
    """One resolved package, enough to pin, list and search it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    manager: Literal["conda", "pip"] = "conda"
    name: str
    version: str
    build: str = ""
    channel: str = ""
    subdir: str = ""
    url: str = ""
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    license: str | None = None
    summary: str | None = None


class StorePolicy(BaseModel):
    """The runtime settings that shape a build's store directory, fixed when it is submitted,
    so a packer never reads the settings tables (and a rebuild later obeys its own)."""

    make_archive: bool = Field(
        default=True, description="build_artifacts lists CONDA_PACK: the packer makes one."
    )
    storage_threshold: int = Field(
        default=0, ge=0, description="Bytes the store volume must have free before installing."
    )
    uid: int | None = Field(default=None, description="default_uid given to the prefix' files.")
    gid: int | None = Field(default=None, description="default_gid given to the prefix' files.")
    permissions: str | None = Field(
        default=None, description="default_permissions (octal, e.g. 775) given to the prefix."
    )


class SpecSubmitted(EventData):
    """A build was asked for.

    Version 2 carries the description only inside ``specification`` (version 1 repeated it
    in ``description``, doubling the event for a long one); readers take either.
    """

    schema_version: ClassVar[int] = 2
    build_id: int
    namespace: str
    environment: str
    specification: dict[str, Any] = Field(description="The spec as stored (unnormalized channels).")
    sha256: str
    channels: list[str] = Field(default_factory=list, description="Resolved channel URLs.")
    conda_dependencies: list[str] = Field(default_factory=list)
    pip_dependencies: list[str] = Field(default_factory=list)
    platforms: list[str] = Field(default_factory=lambda: ["linux-64"])
    is_lockfile: bool = False
    lockfile: dict[str, Any] | None = Field(
        default=None,
        description="A submitted lockfile as a document (events before lockfile_text; newer "
        "events carry it in specification.lockfile only).",
    )
    lockfile_text: str | None = Field(
        default=None,
        description="A submitted lockfile's text as the client sent it, served back as is.",
    )
    description: str = Field(default="", description="Version 1 only; now in ``specification``.")
    build_key: str = ""
    scheduled_on: datetime = Field(default_factory=utcnow)
    rebuild_of: int | None = None
    make_image: bool = Field(
        default=True,
        description="Whether the registry builds the build's OCI image (the build_artifacts "
        "setting); false leaves the build without one.",
    )
    virtual_packages: dict[str, str] = Field(
        default_factory=dict,
        description="Virtual packages the solve assumes beyond the platform's own (name → "
        "version[=build]; an empty value removes one): the spec's CONDA_OVERRIDE_* variables "
        'over the conda_virtual_packages setting, e.g. {"__cuda": "12.4"}.',
    )
    store_policy: StorePolicy = Field(
        default_factory=lambda: StorePolicy(),
        description="How the packer treats the build's directory in the store (the settings "
        "as they were at submission); events before it get conda-store's defaults.",
    )

    def submitted_lockfile(self) -> dict[str, Any]:
        """The submitted lockfile document, from either form of the event."""
        return self.lockfile or self.specification.get("lockfile") or {}


NO_IMAGE_REASON = "not made: the build_artifacts setting has no DOCKER_MANIFEST"
"""What a build submitted with ``make_image`` false says about its image."""


class BuildStarted(EventData):
    build_id: int
    phase: str = "solve"
    worker: str = ""


class Solved(EventData):
    build_id: int
    lockfile_key: str
    yaml_key: str
    packages: list[PackageRef]
    cache_hit: bool = False


class Packed(EventData):
    """The build is installed (and archived): it is COMPLETED.

    Version 2 carries what the image builder needs (where the environment lives, its
    lockfile, whether to make an image), so the registry handles it without reading the rest
    of the build's stream; it no longer repeats ``Solved``'s package list. Version 1 events
    (``namespace`` None) still parse, and their readers look the rest up in the stream.
    """

    schema_version: ClassVar[int] = 2
    build_id: int
    archive_key: str | None = Field(
        description="The conda-pack archive; None when build_artifacts has no CONDA_PACK."
    )
    logs_key: str
    size: int
    namespace: str | None = Field(default=None, description="Version 2: the build's namespace.")
    environment: str | None = Field(default=None, description="Version 2: its environment.")
    build_key: str = Field(default="", description="Version 2: the build key (image tag).")
    lockfile_key: str | None = Field(
        default=None, description="Version 2: the lockfile the build was installed from."
    )
    make_image: bool = Field(
        default=True, description="Version 2: SpecSubmitted's make_image, for the registry."
    )
    packages: list[PackageRef] = Field(
        default_factory=list, description="Version 1 only: a copy of Solved's packages."
    )
    directory: str | None = Field(
        default=None,
        description="The complete prefix at <store>/<namespace>/<build key> (the DIRECTORY "
        "artifact); None in events written before the store directory was kept.",
    )
    sbom_key: str | None = Field(
        default=None,
        description="The build's CycloneDX 1.5 JSON SBOM (the SBOM artifact, also attached to "
        "its image); None in events written before SBOMs were made.",
    )


class ImagePushed(EventData):
    build_id: int
    manifest_digest: str
    manifest_key: str
    tags: list[str] = Field(default_factory=list)


class ImageFailed(EventData):
    """The registry could not build the image of a completed build (the build stays usable)."""

    build_id: int
    reason: str


class BuildFailed(EventData):
    build_id: int
    phase: str
    reason: str
    logs_key: str | None = None


class BuildCanceled(EventData):
    build_id: int
    reason: str = "canceled from the REST API"


class BuildDeleted(EventData):
    build_id: int
    kept_artifacts: list[ArtifactType] = Field(default_factory=lambda: ["LOGS", "LOCKFILE", "YAML"])


def stream_of_build(build_id: int) -> str:
    """The stream holding one build's events, from ``SpecSubmitted`` to its outcome."""
    return f"build-{build_id}"


def stream_of_namespace(namespace: str) -> str:
    """A namespace's own events: creation, deletion, metadata and roles."""
    return f"namespace-{namespace}"


def stream_of_environment(namespace: str, name: str) -> str:
    """An environment's own events: current build, description, deletion, update checks."""
    return f"environment-{namespace}/{name}"


# --- lifecycle --------------------------------------------------------------------------------


class NamespaceCreated(EventData):
    namespace: str


class NamespaceDeleted(EventData):
    namespace: str


class NamespaceMetadataSet(EventData):
    namespace: str
    metadata: dict[str, Any]


class RoleBindingsChanged(EventData):
    """v1 role mappings of a namespace, replaced as a whole (conda-store's PUT semantics)."""

    namespace: str
    role_mappings: dict[str, list[str]]


class NamespaceRoleSet(EventData):
    """v2 role mapping: ``other_namespace`` gets ``role`` on ``namespace``; role None removes it."""

    namespace: str
    other_namespace: str
    role: str | None


class EnvironmentDeleted(EventData):
    namespace: str
    environment: str


class EnvironmentDescriptionSet(EventData):
    namespace: str
    environment: str
    description: str


class CurrentBuildSet(EventData):
    namespace: str
    environment: str
    build_id: int


class SettingsChanged(EventData):
    namespace: str | None = None
    environment: str | None = None
    values: dict[str, Any]


class TokenIssued(EventData):
    """Records that a token was minted; never the token itself."""

    primary_namespace: str
    role_bindings: dict[str, list[str]]
    expiration: datetime


# --- operations -------------------------------------------------------------------------------


class PackageUpdate(BaseModel):
    """A package of a build whose channels now have a newer version."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    manager: Literal["conda", "pip"] = "conda"
    name: str
    version: str = Field(description="The version the build has.")
    newer: str = Field(description="The version a solve of the same spec gives now.")


class UpdateCheckRequested(EventData):
    """Someone (or the daily schedule) asked whether an environment's current build is out of
    date; the solver re-solves its spec without building and answers with ``UpdateChecked``."""

    namespace: str
    environment: str
    build_id: int
    reason: Literal["schedule", "request"] = "request"


class UpdateChecked(EventData):
    """What a solve of the build's own spec gives now, against what the build has: the
    history of these says when an update became available. Nothing is built."""

    namespace: str
    environment: str
    build_id: int
    updates: list[PackageUpdate] = Field(default_factory=list)
    changed: int = Field(default=0, description="Packages that differ at all (incl. updates).")
    error: str | None = Field(default=None, description="Why the check could not solve.")


class ChannelRecord(BaseModel):
    """One package build of a channel, as much as the package search shows of it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    version: str
    build: str
    license: str | None = None


class ChannelIndexed(EventData):
    """The solver read a channel subdir whose repodata changed since it last said so.

    Carries the change (records added and removed since the previous ``ChannelIndexed`` of
    the same stream), never the whole channel, so a re-index of a large channel is small;
    one change is split over ``parts`` events to stay under the event size limit. The
    projector folds them into the package index (``conda_channels``/``conda_packages``).
    """

    channel: str
    subdir: str
    fingerprint: str = Field(description="The repodata fingerprint this change leads to.")
    added: list[ChannelRecord] = Field(default_factory=list)
    removed: list[ChannelRecord] = Field(default_factory=list)
    part: int = Field(default=1, ge=1)
    parts: int = Field(default=1, ge=1)


def stream_of_channel(channel: str, subdir: str) -> str:
    """One stream per channel subdir: its versions order the changes of its index."""
    return f"channel-{channel.rstrip('/')}|{subdir}"


class WatchedFileChanged(EventData):
    """A file under watch_paths has content not built before (its build is ``build_id``).

    Its stream (one per file) is the watcher's memory: a rescan submits a build only when
    the content differs from the last one recorded, and the append expecting the version it
    read makes a file's change build once even with two watchers racing."""

    path: str
    sha256: str
    build_id: int


class MessageParked(EventData):
    """A consumer could not use a message; it is kept here instead of being retried forever."""

    consumer: str
    subject: str
    stream_sequence: int
    error: str
    payload: str


# --- webhooks ---------------------------------------------------------------------------------


class WebhookRegistered(EventData):
    """An admin asked for events to be POSTed to ``url`` (stream ``webhooks``).

    No secret is recorded: the dispatcher derives it from the deployment's signing secret and
    ``webhook_id`` (``shared.webhooks.webhook_secret``), so this event is safe to publish."""

    webhook_id: str
    url: str
    event_types: list[str] = Field(default_factory=list, description="Empty: every type.")
    namespaces: list[str] = Field(
        default_factory=list, description="Empty: every namespace and deployment-wide events."
    )
    description: str = ""
    timeout_s: float = Field(default=10.0, description="Seconds a receiver has to answer.")


class WebhookDeleted(EventData):
    webhook_id: str


class WebhookReplayRequested(EventData):
    """Deliver again every wanted event after global position ``after``, in order."""

    webhook_id: str
    after: int = Field(ge=0)


# --- envelopes --------------------------------------------------------------------------------


class EventMetadata(BaseModel):
    model_config = ConfigDict(extra="allow")
    correlation_id: str | None = None
    causation_id: str | None = None
    actor: str | None = None


class NewEvent(BaseModel):
    """An event about to be appended; the store gives it a stream version and a position."""

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    data: EventData
    metadata: EventMetadata = Field(default_factory=EventMetadata)
    occurred_at: datetime = Field(default_factory=utcnow)

    @property
    def type(self) -> str:
        return self.data.event_type()

    def row(self) -> dict[str, Any]:
        return {
            "event_id": str(self.event_id),
            "type": self.type,
            "schema_version": self.data.schema_version,
            "data": self.data.model_dump(mode="json"),
            "metadata": self.metadata.model_dump(mode="json", exclude_none=True),
            "occurred_at": self.occurred_at.isoformat(),
        }


class UnknownEventType(ValueError):
    pass


class RecordedEvent(BaseModel):
    """An event as stored and as published on NATS (the JSON is the integration contract)."""

    global_position: int
    stream: str
    version: int
    event_id: uuid.UUID
    type: str
    schema_version: int = 1
    data: dict[str, Any]
    metadata: EventMetadata
    occurred_at: datetime
    recorded_at: datetime

    def payload(self) -> EventData:
        """The typed payload; raises UnknownEventType or pydantic.ValidationError on bad input."""
        cls = EventData.registry.get(self.type)
        if cls is None:
            raise UnknownEventType(f"unknown event type {self.type!r}")
        return cls.model_validate(self.data)

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> RecordedEvent:
        return cls.model_validate(json.loads(raw))


def new_event(
    data: EventData,
    *,
    actor: str | None = None,
    correlation_id: str | None = None,
    causation: RecordedEvent | None = None,
) -> NewEvent:
    """Build an envelope, inheriting correlation from the causing event when there is one."""
    if causation is not None:
        correlation_id = correlation_id or causation.metadata.correlation_id
        actor = actor or causation.metadata.actor
    return NewEvent(
        data=data,
        metadata=EventMetadata(
            correlation_id=correlation_id,
            causation_id=str(causation.event_id) if causation else None,
            actor=actor,
        ),
    )


def event_json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every event payload plus the envelope, keyed by type name."""
    schemas = {name: cls.model_json_schema() for name, cls in sorted(EventData.registry.items())}
    schemas["RecordedEvent"] = RecordedEvent.model_json_schema()
    return schemas

"""Submitting a specification: the one command every entry point (API, registry, tests) uses.

It resolves conda-store's runtime settings for the target namespace/environment, normalizes
the spec (raising SpecificationError for a 400), allocates the build id and appends
``SpecSubmitted`` to the new build's stream.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from shared.events import (
    BuildFailed,
    EventData,
    SpecSubmitted,
    StorePolicy,
    new_event,
    stream_of_build,
    utcnow,
)
from shared.eventstore import NO_STREAM, Append, EventStore
from shared.runtime_settings import (
    BuildArtifactType,
    ResolvedSettings,
    makes_image,
    merge_settings,
)
from shared.spec import (
    CondaSpecification,
    NormalizedSpec,
    build_key_v2,
    normalize_specification,
    specification_sha256,
)

SUBMISSION = "submission"
"""The phase of a build that failed before any worker took it."""

SettingLayers = tuple[dict[str, Any] | None, dict[str, Any] | None, dict[str, Any] | None]


@dataclass(frozen=True, slots=True)
class Submitted:
    """A submission as recorded: its ``SpecSubmitted`` and the log position of the last event
    written with it, so a caller waits for the read model without reading the stream back."""

    event: SpecSubmitted
    position: int

    @property
    def build_id(self) -> int:
        return self.event.build_id


async def settings_layers(
    pool: asyncpg.Pool, namespace: str | None = None, environment: str | None = None
) -> SettingLayers:
    """The stored (global, namespace, environment) layers of a level, from the read model;
    None for a layer above the level asked or never set."""
    levels = [""]
    if namespace:
        levels.append(namespace)
        if environment:
            levels.append(f"{namespace}/{environment}")
    try:
        rows = await pool.fetch(
            "SELECT level_key, data FROM runtime_settings WHERE level_key = ANY($1)", levels
        )
    except asyncpg.UndefinedTableError:
        rows = []
    layers: dict[str, dict[str, Any]] = {r["level_key"]: r["data"] for r in rows}
    return (
        layers.get(""),
        layers.get(namespace) if namespace else None,
        layers.get(f"{namespace}/{environment}") if namespace and environment else None,
    )


async def resolved_settings(
    pool: asyncpg.Pool,
    namespace: str | None = None,
    environment: str | None = None,
    deployment: Mapping[str, Any] | None = None,
) -> ResolvedSettings:
    """conda-store's merge: defaults < deployment < global < namespace < environment."""
    return merge_settings(deployment, *await settings_layers(pool, namespace, environment))


def store_policy(settings: ResolvedSettings) -> StorePolicy:
    """What the packer needs of the settings, fixed into the build's first event."""
    return StorePolicy(
        make_archive=BuildArtifactType.CONDA_PACK.value in settings.build_artifacts,
        storage_threshold=settings.storage_threshold,
        uid=settings.default_uid,
        gid=settings.default_gid,
        permissions=settings.default_permissions,
    )


AlsoAppend = Callable[[SpecSubmitted], Sequence[Append]]
"""Appends that must commit with the submission or not at all, made from its payload."""


async def _submit(
    store: EventStore,
    actor: str | None,
    name: str,
    sha256: str,
    *,
    also: AlsoAppend | None = None,
    then: Callable[[SpecSubmitted], Sequence[EventData]] | None = None,
    **fields: Any,
) -> Submitted:
    """Allocate the build id, derive the build key, append ``SpecSubmitted`` to a new stream
    (with ``then``'s events after it there, and ``also``'s appends, in one transaction)."""
    build_id = await store.next_build_id()
    scheduled_on = utcnow()
    data = SpecSubmitted(
        build_id=build_id,
        environment=name,
        sha256=sha256,
        build_key=build_key_v2(sha256, scheduled_on, build_id, name),
        scheduled_on=scheduled_on,
        **fields,
    )
    stream = stream_of_build(build_id)
    payloads = [data, *(then(data) if then else ())]
    events = [new_event(e, actor=actor, correlation_id=stream) for e in payloads]
    extra = list(also(data)) if also else []
    if extra:
        recorded = await store.append_many([Append(stream, events, NO_STREAM), *extra]) or []
    else:
        recorded = await store.append(stream, events, NO_STREAM)
    return Submitted(data, max(e.global_position for e in recorded))


async def submit_specification(
    store: EventStore,
    spec: CondaSpecification,
    namespace: str,
    *,
    actor: str | None = None,
    settings: ResolvedSettings | None = None,
    rebuild_of: int | None = None,
    make_image: bool | None = None,
    also: AlsoAppend | None = None,
) -> Submitted:
    """Normalize and submit; returns what was recorded (with ``build_id``).

    ``make_image`` None follows the settings' ``build_artifacts`` (an image pulled on demand
    is always made)."""
    if settings is None:
        settings = await resolved_settings(store.pool, namespace, spec.name)
    return await submit_normalized(
        store,
        normalize_specification(spec, settings),
        namespace,
        settings,
        actor=actor,
        rebuild_of=rebuild_of,
        make_image=make_image,
        also=also,
    )


async def submit_normalized(
    store: EventStore,
    normalized: NormalizedSpec,
    namespace: str,
    settings: ResolvedSettings,
    *,
    actor: str | None = None,
    rebuild_of: int | None = None,
    make_image: bool | None = None,
    also: AlsoAppend | None = None,
) -> Submitted:
    """Submit a spec normalized already against ``settings`` (a route that refuses bad input
    before it writes anything, even the namespace, normalizes once and passes it here)."""
    stored = normalized.spec
    return await _submit(
        store,
        actor,
        stored.name,
        normalized.sha256,
        namespace=namespace,
        specification=stored.model_dump(),
        channels=normalized.channel_urls,
        conda_dependencies=stored.conda_dependencies(),
        pip_dependencies=stored.pip_dependencies(),
        platforms=list(settings.conda_solve_platforms),
        virtual_packages=normalized.virtual_packages,
        rebuild_of=rebuild_of,
        make_image=makes_image(settings) if make_image is None else make_image,
        store_policy=store_policy(settings),
        also=also,
    )


async def submit_rejected(
    store: EventStore,
    namespace: str,
    name: str,
    reason: str,
    sha256: str,
    *,
    actor: str | None = None,
    also: AlsoAppend | None = None,
) -> Submitted:
    """A build that fails at submission with ``reason``: for input no client can be told
    about with a 400 (a watched file), so the failure is where users look, on the build.

    ``BuildFailed`` commits with ``SpecSubmitted``, so no worker ever starts it."""
    empty = {"name": name, "channels": [], "dependencies": [], "description": ""}
    return await _submit(
        store,
        actor,
        name,
        sha256,
        also=also,
        then=lambda data: [BuildFailed(build_id=data.build_id, phase=SUBMISSION, reason=reason)],
        namespace=namespace,
        specification=empty,
        make_image=False,
        store_policy=StorePolicy(make_archive=False),
    )


async def submit_lockfile(
    store: EventStore,
    lockfile_spec: Any,
    namespace: str,
    *,
    actor: str | None = None,
    settings: ResolvedSettings | None = None,
) -> Submitted:
    """Submit a conda-lock v1 lockfile (a LockfileSpecification); the solver skips solving.

    The submitted text goes into the event as a string (a ``jsonb`` document would lose its
    key order and layout), so the build serves back exactly what the client sent.
    """
    if settings is None:
        settings = await resolved_settings(store.pool, namespace, lockfile_spec.name)
    spec_dict = lockfile_spec.model_dump()
    return await _submit(
        store,
        actor,
        lockfile_spec.name,
        specification_sha256(spec_dict),
        namespace=namespace,
        specification=spec_dict,
        is_lockfile=True,
        lockfile_text=lockfile_spec.submitted_text,
        make_image=makes_image(settings),
        store_policy=store_policy(settings),
    )

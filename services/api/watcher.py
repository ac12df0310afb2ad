"""conda-store's ``watch_paths``: build YAML files from directories into the filesystem namespace.

One gateway process at a time scans (the ``watch-paths`` leadership), every
``watch_interval_s``. A file whose content differs from the last content recorded on its
stream (``WatchedFileChanged``) is submitted; the record and the build commit together, and
the record's append expects the stream version read, so a change is built once even when two
scanners race or one crashes between reading and writing. A file that cannot be built (bad
YAML, an invalid or disallowed spec) becomes a FAILED build with the reason: the people who
edit these files look at builds, not at the server's log. A removed file changes nothing,
as in conda-store: its environment and builds stay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from shared.events import SpecSubmitted, WatchedFileChanged, new_event
from shared.eventstore import NO_STREAM, Append, ConcurrencyError, EventStore
from shared.eventstore.leader import Lease, run_as_leader
from shared.logging import get_logger
from shared.runtime_settings import merge_settings
from shared.spec import SpecificationError
from shared.submission import (
    Submitted,
    resolved_settings,
    settings_layers,
    submit_rejected,
    submit_specification,
)
from shared.watched_files import Rejected, WatchedFile, discover, parse_watched, read_watched

from .startup import ensure_namespace

log = get_logger(__name__)
ROLE = "watch-paths"
ACTOR = "watch-paths"


class PathWatcher:
    """Scans ``paths``; ``deployment`` is the runtime settings' deploy-time defaults."""

    def __init__(
        self,
        store: EventStore,
        paths: Sequence[Path],
        deployment: Mapping[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.paths = list(paths)
        self.deployment = dict(deployment or {})

    async def run(self, interval_s: float, lease_s: float) -> None:
        """Scan forever under the leadership (a standby scans once it takes over)."""

        async def lead(_lease: Lease) -> None:
            while True:
                await self.scan()
                await asyncio.sleep(interval_s)

        await run_as_leader(self.store, ROLE, lead, lease_s)

    async def namespace(self) -> str:
        layers = await settings_layers(self.store.pool)
        return merge_settings(self.deployment, *layers).filesystem_namespace

    async def scan(self) -> list[int]:
        """One pass over the watched files; the ids of the builds it submitted."""
        files = discover(self.paths)
        if not files:
            return []
        namespace = await self.namespace()
        await ensure_namespace(self.store, namespace)
        submitted: list[int] = []
        for path in files:
            try:
                file = read_watched(path)
            except OSError as exc:
                log.warning("watched file unreadable", path=str(path), error=str(exc))
                continue
            build_id = await self._submit_if_changed(file, namespace)
            if build_id is not None:
                submitted.append(build_id)
        return submitted

    async def _submit_if_changed(self, file: WatchedFile, namespace: str) -> int | None:
        """Nothing is remembered in memory: the file's stream is read each time (one indexed
        query), so a scanner never acts on what another one changed meanwhile."""
        history = await self.store.read_stream(file.stream)
        if history and history[-1].data.get("sha256") == file.sha256:
            return None
        version = history[-1].version if history else NO_STREAM
        try:
            data = await self._submit(file, namespace, version)
        except ConcurrencyError:
            log.info("watched file change recorded by another scanner", path=str(file.path))
            return None
        return data.build_id

    async def _submit(self, file: WatchedFile, namespace: str, version: int) -> Submitted:
        def record(data: SpecSubmitted) -> list[Append]:
            changed = WatchedFileChanged(
                path=str(file.path), sha256=file.sha256, build_id=data.build_id
            )
            event = new_event(changed, actor=ACTOR, correlation_id=file.stream)
            return [Append(file.stream, [event], version)]

        parsed = parse_watched(file)
        if not isinstance(parsed, Rejected):
            try:
                settings = await resolved_settings(
                    self.store.pool, namespace, parsed.name, self.deployment
                )
                data = await submit_specification(
                    self.store, parsed, namespace, actor=ACTOR, settings=settings, also=record
                )
            except SpecificationError as exc:
                parsed = Rejected(parsed.name, f"{file.path.name}: {exc.message}")
            else:
                with structlog.contextvars.bound_contextvars(build_id=data.build_id):
                    log.info("watched file submitted", path=str(file.path), namespace=namespace)
                return data
        data = await submit_rejected(
            self.store,
            namespace,
            parsed.name,
            parsed.reason,
            file.sha256,
            actor=ACTOR,
            also=record,
        )
        with structlog.contextvars.bound_contextvars(build_id=data.build_id):
            log.warning("watched file cannot be built", path=str(file.path), reason=parsed.reason)
        return data

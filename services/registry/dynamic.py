"""On-demand images: ``conda-store-dynamic/<seg>/<seg>/...`` becomes a spec, then a build.

The first pull submits the specification (channels from ``dynamic_image_channels``) through
the same submission command as the API; later pulls of the same segments reuse the newest
live build of that exact spec instead of building again. Within one process a lock per
environment makes concurrent first pulls share one build.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from shared.eventstore import EventStore
from shared.logging import get_logger
from shared.settings import Settings
from shared.spec import DYNAMIC_NAMESPACE, CondaSpecification, normalize_specification
from shared.submission import resolved_settings, submit_specification

from . import repository

log = get_logger(__name__)


class DynamicImages:
    def __init__(
        self,
        store: EventStore,
        settings: Settings,
        runtime_defaults: Mapping[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.channels = list(settings.dynamic_image_channels)
        self.runtime_defaults = dict(runtime_defaults or {})
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._submitted: dict[str, int] = {}

    async def ensure_build(self, environment: str, dependencies: list[str]) -> int:
        """The build serving this on-demand image: an existing one, or a new submission."""
        spec = CondaSpecification(
            name=environment, channels=self.channels, dependencies=dependencies
        )
        runtime = await resolved_settings(
            self.store.pool, DYNAMIC_NAMESPACE, environment, self.runtime_defaults
        )
        sha256 = normalize_specification(spec, runtime).sha256
        async with self._locks[environment]:
            build_id = self._submitted.get(sha256)
            if build_id is not None:
                image = await repository.build_image(self.store, build_id)
                if image.status in ("failed", "deleted", "unknown"):
                    build_id = None
            if build_id is None:
                build_id = await repository.reusable_build(
                    self.store.pool, DYNAMIC_NAMESPACE, environment, sha256
                )
            if build_id is None:
                submitted = await submit_specification(
                    self.store,
                    spec,
                    DYNAMIC_NAMESPACE,
                    actor="registry",
                    settings=runtime,
                    make_image=True,  # the pull asked for the image
                )
                build_id = submitted.build_id
                log.info("on-demand image submitted", build_id=build_id, environment=environment)
            self._submitted[sha256] = build_id
            return build_id

"""The store linker: keeps ``<store>/<namespace>/envs/<name>`` on the current build, removes the
directories of failed, canceled and deleted builds.

It runs in every packer process (the packers own the store directory: they write the prefixes
into it), as one durable consumer that JetStream hands one event at a time, in log order, to
whichever packer asks first. So several packers on one store volume, on one machine or many,
never interleave their decisions, and a packer that dies mid-event leaves the event to the next
one: every action is idempotent (a link renamed over itself, a directory already gone), and the
private tables ``store_builds``/``store_links`` are written after the disk, so a replay of the
event redoes exactly the same.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

import asyncpg

from shared.bus.consumer import HandlerContext, Worker
from shared.events import RecordedEvent, stream_of_build
from shared.eventstore import Append, EventStore
from shared.logging import get_logger

from .store import (
    is_complete,
    link_of,
    remove_link,
    remove_namespace_dir,
    remove_prefix,
    switch_link,
)
from .store_fold import (
    EVENT_TYPES,
    Action,
    EnvKey,
    Link,
    RemoveNamespace,
    RemovePrefix,
    StoreBuild,
    StoreState,
    Unlink,
)

log = get_logger(__name__)

_BUILD_COLS = "build_id, namespace, environment, prefix, status"


class StoreLinker(Worker):
    name = "store-linker"
    event_types = EVENT_TYPES
    in_order = True

    def __init__(self, store_root: Path, pool: asyncpg.Pool) -> None:
        self.store_root = store_root
        self.pool = pool

    async def handle(self, event: RecordedEvent, ctx: HandlerContext) -> Sequence[Append]:
        state = StoreState(self.store_root)
        await self._load(state, event, ctx.store)
        state.apply(event.type, event.data)
        await asyncio.to_thread(self._carry_out, state.actions, event)
        await self._save(state)
        return []

    # --- state -----------------------------------------------------------------------------

    async def _load(self, state: StoreState, event: RecordedEvent, store: EventStore) -> None:
        d = event.data
        if "build_id" in d:
            row = await self.pool.fetchrow(
                f"SELECT {_BUILD_COLS} FROM store_builds WHERE build_id = $1", d["build_id"]
            )
            if row is not None:
                state.builds[row["build_id"]] = StoreBuild(**dict(row))
            elif event.type != "SpecSubmitted":
                await self._learn_build(state, d["build_id"], store)
            build = state.builds.get(d["build_id"])
            keys = [(build.namespace, build.environment)] if build else []
            if event.type == "CurrentBuildSet":
                keys.append((d["namespace"], d["environment"]))
            await self._load_links(state, keys)
        elif event.type == "EnvironmentDeleted":
            await self._load_builds(state, "namespace = $1 AND environment = $2", *_env(d))
            await self._load_links(state, [_env(d)])
        elif event.type == "NamespaceDeleted":
            await self._load_builds(state, "namespace = $1", d["namespace"])
            rows = await self.pool.fetch(
                "SELECT environment, current_build_id FROM store_links WHERE namespace = $1",
                d["namespace"],
            )
            for r in rows:
                state.links[(d["namespace"], r["environment"])] = r["current_build_id"]

    async def _learn_build(self, state: StoreState, build_id: int, store: EventStore) -> None:
        """A build submitted before the linker existed: its first event says where it lives."""
        first = (await store.read_stream(stream_of_build(build_id), 1))[:1]
        if first and first[0].type == "SpecSubmitted":
            state.apply("SpecSubmitted", first[0].data)

    async def _load_builds(self, state: StoreState, where: str, *args: object) -> None:
        for row in await self.pool.fetch(
            f"SELECT {_BUILD_COLS} FROM store_builds WHERE {where}", *args
        ):
            state.builds[row["build_id"]] = StoreBuild(**dict(row))

    async def _load_links(self, state: StoreState, keys: list[EnvKey]) -> None:
        for ns, env in keys:
            current = await self.pool.fetchval(
                "SELECT current_build_id FROM store_links WHERE namespace = $1"
                " AND environment = $2",
                ns,
                env,
            )
            state.links.setdefault((ns, env), current)

    async def _save(self, state: StoreState) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            for build_id in state.changed_builds:
                b = state.builds[build_id]
                await conn.execute(
                    f"INSERT INTO store_builds ({_BUILD_COLS}) VALUES ($1, $2, $3, $4, $5)"
                    " ON CONFLICT (build_id) DO UPDATE SET prefix = EXCLUDED.prefix,"
                    " status = EXCLUDED.status",
                    b.build_id,
                    b.namespace,
                    b.environment,
                    b.prefix,
                    b.status,
                )
            for ns, env in state.changed_links:
                await conn.execute(
                    "INSERT INTO store_links (namespace, environment, current_build_id)"
                    " VALUES ($1, $2, $3) ON CONFLICT (namespace, environment)"
                    " DO UPDATE SET current_build_id = EXCLUDED.current_build_id",
                    ns,
                    env,
                    state.links[(ns, env)],
                )

    # --- the disk --------------------------------------------------------------------------

    def _carry_out(self, actions: list[Action], event: RecordedEvent) -> None:
        for action in actions:
            if isinstance(action, Link):
                self._link(action, event)
            elif isinstance(action, Unlink):
                remove_link(link_of(self.store_root, action.namespace, action.environment))
                log.info("store link removed", namespace=action.namespace, env=action.environment)
            elif isinstance(action, RemovePrefix):
                prefix = Path(action.prefix)
                if self._inside_store(prefix) and prefix.exists():
                    remove_prefix(prefix)
                    log.info("build directory removed", prefix=str(prefix))
            elif isinstance(action, RemoveNamespace):
                remove_namespace_dir(self.store_root, action.namespace)

    def _link(self, action: Link, event: RecordedEvent) -> None:
        prefix = Path(action.prefix)
        if not (self._inside_store(prefix) and is_complete(prefix)):
            log.warning("not linking an incomplete build directory", prefix=str(prefix))
            return
        link = link_of(self.store_root, action.namespace, action.environment)
        switch_link(link, prefix)
        lag = time.time() - event.recorded_at.timestamp()
        log.info("store link switched", link=str(link), prefix=str(prefix), lag_s=round(lag, 3))

    def _inside_store(self, path: Path) -> bool:
        return path.is_relative_to(self.store_root)


def _env(d: dict[str, object]) -> EnvKey:
    return (str(d["namespace"]), str(d["environment"]))

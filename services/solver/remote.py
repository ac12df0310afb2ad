"""Solve on request over NATS (``<subject_prefix>.solve``), for ``GET /specification/`` and
``conda-store solve``: no build, no events, the same resolver and cache as builds.

Request: JSON ``{"channels": [...], "conda": [...], "pip": [...], "platforms": [...]}``
(``"use_cache": false`` forces a fresh solve). Reply: ``{"status": "ok", "cache_hit": bool,
"platform": primary, "packages": [PackageRef dicts for it], "other_platforms": {platform:
[...]}}`` or ``{"status": "error", "message": ...}``. Replicas share the
subject through a queue group, so each request is answered once.
"""

from __future__ import annotations

import asyncio
import json

from nats.aio.client import Client
from nats.aio.msg import Msg
from pydantic import TypeAdapter, ValidationError

from shared.logging import get_logger
from shared.remote_solve import request_solve, solve_subject
from shared.settings import Settings

from .resolve import Resolver
from .types import LockedPackage, SolveFailed, SolveRequest

__all__ = ["answer", "request_solve", "serve", "solve_subject"]

log = get_logger(__name__)
QUEUE = "solver"
_PACKAGES = TypeAdapter(list[LockedPackage])
_REF_ONLY = {"__all__": {"platform", "depends"}}
"""What a package reference leaves out: the lockfile's own fields."""


async def answer(resolver: Resolver, raw: bytes) -> bytes:
    """The reply document (JSON) for one request body."""
    try:
        request = SolveRequest.model_validate_json(raw)
    except ValidationError as exc:
        return _error(f"invalid solve request: {exc}")
    try:
        resolution = await resolver.resolve(request)
    except SolveFailed as exc:
        return _error(exc.reason)
    except Exception as exc:  # infrastructure: tell the caller rather than leave it waiting
        log.exception("remote solve failed")
        return _error(f"solver unavailable: {type(exc).__name__}: {exc}")
    result = resolution.result
    primary = result.primary_platform()
    head = {"status": "ok", "cache_hit": resolution.cache_hit, "platform": primary}
    # Package lists are serialized by pydantic's Rust core: a reply can hold a thousand
    # packages, and building dicts for json.dumps took longer than the cache lookup.
    packages = _PACKAGES.dump_json(result.for_platform(primary), exclude=_REF_ONLY)
    others = b",".join(
        json.dumps(p).encode() + b":" + _PACKAGES.dump_json(result.for_platform(p))
        for p in result.platforms
        if p != primary
    )
    return (
        json.dumps(head).encode()[:-1]
        + b',"packages":'
        + packages
        + b',"other_platforms":{'
        + others
        + b"}}"
    )


def _error(message: str) -> bytes:
    return json.dumps({"status": "error", "message": message}).encode()


async def serve(
    nc: Client,
    resolver: Resolver,
    settings: Settings,
    stop: asyncio.Event,
    concurrency: int = 8,
) -> None:
    """Answer solve requests until ``stop`` is set."""
    slots = asyncio.Semaphore(concurrency)
    tasks: set[asyncio.Task[None]] = set()

    async def reply(msg: Msg) -> None:
        async with slots:
            body = await answer(resolver, msg.data)
            if msg.reply:
                await msg.respond(body)

    async def on_message(msg: Msg) -> None:
        task = asyncio.create_task(reply(msg))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    sub = await nc.subscribe(solve_subject(settings.subject_prefix), queue=QUEUE, cb=on_message)
    log.info("remote solve endpoint ready", subject=solve_subject(settings.subject_prefix))
    try:
        await stop.wait()
    finally:
        await sub.unsubscribe()
        await asyncio.gather(*tasks, return_exceptions=True)

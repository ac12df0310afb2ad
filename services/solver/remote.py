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
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from pydantic import ValidationError

from shared.logging import get_logger
from shared.remote_solve import request_solve, solve_subject
from shared.settings import Settings

from .resolve import Resolver
from .types import SolveFailed, SolveRequest

__all__ = ["answer", "request_solve", "serve", "solve_subject"]

log = get_logger(__name__)
QUEUE = "solver"
_LOCK_ONLY = ("platform", "depends")


async def answer(resolver: Resolver, raw: bytes) -> dict[str, Any]:
    """The reply document for one request body."""
    try:
        request = SolveRequest.model_validate_json(raw)
    except ValidationError as exc:
        return {"status": "error", "message": f"invalid solve request: {exc}"}
    try:
        resolution = await resolver.resolve(request)
    except SolveFailed as exc:
        return {"status": "error", "message": exc.reason}
    except Exception as exc:  # infrastructure: tell the caller rather than leave it waiting
        log.exception("remote solve failed")
        return {"status": "error", "message": f"solver unavailable: {type(exc).__name__}: {exc}"}
    result = resolution.result
    primary = result.primary_platform()
    by_platform: dict[str, list[dict[str, Any]]] = {p: [] for p in result.platforms}
    for package in result.model_dump(mode="json")["packages"]:  # one serializer call
        by_platform[package["platform"]].append(package)
    return {
        "status": "ok",
        "cache_hit": resolution.cache_hit,
        "platform": primary,
        "packages": [
            {k: v for k, v in p.items() if k not in _LOCK_ONLY} for p in by_platform[primary]
        ],
        "other_platforms": {p: pkgs for p, pkgs in by_platform.items() if p != primary},
    }


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
                await msg.respond(json.dumps(body).encode())

    async def on_message(msg: Msg) -> None:
        task = asyncio.create_task(reply(msg))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    sub = await nc.subscribe(solve_subject(settings), queue=QUEUE, cb=on_message)
    log.info("remote solve endpoint ready", subject=solve_subject(settings))
    try:
        await stop.wait()
    finally:
        await sub.unsubscribe()
        await asyncio.gather(*tasks, return_exceptions=True)

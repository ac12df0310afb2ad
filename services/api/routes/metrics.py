"""GET /metrics: Prometheus text (conda-store's names plus queue depth and storage)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse, Response

from ..deps import api_state
from ..state import ApiState

router = APIRouter()


def _disk(path: Path) -> tuple[int, int, int] | None:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        usage = shutil.disk_usage(probe)
    except OSError:
        return None
    return usage.free, usage.total, usage.used


@router.get("/metrics")
async def metrics(state: ApiState = Depends(api_state)) -> Response:
    lines: list[str] = []
    disk = await asyncio.to_thread(_disk, Path(state.settings.artifact_root))
    if disk is not None:
        lines += [
            f"conda_store_disk_free {disk[0]}",
            f"conda_store_disk_total {disk[1]}",
            f"conda_store_disk_usage {disk[2]}",
        ]
    for r in await state.pool.fetch("SELECT status, count(*) AS n FROM builds GROUP BY status"):
        lines.append(f"conda_store_build_{r['status'].lower()} {r['n']}")
    environments = await state.pool.fetchval("SELECT count(*) FROM environments")
    lines.append(f"conda_store_environments {environments}")
    queued = await state.pool.fetchval(
        "SELECT count(*) FROM builds WHERE status IN ('QUEUED', 'BUILDING')"
    )
    lines.append(f"conda_store_queue_depth {queued}")
    storage = await state.pool.fetchval("SELECT coalesce(sum(size), 0) FROM builds")
    lines.append(f"conda_store_build_storage_bytes {storage}")
    lines += await _bus_health(state)
    return PlainTextResponse("\n".join(lines))


async def _bus_health(state: ApiState) -> list[str]:
    """For operators: messages parked instead of delivered (see the ``parked-*`` streams), and
    events the relay has not yet published (growing while NATS is away)."""
    parked = await state.pool.fetch(
        "SELECT data->>'consumer' AS consumer, count(*) AS n FROM events"
        " WHERE type = 'MessageParked' GROUP BY 1 ORDER BY 1"
    )
    lines = [f'conda_store_parked_messages{{consumer="{r["consumer"]}"}} {r["n"]}' for r in parked]
    pending = await state.pool.fetchval(
        "SELECT coalesce(max(global_position), 0)"
        " - coalesce((SELECT position FROM positions WHERE name = 'relay'), 0) FROM events"
    )
    lines.append(f"conda_store_relay_pending_events {pending}")
    return lines

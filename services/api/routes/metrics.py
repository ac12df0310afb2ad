"""GET /metrics: Prometheus text (conda-store's names plus queue depth and storage)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse, Response

from shared.bus.relay import POSITION_NAME as RELAY_POSITION
from shared.eventstore.health import backlog, parked_by_consumer

from ..deps import api_state
from ..queries import metrics as metrics_queries
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
    for build_status, n in (await metrics_queries.builds_by_status(state.pool)).items():
        lines.append(f"conda_store_build_{build_status.lower()} {n}")
    lines.append(f"conda_store_environments {await metrics_queries.environment_count(state.pool)}")
    lines.append(f"conda_store_queue_depth {await metrics_queries.queue_depth(state.pool)}")
    storage = await metrics_queries.build_storage_bytes(state.pool)
    lines.append(f"conda_store_build_storage_bytes {storage}")
    lines += await _bus_health(state)
    return PlainTextResponse("\n".join(lines))


async def _bus_health(state: ApiState) -> list[str]:
    """For operators: messages parked instead of delivered (see the ``parked-*`` streams), and
    events the relay has not yet published (growing while NATS is away)."""
    parked = await parked_by_consumer(state.store)
    lines = [f'conda_store_parked_messages{{consumer="{c}"}} {n}' for c, n in parked.items()]
    pending = await backlog(state.store, RELAY_POSITION)
    lines.append(f"conda_store_relay_pending_events {pending}")
    return lines

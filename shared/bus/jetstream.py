"""NATS connection and the one JetStream stream that carries every event."""

from __future__ import annotations

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from shared.settings import Settings

DUPLICATE_WINDOW_S = 120.0


def nats_servers(url: str) -> list[str]:
    """The server URLs in ``CONDA_STORE_NATS_URL`` ("nats://a:4222,nats://b:4222")."""
    servers = [part.strip() for part in url.split(",") if part.strip()]
    if not servers:
        raise ValueError("CONDA_STORE_NATS_URL names no server")
    return servers


async def connect_nats(url: str, name: str) -> Client:
    """Connect to any of the servers in ``url``, retrying forever while none is up (events wait
    in Postgres meanwhile) and moving to another server of the cluster when one goes away."""
    return await nats.connect(
        nats_servers(url),
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=2,
        allow_reconnect=True,
        # Shutdown drains pending acks; it must not hold a stopping service for 30 s.
        drain_timeout=3,
    )


def stream_config(settings: Settings) -> StreamConfig:
    return StreamConfig(
        name=settings.nats_stream,
        subjects=[f"{settings.subject_prefix}.events.>"],
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        duplicate_window=DUPLICATE_WINDOW_S,
        num_replicas=settings.nats_replicas,
    )


async def ensure_stream(js: JetStreamContext, settings: Settings) -> None:
    config = stream_config(settings)
    try:
        await js.stream_info(config.name)
    except NotFoundError:
        await js.add_stream(config)
    else:
        await js.update_stream(config)

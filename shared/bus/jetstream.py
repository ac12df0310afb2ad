"""NATS connection and the one JetStream stream that carries every event."""

from __future__ import annotations

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from shared.settings import Settings

DUPLICATE_WINDOW_S = 120.0


async def connect_nats(url: str, name: str) -> Client:
    """Connect, retrying forever while the server is down (events wait in Postgres meanwhile)."""
    return await nats.connect(
        url,
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
    )


async def ensure_stream(js: JetStreamContext, settings: Settings) -> None:
    config = stream_config(settings)
    try:
        await js.stream_info(config.name)
    except NotFoundError:
        await js.add_stream(config)
    else:
        await js.update_stream(config)

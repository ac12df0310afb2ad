"""``conda-store-server audit``: an example integration that prints who did what, live.

It subscribes to the JetStream events stream with an ephemeral consumer (nothing is left behind
on the server when it exits) and prints one line per event: time, actor, type, subject of the
event. Start position: ``--since-seq`` (stream sequence) or only new events by default.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from shared.settings import Settings


def describe(event: dict[str, Any]) -> str:
    """One human line for an event (the JSON is the RecordedEvent contract)."""
    data = event.get("data", {})
    actor = (event.get("metadata") or {}).get("actor") or "-"
    target = "/".join(str(data[k]) for k in ("namespace", "environment") if data.get(k))
    if "build_id" in data:
        target = f"{target} build {data['build_id']}".strip()
    return f"{event.get('occurred_at', '')} {actor} {event.get('type')} {target}".rstrip()


async def run_audit(
    settings: Settings, since_seq: int | None = None, limit: int | None = None
) -> int:
    """Print events until interrupted (or ``limit`` events); returns how many were printed."""
    from nats.js.api import ConsumerConfig, DeliverPolicy

    from shared.bus.jetstream import connect_nats

    nc = await connect_nats(settings.nats_url, "conda-store-audit")
    js = nc.jetstream()
    config = (
        ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=since_seq)
        if since_seq
        else ConsumerConfig(deliver_policy=DeliverPolicy.NEW)
    )
    sub = await js.subscribe(
        f"{settings.subject_prefix}.events.>", stream=settings.nats_stream, config=config
    )
    printed = 0
    try:
        while limit is None or printed < limit:
            try:
                msg = await sub.next_msg(timeout=3600)
            except TimeoutError:
                continue
            print(describe(json.loads(msg.data)), flush=True)
            printed += 1
    finally:
        await sub.unsubscribe()
        await nc.close()
    return printed


def main(settings: Settings, since_seq: int | None, limit: int | None) -> None:
    try:
        asyncio.run(run_audit(settings, since_seq, limit))
    except KeyboardInterrupt:
        pass

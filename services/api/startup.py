"""What the gateway makes true once at start-up: conda-store's default namespace exists.

conda-store creates it when the server starts, so a fresh server lists it to anonymous
callers. Several API processes may start together: the append expects the namespace stream's
version just read, so only one of them records ``NamespaceCreated``.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.events import NamespaceCreated, RecordedEvent, new_event, stream_of_namespace
from shared.eventstore import NO_STREAM, ConcurrencyError, EventStore
from shared.logging import get_logger

log = get_logger(__name__)
ACTOR = "conda-store-server"


def is_live(history: Sequence[RecordedEvent]) -> bool:
    """Whether a namespace stream ends created rather than deleted (or never created)."""
    lifecycle = [e.type for e in history if e.type in ("NamespaceCreated", "NamespaceDeleted")]
    return bool(lifecycle) and lifecycle[-1] == "NamespaceCreated"


async def ensure_namespace(store: EventStore, namespace: str) -> bool:
    """Record ``NamespaceCreated`` unless the namespace is live; True if this call did."""
    stream = stream_of_namespace(namespace)
    history = await store.read_stream(stream)
    if is_live(history):
        return False
    created = new_event(NamespaceCreated(namespace=namespace), actor=ACTOR, correlation_id=stream)
    try:
        await store.append(stream, [created], history[-1].version if history else NO_STREAM)
    except ConcurrencyError:
        return False  # another process changed the stream first (it created the namespace)
    log.info("namespace created at start-up", namespace=namespace)
    return True

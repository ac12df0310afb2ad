"""GET /api/v1/events/: the event log paged by global position, filtered by the caller's rights.

Subscribers that need a push feed use NATS (see docs/events.md); this route serves pollers and
audits with the same JSON as the NATS messages.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from shared.wire import Int64

from ..deps import Caller, api_state, get_caller
from ..envelopes import FastJSON
from ..queries.events import readable_page
from ..state import ApiState

router = APIRouter()


@router.get("/api/v1/events/")
async def list_events(
    after: Annotated[Int64, Query(ge=0)] = 0,
    limit: int = Query(100, ge=1, le=1000),
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    data, position = await readable_page(state.store, caller, after, limit)
    return FastJSON({"status": "ok", "data": data, "message": None, "next_after": position})

"""/api/v1/channel/ and /api/v1/package/ (no permission needed, as in conda-store)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from ..deps import api_state
from ..envelopes import Paging, paging
from ..queries import packages
from ..state import ApiState

router = APIRouter(prefix="/api/v1")


@router.get("/channel/")
async def list_channels(
    page: Paging = Depends(paging), state: ApiState = Depends(api_state)
) -> Response:
    data, count = await packages.channels_page(state.pool, page)
    return page.envelope(data, count)


@router.get("/package/")
async def list_packages(
    search: str | None = None,
    exact: str | None = None,
    build: str | None = None,
    distinct_on: list[str] = Query([]),
    page: Paging = Depends(paging),
    state: ApiState = Depends(api_state),
) -> Response:
    data, count = await packages.packages_page(
        state.pool, search, bool(exact), distinct_on, page, build
    )
    return page.envelope(data, count)

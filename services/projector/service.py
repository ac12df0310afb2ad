"""Projector process: the events table to the read-model tables."""

from __future__ import annotations

from shared.projections import Projector
from shared.service import ServiceContext


async def main(ctx: ServiceContext) -> None:
    await Projector(await ctx.store()).run()

"""Projector process: the events table to the read-model tables."""

from __future__ import annotations

from shared.projections import Projector
from shared.service import ServiceContext


async def main(ctx: ServiceContext) -> None:
    await Projector(await ctx.store(), lease_s=ctx.settings.leader_lease_s).run()

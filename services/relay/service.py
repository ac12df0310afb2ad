"""Relay process: the events table to JetStream."""

from __future__ import annotations

from shared.bus.relay import Relay
from shared.service import ServiceContext


async def main(ctx: ServiceContext) -> None:
    await Relay(await ctx.store(), await ctx.nats(), ctx.settings).run()

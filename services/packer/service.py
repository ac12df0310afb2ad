"""Packer process (install, pip, conda-pack) — its worker lands with the Packer issue."""

from __future__ import annotations

from shared.service import ServiceContext


async def main(ctx: ServiceContext) -> None:
    await ctx.stop.wait()

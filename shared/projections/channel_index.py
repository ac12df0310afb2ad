"""Folding ``ChannelIndexed`` into the package index (``conda_package_builds``, and the distinct
``conda_channels``/``conda_packages`` rows that /channel/ and /package/ list).

Unlike the rest of the read model this is not kept in the projector's memory: a channel holds
far more records than any build, and each event says exactly which rows to add and remove, so
it is applied as SQL in the projector's transaction. Applying an event twice gives the same
rows, which a replay after a crash may do.
"""

from __future__ import annotations

import asyncpg

from shared.events import ChannelIndexed, RecordedEvent

EVENT_TYPE = ChannelIndexed.event_type()


async def apply_channel_index(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    """One change of one channel subdir; packages once listed stay in ``conda_packages`` (a
    build may still hold them), as conda-store keeps them."""
    change = event.payload()
    assert isinstance(change, ChannelIndexed)
    channel, subdir = change.channel.rstrip("/"), change.subdir
    if change.removed:
        await conn.execute(
            "DELETE FROM conda_package_builds b USING unnest($3::text[], $4::text[], $5::text[])"
            " AS r(name, version, build) WHERE b.channel = $1 AND b.subdir = $2"
            " AND b.name = r.name AND b.version = r.version AND b.build = r.build",
            channel,
            subdir,
            [r.name for r in change.removed],
            [r.version for r in change.removed],
            [r.build for r in change.removed],
        )
    await conn.execute(
        "INSERT INTO conda_channels (name, last_update) VALUES ($1, $2) "
        "ON CONFLICT (name) DO UPDATE SET last_update = excluded.last_update",
        channel,
        event.recorded_at,
    )
    if not change.added:
        return
    columns = (
        [r.name for r in change.added],
        [r.version for r in change.added],
        [r.build for r in change.added],
        [r.license for r in change.added],
    )
    await conn.execute(
        "INSERT INTO conda_package_builds (channel, subdir, name, version, build, license) "
        "SELECT $1, $2, * FROM unnest($3::text[], $4::text[], $5::text[], $6::text[]) "
        "ON CONFLICT (channel, subdir, name, version, build) "
        "DO UPDATE SET license = excluded.license",
        channel,
        subdir,
        *columns,
    )
    await conn.execute(
        "INSERT INTO conda_packages (channel_id, name, version, license) "
        "SELECT DISTINCT ON (r.name, r.version) c.id, r.name, r.version, r.license "
        "FROM unnest($2::text[], $3::text[], $4::text[]) AS r(name, version, license) "
        "JOIN conda_channels c ON c.name = $1 ORDER BY r.name, r.version "
        "ON CONFLICT DO NOTHING",
        channel,
        columns[0],
        columns[1],
        columns[3],
    )

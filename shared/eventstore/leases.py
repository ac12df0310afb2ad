"""Leases: at most one running attempt per (consumer, message), on one machine or many.

Delivery is at-least-once, and JetStream redelivers a message whose ack deadline passed even
while the first attempt is still working (its in-progress acks could not get through). A
redelivery therefore starts work only if it can take the message's lease, a row in Postgres:

- ``acquire`` takes a free or expired lease and counts the attempt (``attempt`` + 1); a lease
  still held by a live attempt is refused with how long it has left, and costs no attempt.
- The running attempt renews the lease every third of its term (``keep``). A holder that dies,
  or loses Postgres, stops renewing and the lease expires, so the work is retried. Renewing
  succeeds only while the row still carries the holder's attempt number.
- The attempt number is also a fencing token: the commit transaction calls ``fence``, which
  releases the lease only if it is still this attempt's, and otherwise aborts the commit. A
  holder that cannot renew within its term gives up on its own (``keep`` reports the loss
  before the lease can expire in Postgres), so a stale attempt neither runs beside its
  successor nor commits after it.

When Postgres restarts, the rows survive; running attempts renew as soon as it is back, and a
lease whose holder could not renew in time expires there and is taken by the next delivery.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from shared.logging import get_logger

from .store import EventStore

log = get_logger(__name__)

SAFETY = 0.9
"""A holder counts its lease as lost after this share of the term without a renewal, so that it
stops before Postgres could hand the lease to anyone else."""


@dataclass(frozen=True)
class Lease:
    consumer: str
    message_key: str
    attempt: int
    holder: str


@dataclass(frozen=True)
class LeaseHeld:
    """Another attempt holds the lease; try again after ``remaining_s``."""

    holder: str
    attempt: int
    remaining_s: float


class LeaseLost(Exception):
    """The lease passed to another attempt: this attempt must not commit."""


class Leases:
    def __init__(self, store: EventStore, term_s: float) -> None:
        self.store = store
        self.term_s = term_s

    @property
    def pool(self) -> asyncpg.Pool:
        return self.store.pool

    async def acquire(self, consumer: str, message_key: str, holder: str) -> Lease | LeaseHeld:
        """Take the lease if it is free or expired; counts one more attempt."""
        attempt = await self.pool.fetchval(
            """INSERT INTO leases AS l (consumer, message_key, attempt, holder, expires_at)
               VALUES ($1, $2, 1, $3, clock_timestamp() + make_interval(secs => $4))
               ON CONFLICT (consumer, message_key) DO UPDATE
                  SET attempt = l.attempt + 1, holder = excluded.holder,
                      started_at = clock_timestamp(), expires_at = excluded.expires_at
                  WHERE l.expires_at <= clock_timestamp()
               RETURNING attempt""",
            consumer,
            message_key,
            holder,
            self.term_s,
        )
        if attempt is not None:
            return Lease(consumer, message_key, int(attempt), holder)
        row = await self.pool.fetchrow(
            """SELECT holder, attempt,
                      greatest(extract(epoch FROM expires_at - clock_timestamp()), 0) AS left_s
               FROM leases WHERE consumer = $1 AND message_key = $2""",
            consumer,
            message_key,
        )
        if row is None:  # cannot happen while rows are never deleted; retry soon anyway
            return LeaseHeld(holder="", attempt=0, remaining_s=0.0)
        return LeaseHeld(row["holder"], int(row["attempt"]), float(row["left_s"]))

    async def renew(self, lease: Lease) -> bool:
        """Extend the term; False if another attempt took the lease."""
        return bool(
            await self.pool.fetchval(
                """UPDATE leases SET expires_at = clock_timestamp() + make_interval(secs => $4)
                   WHERE consumer = $1 AND message_key = $2 AND attempt = $3 RETURNING 1""",
                lease.consumer,
                lease.message_key,
                lease.attempt,
                self.term_s,
            )
        )

    async def release(self, lease: Lease, conn: asyncpg.Connection | None = None) -> bool:
        """Let the next delivery start at once; False if the lease was no longer ours."""
        return bool(
            await (conn or self.pool).fetchval(
                """UPDATE leases SET expires_at = '-infinity'
                   WHERE consumer = $1 AND message_key = $2 AND attempt = $3 RETURNING 1""",
                lease.consumer,
                lease.message_key,
                lease.attempt,
            )
        )

    def fence(self, lease: Lease) -> Callable[[asyncpg.Connection], object]:
        """A check for the commit transaction: release the lease, or abort with LeaseLost.

        The UPDATE locks the row, so an ``acquire`` racing the commit waits for it and then
        finds the lease released and the message tracked.
        """

        async def check(conn: asyncpg.Connection) -> None:
            if not await self.release(lease, conn):
                raise LeaseLost(f"attempt {lease.attempt} of {lease.message_key} lost its lease")

        return check

    async def keep(self, lease: Lease, on_lost: Callable[[str], None]) -> None:
        """Renew until cancelled; call ``on_lost`` once if the lease is taken or runs out.

        Time is measured locally from the moment each successful renewal was sent, so a holder
        that was paused or cut off from Postgres notices before its lease can expire there.
        """
        interval = self.term_s / 3
        pause = interval
        deadline = time.monotonic() + self.term_s * SAFETY
        while True:
            await asyncio.sleep(max(min(pause, deadline - time.monotonic()), 0))
            sent = time.monotonic()
            if sent >= deadline:
                on_lost(f"not renewed for {self.term_s * SAFETY:g} s")
                return
            try:
                renewed = await asyncio.wait_for(self.renew(lease), deadline - sent)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Postgres away: retry until the term runs out
                log.warning("lease renewal failed", attempt=lease.attempt, error=repr(exc))
                pause = min(interval, 0.5)
                continue
            if not renewed:
                on_lost("another attempt took the lease")
                return
            deadline = sent + self.term_s * SAFETY
            pause = interval

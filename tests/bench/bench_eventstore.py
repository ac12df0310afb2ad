"""Event store benchmark: append throughput, tail-reader lag, projection replay rate.

Each figure is printed beside a baseline run in the same database, as a ratio:
- appends vs plain INSERTs of the same rows into an unconstrained table (no lock, no checks);
- replay vs merely reading every event row (what any projector must at least do).

    python tests/bench/bench_eventstore.py [--events 100000] [--durable]

By default the throwaway cluster runs with fsync off (as the test harness does); --durable
keeps Postgres' default fsync/synchronous_commit so every append waits for the disk.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from shared.embedded.postgres import PostgresCluster
from shared.events import (
    BuildStarted,
    NewEvent,
    PackageRef,
    Packed,
    SettingsChanged,
    Solved,
    SpecSubmitted,
    new_event,
)
from shared.eventstore import EventStore
from shared.eventstore.tail import LogTailer
from shared.projections import rebuild_projections


def ev(i: int) -> NewEvent:
    return new_event(SettingsChanged(values={"i": i}), actor="bench")


async def baseline_inserts(store: EventStore, n: int, writers: int) -> float:
    await store.pool.execute(
        "CREATE UNLOGGED TABLE IF NOT EXISTS bench_plain (id bigserial, stream text, data jsonb)"
    )
    per = n // writers

    async def w(k: int) -> None:
        for i in range(per):
            await store.pool.execute(
                "INSERT INTO bench_plain (stream, data) VALUES ($1, $2)", f"w{k}", {"i": i}
            )

    t = time.perf_counter()
    await asyncio.gather(*(w(k) for k in range(writers)))
    return per * writers / (time.perf_counter() - t)


async def appends(store: EventStore, n: int, writers: int, batch: int) -> float:
    per = n // writers

    async def w(k: int) -> None:
        for i in range(0, per, batch):
            await store.append(f"bench-{writers}-{batch}-{k}", [ev(i + j) for j in range(batch)])

    t = time.perf_counter()
    await asyncio.gather(*(w(k) for k in range(writers)))
    return per * writers / (time.perf_counter() - t)


async def tail_lag(store: EventStore, n: int, writers: int) -> list[float]:
    """Seconds from an event's commit to a LISTEN/NOTIFY-woken tailer seeing it."""
    lags: list[float] = []
    start = await store.last_position()
    done = asyncio.Event()

    async def reader() -> None:
        async with LogTailer(store, start, 500, poll_interval=0.5) as tailer:
            async for batch in tailer.batches():
                now = time.time()
                lags.extend(now - e.recorded_at.timestamp() for e in batch)
                tailer.position = batch[-1].global_position
                if len(lags) >= n:
                    done.set()
                    return

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.1)
    per = n // writers
    await asyncio.gather(*(_write_slowly(store, f"lag-{k}", per) for k in range(writers)))
    await asyncio.wait_for(done.wait(), 60)
    task.cancel()
    return lags


async def _write_slowly(store: EventStore, stream: str, count: int) -> None:
    for i in range(count):
        await store.append(stream, [ev(i)])


def build_history(builds: int) -> list[tuple[str, list[NewEvent]]]:
    """Four events per build, like the real flow: submitted, started, solved, packed."""
    pkgs = [PackageRef(name=f"pkg{i}", version="1.0", build="0", channel="c") for i in range(5)]
    out = []
    for b in range(1, builds + 1):
        ns, env = f"ns{b % 100}", f"env{b % 2500}"
        out.append(
            (
                f"build-{b}",
                [
                    new_event(
                        SpecSubmitted(
                            build_id=b,
                            namespace=ns,
                            environment=env,
                            specification={"name": env},
                            sha256=f"{b:064x}",
                        )
                    ),
                    new_event(BuildStarted(build_id=b)),
                    new_event(Solved(build_id=b, lockfile_key="l", yaml_key="y", packages=pkgs)),
                    new_event(Packed(build_id=b, archive_key="a", logs_key="g", size=b)),
                ],
            )
        )
    return out


async def seed(store: EventStore, events: int) -> None:
    history = build_history(events // 4)
    sem = asyncio.Semaphore(8)

    async def one(stream: str, evs: list[NewEvent]) -> None:
        async with sem:
            await store.append(stream, evs)

    for i in range(0, len(history), 2000):
        await asyncio.gather(*(one(s, e) for s, e in history[i : i + 2000]))


async def read_everything(store: EventStore) -> float:
    t = time.perf_counter()
    count = 0
    async with store.pool.acquire() as conn, conn.transaction():
        async for _ in conn.cursor(
            "SELECT global_position, stream, version, event_id, type, schema_version, data, "
            "metadata, occurred_at, recorded_at FROM events ORDER BY global_position",
            prefetch=20000,
        ):
            count += 1
    return count / (time.perf_counter() - t)


async def main(events: int, durable: bool) -> None:
    root = Path(tempfile.mkdtemp(prefix="cs-bench-"))
    cluster = PostgresCluster(root / "pg", fast=not durable)
    cluster.start()
    try:
        store = await EventStore.connect(await cluster.create_database("bench"), max_size=20)
        mode = "durable (fsync on)" if durable else "fsync off"
        print(f"Postgres {mode}; {events} events for replay\n")
        print(f"{'figure':48} {'value':>14} {'baseline':>14} {'ratio':>7}")

        n = 20000
        for writers, batch in ((1, 1), (8, 1), (1, 10), (8, 10)):
            base = await baseline_inserts(store, n // batch, writers)
            got = await appends(store, n, writers, batch)
            label = f"append events/s, {writers} writer(s), {batch}/append"
            print(f"{label:48} {got:14.0f} {base * batch:14.0f} {got / (base * batch):7.2f}")

        lags = sorted(await tail_lag(store, 4000, 8))
        p50 = statistics.median(lags) * 1000
        p99 = lags[int(len(lags) * 0.99)] * 1000
        print(f"{'tail lag ms, 8 writers (p50 / p99)':48} {p50:8.1f} / {p99:5.1f}")

        await store.pool.execute("SELECT 1")
        t = time.perf_counter()
        await seed(store, events)
        seeded = await store.last_position()
        print(
            f"{'seeded events/s (4-event appends, 8 writers)':48} "
            f"{events / (time.perf_counter() - t):14.0f}"
        )
        base = await read_everything(store)
        count, seconds = await rebuild_projections(store)
        rate = count / seconds
        print(f"{'projection replay events/s':48} {rate:14.0f} {base:14.0f} {rate / base:7.2f}")
        print(f"{'replay time for the log (s)':48} {seconds:14.2f}   ({count} of {seeded})")
        print(f"{'projected 1M-event replay estimate (s)':48} {1_000_000 / rate:14.1f}")
        await store.close()
    finally:
        cluster.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--durable", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.events, args.durable))

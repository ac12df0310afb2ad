"""The packer against real servers: Postgres, NATS JetStream, channels over HTTP, S3.

Every build goes through the real SolverWorker (SpecSubmitted → lockfile → Solved) and the
real PackerWorker in the in-process stack, except the crash test, which runs the packer as a
``python -m services.packer`` subprocess so that it can be SIGKILLed.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import tarfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import yaml

from services.packer.cancel import listen_for_cancels
from services.packer.install import PREFIX_TOO_LONG, scratch_dirs, work_dir
from services.packer.pack import segment_cache_dir
from services.packer.store import is_complete, link_of, link_target, prefix_of_build
from services.packer.worker import PackerWorker
from services.solver.resolve import Resolver
from services.solver.worker import SolverWorker
from shared.artifacts import ArtifactStore, artifact_store_from_settings
from shared.buildlog import BuildLog
from shared.bus.jetstream import connect_nats
from shared.embedded.processes import stop_child
from shared.events import BuildCanceled, new_event
from shared.eventstore import EventStore
from shared.settings import Settings
from shared.spec import parse_specification
from shared.submission import submit_specification
from tests.channels.server import ChannelServer, ServedChannel
from tests.harness.fixtures_stack import Stack
from tests.harness.processes import start_service


def spec_text(name: str, channel: str, *deps: str, pip: tuple[str, ...] = ()) -> str:
    doc: dict = {"name": name, "channels": [channel], "dependencies": list(deps)}
    if pip:
        doc["dependencies"].append({"pip": list(pip)})
    return yaml.safe_dump(doc)


async def submit(store: EventStore, text: str) -> int:
    return (await submit_specification(store, parse_specification(text), "default")).build_id


async def store_prefix(store: EventStore, settings: Settings, build_id: int) -> Path:
    """Where the packer installs the build: ``<store>/<namespace>/<build key>``."""
    first = (await store.read_stream(f"build-{build_id}", 1))[0].payload()
    return prefix_of_build(settings.store_root, first)  # type: ignore[arg-type]


async def types_of(store: EventStore, build_id: int) -> list[str]:
    return [e.type for e in await store.read_stream(f"build-{build_id}")]


async def wait_for_log(store: EventStore, build_id: int, text: str, timeout: float = 60) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        log = await BuildLog(store.pool, build_id).text()
        if text in log:
            return log
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{text!r} never appeared in the log of build {build_id}")


async def wait_build(stack: Stack, build_id: int, timeout: float = 120) -> asyncpg.Record:
    """``stack.wait_build`` once the read model exists (the projector creates it lazily)."""
    await stack.projected(timeout=30)
    return await stack.wait_build(build_id, timeout=timeout)


async def artifact_keys(store: EventStore, build_id: int) -> dict[str, str]:
    rows = await store.pool.fetch(
        "SELECT artifact_type, key FROM build_artifacts WHERE build_id = $1", build_id
    )
    return {r["artifact_type"]: r["key"] for r in rows}


@dataclass
class Running:
    stack: Stack
    store: EventStore
    settings: Settings
    artifacts: ArtifactStore
    packer: PackerWorker | None = None
    resolver: Resolver | None = None

    async def start_solver(self) -> None:
        self.resolver = Resolver.from_settings(self.settings, self.store.pool)
        solver = SolverWorker(self.resolver, self.artifacts, self.store.pool)
        await self.stack.run_workers(solver, concurrency=2)

    async def start_packer(
        self, concurrency: int = 2, delay_s: float = 0.0, listen: bool = True
    ) -> PackerWorker:
        """The packer consumer plus its BuildCanceled listener, as ``run_packer`` wires them."""
        self.packer = PackerWorker(
            self.settings, self.artifacts, self.store.pool, test_delay_s=delay_s
        )
        await self.stack.run_workers(self.packer, concurrency=concurrency)
        if not listen:
            return self.packer
        nc = await connect_nats(self.settings.nats_url, "test-packer-cancels")
        self.stack.clients.append(nc)
        stop = asyncio.Event()
        await self.stack._task(listen_for_cancels(nc, self.settings, self.packer.cancels, stop))
        return self.packer


def packer_settings(settings: Settings, channel: ServedChannel | None = None, **extra) -> Settings:
    update: dict = {"artifact_dir": Path(settings.data_dir) / "artifacts", **extra}
    if channel is not None and channel.wheels_dir is not None:
        update |= {"pip_no_index": True, "pip_find_links": str(channel.wheels_dir)}
    return settings.model_copy(update=update)


@pytest.fixture
async def running(
    stack: Stack, event_store: EventStore, settings: Settings
) -> AsyncIterator[Running]:
    s = packer_settings(settings)
    r = Running(stack, event_store, s, artifact_store_from_settings(s))
    yield r
    if r.resolver is not None and r.resolver.indexer is not None:
        await r.resolver.indexer.wait_idle()


# --- end to end on the realistic channel --------------------------------------------------


@pytest.mark.slow
async def test_realistic_build_archive_runs_unpacked_elsewhere(
    stack: Stack,
    event_store: EventStore,
    settings: Settings,
    realistic_channel: ServedChannel,
    s3_artifact_store: ArtifactStore,
    tmp_path: Path,
) -> None:
    s = packer_settings(settings, realistic_channel)
    run = Running(stack, event_store, s, s3_artifact_store)
    await run.start_solver()
    await run.start_packer()
    deps = ("python", "numpy", "requests", "pip")
    text = spec_text("sci", realistic_channel.url, *deps, pip=("requests-toolbelt",))
    build_id = await submit(event_store, text)
    row = await wait_build(stack, build_id, timeout=180)
    log = await BuildLog(event_store.pool, build_id).text()
    assert row["status"] == "COMPLETED", (row["status_info"], log)
    assert await types_of(event_store, build_id) == [
        "SpecSubmitted", "BuildStarted", "Solved", "Packed",
    ]  # fmt: skip
    for phase in ("download", "link", "pip", "pack", "upload"):
        assert f"[{phase}]" in log
    assert "requests-toolbelt" in log

    keys = await artifact_keys(event_store, build_id)
    assert keys["CONDA_PACK"] == f"builds/{build_id}/archive.tar.gz"
    assert keys["LOGS"] == f"builds/{build_id}/logs.txt"
    assert b"[upload]" in await s3_artifact_store.get_bytes(keys["LOGS"])
    stream = await event_store.read_stream(f"build-{build_id}")
    solved, packed = stream[-2].data, stream[-1].data
    assert packed["size"] == row["size"] > 50_000_000  # CPython + numpy, as du -sb counts
    assert {"python", "numpy", "requests", "requests-toolbelt"} <= {
        p["name"] for p in solved["packages"]
    }
    # Packed carries what the image builder needs and no copy of Solved's packages
    assert stream[-1].schema_version == 2 and packed["packages"] == []
    assert (packed["namespace"], packed["environment"]) == (row["namespace"], row["environment"])
    assert packed["lockfile_key"] == solved["lockfile_key"] and packed["make_image"] is True
    assert keys["SBOM"] == packed["sbom_key"] == f"builds/{build_id}/sbom.cdx.json"
    sbom = json.loads(await s3_artifact_store.get_bytes(packed["sbom_key"]))
    assert sbom["specVersion"] == "1.5" and len(sbom["components"]) == len(solved["packages"])
    assert scratch_dirs(s.scratch_root, build_id) == []  # the work directory is scratch
    # the prefix stays in the store as the DIRECTORY artifact: complete, and python runs there
    prefix = await store_prefix(event_store, s, build_id)
    assert keys["DIRECTORY"] == packed["directory"] == str(prefix)
    assert is_complete(prefix) and (prefix / "conda-meta").is_dir()
    ran = await asyncio.create_subprocess_exec(
        str(prefix / "bin" / "python"),
        "-c",
        "import numpy, requests, sys; print(sys.prefix)",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(ran.communicate(), 60)
    assert ran.returncode == 0 and out.decode().strip() == str(prefix), err

    archive = tmp_path / "archive.tar.gz"
    await s3_artifact_store.download_file(keys["CONDA_PACK"], archive)
    target = tmp_path / "somewhere" / "a-much-longer-directory-than-the-build-prefix" / "env"
    target.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="tar")
    unpack = await asyncio.to_thread(
        subprocess.run,
        [str(target / "bin" / "python"), str(target / "bin" / "conda-unpack")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert unpack.returncode == 0, unpack.stderr
    code = "import sys, numpy, requests, requests_toolbelt; print(sys.prefix, numpy.__version__)"
    result = await asyncio.to_thread(
        subprocess.run,
        ["env", "-i", str(target / "bin" / "python"), "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == str(target)


@pytest.mark.slow
async def test_six_concurrent_builds_share_one_package_cache(
    stack: Stack,
    event_store: EventStore,
    settings: Settings,
    realistic_channel: ServedChannel,
) -> None:
    # A cap on the compressed package members smaller than python + numpy: packs prune
    # while others reuse, and every archive must still be whole.
    cap_gb = 0.04
    s = packer_settings(settings, realistic_channel, packer_segment_cache_gb=cap_gb)
    run = Running(stack, event_store, s, artifact_store_from_settings(s))
    await run.start_solver()
    await run.start_packer(concurrency=3)
    url = realistic_channel.url
    specs = [
        ("numpy", "requests"),
        ("numpy",),
        ("requests",),
        ("numpy", "six"),
        ("requests", "six"),
        ("numpy", "idna", "certifi"),
    ]
    ids = [
        await submit(event_store, spec_text(f"env{i}", url, "python", *deps))
        for i, deps in enumerate(specs)
    ]
    rows = await asyncio.gather(*(wait_build(stack, b, timeout=240) for b in ids))
    assert [r["status"] for r in rows] == ["COMPLETED"] * 6, [r["status_info"] for r in rows]

    installed: set[str] = set()
    for build_id in ids:
        assert (await types_of(event_store, build_id)).count("Packed") == 1
        solved = next(
            e for e in await event_store.read_stream(f"build-{build_id}") if e.type == "Solved"
        )
        installed |= {
            f"{p['name']}-{p['version']}-{p['build']}"
            for p in solved.data["packages"]
            if p["manager"] == "conda"
        }
    cache = s.package_cache_dir
    extracted = sorted(p.name for p in cache.iterdir() if p.is_dir())
    assert extracted == sorted(installed)  # one extracted copy of each package, no more
    assert not any(scratch_dirs(s.scratch_root, b) for b in ids)

    members = list(segment_cache_dir(s.cache_root).glob("*.gz"))
    assert sum(m.stat().st_size for m in members) <= cap_gb * 1e9  # the last prune saw all
    for build_id in ids:
        path = Path(s.data_dir) / "check.tar.gz"
        await run.artifacts.download_file(f"builds/{build_id}/archive.tar.gz", path)
        with tarfile.open(path) as tar:
            names = tar.getnames()  # reads every member: a broken stream raises
        assert "bin/conda-unpack" in names and "bin/python3.11" in names


# --- crash, cancel, live logs (tiny channel: fast) -----------------------------------------


async def test_sigkilled_packer_restarts_and_packs_exactly_once(
    running: Running, event_store: EventStore, tiny_channel: ServedChannel, tmp_path: Path
) -> None:
    await running.start_solver()
    settings = running.settings
    out = tmp_path / "packer.log"
    first = start_service("packer", settings, out, packer_test_delay_s=30)
    second = None
    try:
        build_id = await submit(event_store, spec_text("crash", tiny_channel.url, "bar", "baz"))
        await wait_for_log(event_store, build_id, "test delay", timeout=60)
        assert work_dir(settings.scratch_root, build_id, 1).exists()  # killed mid-build
        prefix = await store_prefix(event_store, settings, build_id)
        assert prefix.is_dir() and not is_complete(prefix)  # half made, and it says so
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        second = start_service("packer", settings, out)
        row = await wait_build(running.stack, build_id, timeout=90)
        assert row["status"] == "COMPLETED", (row["status_info"], out.read_text()[-3000:])
        assert (await types_of(event_store, build_id)).count("Packed") == 1
        log = await BuildLog(event_store.pool, build_id).text()
        assert "(attempt 2 of" in log
        assert (
            scratch_dirs(settings.scratch_root, build_id) == []
        )  # attempt 2 removed attempt 1's leftovers
        assert is_complete(prefix)  # reinstalled from scratch by attempt 2
        link = link_of(settings.store_root, "default", "crash")
        await until(lambda: link_target(link) == prefix)  # the restarted packer's linker
        archive = await running.artifacts.stat(f"builds/{build_id}/archive.tar.gz")
        assert archive is not None and archive.size > 0
    finally:
        for proc in (first, second):
            stop_child(proc)


async def until(check, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition never held"
        await asyncio.sleep(0.05)


async def test_two_packer_processes_share_one_store_directory(
    running: Running, event_store: EventStore, tiny_channel: ServedChannel, tmp_path: Path
) -> None:
    """Two packers (each with its store linker) on one store: every build is installed once
    and complete, and each environment's link agrees with the read model's current build."""
    await running.start_solver()
    settings = running.settings
    logs = [tmp_path / f"packer-{i}.log" for i in (1, 2)]
    packers = [
        start_service("packer", settings, log, packer_concurrency=1, packer_test_delay_s=3)
        for log in logs
    ]
    try:
        for log in logs:  # both consuming before the first build is there to take
            await until(lambda log=log: log.read_text().count('"consumer started"') >= 2, 60)
        ids = [
            await submit(event_store, spec_text(env, tiny_channel.url, *deps))
            for deps in (("bar",), ("bar", "baz"))
            for env in ("a", "b", "c")
        ]
        rows = [await wait_build(running.stack, b, timeout=120) for b in ids]
        assert [r["status"] for r in rows] == ["COMPLETED"] * 6, [r["status_info"] for r in rows]
        workers = set()
        for b in ids:
            text = await BuildLog(event_store.pool, b).text()
            packing = next(line for line in text.splitlines() if "packing build" in line)
            workers.add(packing.rsplit(" on ", 1)[1])
            assert is_complete(await store_prefix(event_store, settings, b))
        assert len(workers) == 2  # both packers built
        await running.stack.projected()
        current = await event_store.pool.fetch(
            "SELECT name, current_build_id FROM environments WHERE namespace = 'default'"
        )
        for row in current:
            prefix = await store_prefix(event_store, settings, row["current_build_id"])
            link = link_of(settings.store_root, "default", row["name"])
            await until(lambda link=link, prefix=prefix: link_target(link) == prefix)
        handled = await event_store.pool.fetchval(
            "SELECT count(*) FROM tracking WHERE consumer = 'store-linker'"
        )
        assert handled >= 12  # SpecSubmitted and Packed of each build, each handled once
        assert "Traceback" not in "".join(log.read_text() for log in logs)
    finally:
        for proc in packers:
            stop_child(proc)


async def test_logs_of_a_running_build_are_readable_before_it_finishes(
    running: Running, event_store: EventStore, tiny_channel: ServedChannel
) -> None:
    await running.start_solver()
    await running.start_packer(delay_s=3)
    build_id = await submit(event_store, spec_text("live", tiny_channel.url, "bar"))
    partial = await wait_for_log(event_store, build_id, "test delay")
    await running.stack.projected()
    assert (await running.stack.build(build_id))["status"] == "BUILDING"
    assert "[download]" in partial and "linking libfoo" in partial and "[upload]" not in partial
    row = await wait_build(running.stack, build_id)
    assert row["status"] == "COMPLETED"
    final = (await running.artifacts.get_bytes(f"builds/{build_id}/logs.txt")).decode()
    assert final.startswith(partial.splitlines()[0]) and "[upload]" in final
    assert "packed in" in final.splitlines()[-1]


@pytest.mark.parametrize("listen", [True, False], ids=["nats-listener", "stream-poll"])
async def test_canceled_build_stops_ends_canceled_and_its_prefix_is_removed(
    running: Running, event_store: EventStore, tiny_channel: ServedChannel, listen: bool
) -> None:
    await running.start_solver()
    await running.start_packer(delay_s=60, listen=listen)
    build_id = await submit(event_store, spec_text("cancel", tiny_channel.url, "bar"))
    await wait_for_log(event_store, build_id, "test delay")
    prefix = await store_prefix(event_store, running.settings, build_id)
    assert prefix.exists() and work_dir(running.settings.scratch_root, build_id, 1).exists()
    event = new_event(BuildCanceled(build_id=build_id), actor="test")
    await event_store.append(f"build-{build_id}", [event])
    row = await wait_build(running.stack, build_id, timeout=30)
    assert row["status"] == "CANCELED"
    await wait_for_log(event_store, build_id, "marked as CANCELED", timeout=10)
    assert "packed in" not in await BuildLog(event_store.pool, build_id).text()
    assert scratch_dirs(running.settings.scratch_root, build_id) == []
    assert not prefix.exists()
    await asyncio.sleep(0.5)
    assert "Packed" not in await types_of(event_store, build_id)
    assert running.packer is not None and running.packer.cancels.running == []
    # the message was acknowledged: the consumer tracked it and will not build it again
    assert (
        await event_store.pool.fetchval("SELECT count(*) FROM tracking WHERE consumer = 'packer'")
        == 1
    )


async def test_rebuild_of_an_identical_environment_reuses_the_archive(
    running: Running, event_store: EventStore, tiny_channel: ServedChannel
) -> None:
    await running.start_solver()
    await running.start_packer()
    first = await submit(event_store, spec_text("same", tiny_channel.url, "bar", "baz"))
    row1 = await wait_build(running.stack, first)
    second = await submit(event_store, spec_text("same", tiny_channel.url, "baz", "bar"))
    row2 = await wait_build(running.stack, second)
    assert row1["status"] == row2["status"] == "COMPLETED"
    assert row2["size"] == row1["size"] > 0
    log = await BuildLog(event_store.pool, second).text()
    assert f"already packed by build {first}" in log and "(no pack)" in log
    # the archive is reused, the directory is not: each build has its own prefix in the store
    prefixes = [await store_prefix(event_store, running.settings, b) for b in (first, second)]
    assert prefixes[0] != prefixes[1] and all(is_complete(p) for p in prefixes)
    a1 = await running.artifacts.get_bytes(f"builds/{first}/archive.tar.gz")
    a2 = await running.artifacts.get_bytes(f"builds/{second}/archive.tar.gz")
    assert a1 == a2
    third = await submit(event_store, spec_text("other", tiny_channel.url, "bar"))
    assert (await wait_build(running.stack, third))["status"] == "COMPLETED"
    assert "reusing" not in await BuildLog(event_store.pool, third).text()


async def test_solved_for_an_already_canceled_build_is_skipped(
    running: Running, event_store: EventStore, tiny_channel: ServedChannel
) -> None:
    await running.start_solver()
    build_id = await submit(event_store, spec_text("early", tiny_channel.url, "baz"))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while "Solved" not in await types_of(event_store, build_id):
        assert loop.time() < deadline
        await asyncio.sleep(0.05)
    await event_store.append(f"build-{build_id}", [new_event(BuildCanceled(build_id=build_id))])
    await running.start_packer()
    while not await event_store.pool.fetchval(
        "SELECT count(*) FROM tracking WHERE consumer = 'packer'"
    ):
        assert loop.time() < deadline
        await asyncio.sleep(0.05)
    assert (await wait_build(running.stack, build_id))["status"] == "CANCELED"
    assert await types_of(event_store, build_id) == [
        "SpecSubmitted", "BuildStarted", "Solved", "BuildCanceled",
    ]  # fmt: skip
    assert not running.settings.package_cache_dir.exists()  # nothing was even downloaded


# --- user errors: BuildFailed at once, log ends with the cause -----------------------------


async def test_too_long_prefix_fails_with_conda_store_reason(
    stack: Stack, event_store: EventStore, settings: Settings, tiny_channel: ServedChannel
) -> None:
    deep = Path(settings.data_dir) / ("d" * 120) / ("e" * 120)
    s = packer_settings(settings, data_dir=deep, artifact_dir=Path(settings.data_dir) / "art")
    run = Running(stack, event_store, s, artifact_store_from_settings(s))
    await run.start_solver()
    await run.start_packer()
    build_id = await submit(event_store, spec_text("long", tiny_channel.url, "baz"))
    row = await wait_build(stack, build_id)
    assert row["status"] == "FAILED" and row["status_info"] == PREFIX_TOO_LONG
    failed = (await event_store.read_stream(f"build-{build_id}"))[-1]
    assert failed.type == "BuildFailed" and failed.data["logs_key"]
    log = (await run.artifacts.get_bytes(failed.data["logs_key"])).decode()
    assert log.rstrip().endswith(PREFIX_TOO_LONG)
    assert "(attempt 1 of" in log and "attempt 2" not in log  # not retried
    if run.resolver is not None and run.resolver.indexer is not None:
        await run.resolver.indexer.wait_idle()


async def test_capped_package_cache_is_pruned_and_builds_refetch(
    stack: Stack, event_store: EventStore, settings: Settings, tiny_channel: ServedChannel
) -> None:
    s = packer_settings(settings, packer_pkgs_cache_gb=1e-9)  # one byte: prune everything
    run = Running(stack, event_store, s, artifact_store_from_settings(s))
    await run.start_solver()
    await run.start_packer()
    cache = s.package_cache_dir
    for name, deps in (("one", ("bar",)), ("two", ("baz",)), ("three", ("bar", "baz"))):
        build_id = await submit(event_store, spec_text(name, tiny_channel.url, *deps))
        row = await wait_build(stack, build_id)
        assert row["status"] == "COMPLETED", row["status_info"]
        # pruned after packing; the next build extracts what it needs again
        assert not [p for p in cache.iterdir() if not p.name.startswith(".")]
    if run.resolver is not None and run.resolver.indexer is not None:
        await run.resolver.indexer.wait_idle()


async def test_package_missing_from_channel_fails_without_retry(
    running: Running, event_store: EventStore, tiny_channel: ServedChannel, tmp_path: Path
) -> None:
    copy = tmp_path / "channel"
    shutil.copytree(tiny_channel.path, copy)
    with ChannelServer(copy) as server:
        await running.start_solver()
        build_id = await submit(event_store, spec_text("gone", server.url, "bar"))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while "Solved" not in await types_of(event_store, build_id):
            assert loop.time() < deadline
            await asyncio.sleep(0.05)
        for path in copy.glob("linux-64/libfoo-1.0-*"):
            path.unlink()  # the channel lost a package between solve and install
        await running.start_packer()
        row = await wait_build(running.stack, build_id)
    assert row["status"] == "FAILED"
    assert "libfoo-1.0" in row["status_info"] and "404" in row["status_info"]
    failed = (await event_store.read_stream(f"build-{build_id}"))[-1]
    log = (await running.artifacts.get_bytes(failed.data["logs_key"])).decode()
    assert "build failed: a package could not be fetched" in log
    assert "attempt 2" not in log
    assert scratch_dirs(running.settings.scratch_root, build_id) == []

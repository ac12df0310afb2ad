"""The solver service against real servers: NATS JetStream, Postgres, channels over HTTP.

Lockfiles are checked with the real readers (conda-lock's parser and CLI, rattler's LockFile
and installer); the solve cache is checked by counting real solver calls.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import rattler
import yaml
from conda_lock.lockfile import parse_conda_lock_file

from services.solver.remote import request_solve, serve
from services.solver.resolve import Resolver
from services.solver.types import SolveRequest
from services.solver.worker import SolverWorker
from shared.artifacts import ArtifactStore, LocalArtifactStore
from shared.buildlog import BuildLog
from shared.bus.jetstream import connect_nats
from shared.embedded.ports import free_port
from shared.events import RecordedEvent, stream_of_channel
from shared.eventstore import EventStore
from shared.runtime_settings import RuntimeSettings
from shared.settings import Settings
from shared.spec import SpecificationError, parse_lockfile_submission, parse_specification
from shared.submission import submit_lockfile, submit_specification
from tests.channels.condapkg import PackageMeta, build_package, index_channel
from tests.channels.server import ChannelServer, ServedChannel
from tests.harness.fixtures_stack import Stack

OUTCOMES = ("Solved", "BuildFailed")


def spec_text(channel: str, *deps: str, pip: tuple[str, ...] = ()) -> str:
    doc: dict = {"name": "env1", "channels": [channel], "dependencies": list(deps)}
    if pip:
        doc["dependencies"].append({"pip": list(pip)})
    return yaml.safe_dump(doc)


async def wait_outcome(store: EventStore, build_id: int, timeout: float = 60.0) -> RecordedEvent:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for event in await store.read_stream(f"build-{build_id}"):
            if event.type in OUTCOMES:
                return event
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no outcome for build {build_id}")


async def types_of(store: EventStore, build_id: int) -> list[str]:
    return [e.type for e in await store.read_stream(f"build-{build_id}")]


async def submit(store: EventStore, text: str) -> int:
    return (await submit_specification(store, parse_specification(text), "default")).build_id


class Running:
    def __init__(self, resolver: Resolver, worker: SolverWorker) -> None:
        self.resolver = resolver
        self.worker = worker


@pytest.fixture
async def solver(
    stack: Stack, event_store: EventStore, settings: Settings, local_artifact_store
) -> AsyncIterator[Running]:
    resolver = Resolver.from_settings(settings, event_store.pool)
    worker = SolverWorker(resolver, local_artifact_store, event_store.pool)
    await stack.run_workers(worker, concurrency=2)
    yield Running(resolver, worker)
    await resolver.indexer.wait_idle()


async def lockfile_on_disk(artifacts: ArtifactStore, build_id: int, tmp_path: Path) -> Path:
    path = tmp_path / f"build-{build_id}" / "conda-lock.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(await artifacts.get_bytes(f"builds/{build_id}/conda-lock.yml"))
    return path


def linux_64(env: rattler.Environment) -> rattler.LockPlatform:
    return next(p for p in env.platforms() if p.name == "linux-64")


def check_lockfile_readers(path: Path) -> list[rattler.RepoDataRecord]:
    """JSON as conda-store's; conda-lock parses and renders it; rattler reads it back; returns
    the linux-64 records."""
    document = json.loads(path.read_text())
    assert document["version"] == 1 and document["metadata"] and document["package"]
    parsed = parse_conda_lock_file(path)
    assert parsed.package
    rendered = subprocess.run(
        [Path(sys.executable).parent / "conda-lock", "render", "-k", "explicit", str(path)],
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rendered.returncode == 0, rendered.stderr
    explicit = path.parent / "conda-linux-64.lock"
    assert "@EXPLICIT" in explicit.read_text()
    env = rattler.LockFile.from_path(path).default_environment()
    records = env.conda_repodata_records_for_platform(linux_64(env))
    assert records
    return records


async def test_satisfiable_spec_solves_writes_readable_lockfile_and_hits_cache(
    solver: Running, event_store: EventStore, tiny_channel: ServedChannel, tmp_path: Path
) -> None:
    artifacts = solver.worker.artifacts
    build_id = await submit(event_store, spec_text(tiny_channel.url, "bar"))
    outcome = await wait_outcome(event_store, build_id)
    assert outcome.type == "Solved", outcome.data
    assert await types_of(event_store, build_id) == ["SpecSubmitted", "BuildStarted", "Solved"]
    pins = {p["name"]: (p["version"], p["build"]) for p in outcome.data["packages"]}
    assert pins == {"bar": ("2.0", "h0_0"), "libfoo": ("1.0", "h0_0")}
    assert outcome.data["cache_hit"] is False
    assert all(p["md5"] and p["sha256"] and p["url"] for p in outcome.data["packages"])
    assert solver.resolver.solver.solve_count == 1

    pinned = yaml.safe_load(await artifacts.get_bytes(f"builds/{build_id}/environment.yaml"))
    assert pinned["dependencies"] == ["bar=2.0=h0_0", "libfoo=1.0=h0_0"]
    assert pinned["channels"] == [tiny_channel.url]

    path = await lockfile_on_disk(artifacts, build_id, tmp_path)
    records = check_lockfile_readers(path)
    prefix = tmp_path / "prefix"
    await rattler.install(records, prefix, cache_dir=tmp_path / "pkgs", show_progress=False)
    assert (prefix / "lib" / "libfoo-version.txt").read_text() == "1.0\n"

    log = await BuildLog(event_store.pool, build_id).text()
    assert "solve cache miss" in log and "libfoo 1.0 h0_0" in log and tiny_channel.url in log

    again = await submit(event_store, spec_text(tiny_channel.url, "bar"))
    outcome2 = await wait_outcome(event_store, again)
    assert outcome2.type == "Solved" and outcome2.data["cache_hit"] is True
    assert outcome2.data["packages"] == outcome.data["packages"]
    assert solver.resolver.solver.solve_count == 1  # the solver was not called again
    assert "solve cache hit" in await BuildLog(event_store.pool, again).text()
    check_lockfile_readers(await lockfile_on_disk(artifacts, again, tmp_path))

    # the channel's records are announced once, as events the package index is folded from
    indexer = solver.resolver.indexer
    await indexer.wait_idle()
    linux = await event_store.read_stream(stream_of_channel(tiny_channel.url, "linux-64"))
    assert [e.type for e in linux] == ["ChannelIndexed"]
    added = [r for e in linux for r in e.data["added"]]
    assert sorted(r["version"] for r in added if r["name"] == "libfoo") == ["0.9", "1.0"]
    assert linux[0].data["removed"] == [] and linux[0].data["parts"] == 1
    noarch = await event_store.read_stream(stream_of_channel(tiny_channel.url, "noarch"))
    assert {"baz", "hello-cli"} <= {r["name"] for e in noarch for r in e.data["added"]}
    assert await indexer.index(tiny_channel.url, "linux-64") == 0  # unchanged: nothing said
    assert await event_store.stream_version(stream_of_channel(tiny_channel.url, "linux-64")) == 1


async def test_lockfile_submission_is_stored_without_solving(
    solver: Running, event_store: EventStore, tiny_channel: ServedChannel, tmp_path: Path
) -> None:
    artifacts = solver.worker.artifacts
    first = await submit(event_store, spec_text(tiny_channel.url, "baz"))
    assert (await wait_outcome(event_store, first)).type == "Solved"
    text = (await artifacts.get_bytes(f"builds/{first}/conda-lock.yml")).decode()
    count = solver.resolver.solver.solve_count

    lock_spec = parse_lockfile_submission(text, "locked", "")
    submitted = await submit_lockfile(event_store, lock_spec, "default")
    outcome = await wait_outcome(event_store, submitted.build_id)
    assert outcome.type == "Solved", outcome.data
    assert solver.resolver.solver.solve_count == count
    assert {p["name"] for p in outcome.data["packages"]} == {"baz", "libfoo"}
    pinned = yaml.safe_load(
        await artifacts.get_bytes(f"builds/{submitted.build_id}/environment.yaml")
    )
    assert "libfoo=1.0=h0_0" in pinned["dependencies"]
    check_lockfile_readers(await lockfile_on_disk(artifacts, submitted.build_id, tmp_path))


async def test_conflict_and_unknown_channel_fail_with_explanation(
    solver: Running, event_store: EventStore, tiny_channel: ServedChannel
) -> None:
    build_id = await submit(event_store, spec_text(tiny_channel.url, "conflict-a", "conflict-b"))
    outcome = await wait_outcome(event_store, build_id)
    assert outcome.type == "BuildFailed"
    reason = outcome.data["reason"]
    assert "conflict-a" in reason and "libfoo 0.9" in reason and "conflicts" in reason
    assert outcome.data["phase"] == "solve"
    assert await types_of(event_store, build_id) == ["SpecSubmitted", "BuildStarted", "BuildFailed"]
    log = await BuildLog(event_store.pool, build_id).text()
    assert "solve failed" in log and "conflict-a 1.0 would require" in log
    stored = await solver.worker.artifacts.get_bytes(outcome.data["logs_key"])
    assert b"conflict-a 1.0 would require" in stored

    missing = await submit(event_store, spec_text(tiny_channel.url + "/no-such-channel", "bar"))
    outcome = await wait_outcome(event_store, missing)
    assert outcome.type == "BuildFailed" and "no-such-channel" in outcome.data["reason"]
    await asyncio.sleep(0.5)
    assert (await types_of(event_store, missing)).count("BuildStarted") == 1


@pytest.mark.slow
async def test_pip_section_is_pinned_in_lockfile_and_pinned_yaml(
    stack: Stack,
    event_store: EventStore,
    settings: Settings,
    realistic_channel: ServedChannel,
    local_artifact_store: LocalArtifactStore,
    tmp_path: Path,
) -> None:
    assert realistic_channel.wheels_dir is not None
    settings = settings.model_copy(
        update={"pip_no_index": True, "pip_find_links": str(realistic_channel.wheels_dir)}
    )
    resolver = Resolver.from_settings(settings, event_store.pool, index_channels=False)
    await stack.run_workers(SolverWorker(resolver, local_artifact_store, event_store.pool))
    text = spec_text(
        realistic_channel.url, "python=3.11", "requests", pip=("requests-toolbelt", "tomli")
    )
    build_id = await submit(event_store, text)
    outcome = await wait_outcome(event_store, build_id, timeout=120)
    assert outcome.type == "Solved", outcome.data
    pip = {p["name"]: p for p in outcome.data["packages"] if p["manager"] == "pip"}
    assert set(pip) == {"requests-toolbelt", "tomli"}  # requests comes from conda
    assert all(len(p["sha256"]) == 64 for p in pip.values())

    pinned = yaml.safe_load(
        await local_artifact_store.get_bytes(f"builds/{build_id}/environment.yaml")
    )
    assert pinned["dependencies"][-1] == {"pip": ["requests-toolbelt==1.0.0", "tomli==2.5.0"]}
    assert any(d.startswith("requests=2.34.2=") for d in pinned["dependencies"][:-1])

    path = await lockfile_on_disk(local_artifact_store, build_id, tmp_path)
    parsed = parse_conda_lock_file(path)
    pip_entries = {p.name: p for p in parsed.package if p.manager == "pip"}
    assert set(pip_entries) == {"requests-toolbelt", "tomli"}
    assert all(p.hash.sha256 and p.url.endswith(".whl") for p in pip_entries.values())
    check_lockfile_readers(path)
    env = rattler.LockFile.from_path(path).default_environment()
    pypi = env.pypi_packages_for_platform(linux_64(env)) or []
    assert {p.name for p in pypi} == {"requests-toolbelt", "tomli"}


async def test_remote_solve_over_nats_uses_the_cache(
    event_store: EventStore, settings: Settings, tiny_channel: ServedChannel
) -> None:
    resolver = Resolver.from_settings(settings, event_store.pool, index_channels=False)
    server_nc = await connect_nats(settings.nats_url, "solver")
    client_nc = await connect_nats(settings.nats_url, "client")
    stop = asyncio.Event()
    task = asyncio.create_task(serve(server_nc, resolver, settings, stop))
    try:
        await asyncio.sleep(0.2)
        request = SolveRequest(channels=[tiny_channel.url], conda=["baz"], platforms=["linux-64"])
        reply = await request_solve(client_nc, settings, request)
        assert reply["status"] == "ok" and reply["cache_hit"] is False
        assert {p["name"]: p["version"] for p in reply["packages"]} == {
            "baz": "1.0",
            "libfoo": "1.0",
        }
        again = await request_solve(client_nc, settings, request)
        assert again["cache_hit"] is True and again["packages"] == reply["packages"]
        assert resolver.solver.solve_count == 1

        bad = SolveRequest(channels=[tiny_channel.url], conda=["conflict-a", "conflict-b"])
        failed = await request_solve(client_nc, settings, bad)
        assert failed["status"] == "error" and "conflict-a" in failed["message"]
    finally:
        stop.set()
        await task
        await server_nc.close()
        await client_nc.close()


def solver_process(settings: Settings, artifact_dir: Path, delay: float) -> subprocess.Popen:
    env = {
        **os.environ,
        "CONDA_STORE_DATABASE_URL": settings.database_url or "",
        "CONDA_STORE_NATS_URL": settings.nats_url,
        "CONDA_STORE_DATA_DIR": str(settings.data_dir),
        "CONDA_STORE_ARTIFACT_DIR": str(artifact_dir),
        "CONDA_STORE_SOLVER_HEALTH_PORT": str(free_port()),
        "CONDA_STORE_CONSUMER_ACK_WAIT_S": "2",
        "CONDA_STORE_CONSUMER_MAX_DELIVER": "3",
        "CONDA_STORE_SOLVER_TEST_DELAY_S": str(delay),
        "CONDA_STORE_LOG_FORMAT": "json",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "services.solver"],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_killed_mid_solve_yields_exactly_one_outcome(
    stack: Stack, event_store: EventStore, settings: Settings, tiny_channel: ServedChannel,
    tmp_path: Path,
) -> None:  # fmt: skip
    artifact_dir = tmp_path / "artifacts"
    first = solver_process(settings, artifact_dir, delay=60)
    try:
        build_id = await submit(event_store, spec_text(tiny_channel.url, "bar"))
        log = BuildLog(event_store.pool, build_id)
        deadline = asyncio.get_running_loop().time() + 60
        while "pinned 2 packages" not in await log.text():  # solved, not yet committed
            assert asyncio.get_running_loop().time() < deadline, "solver never got going"
            await asyncio.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        # BUILDING from the moment the solver took it; no outcome yet
        assert await types_of(event_store, build_id) == ["SpecSubmitted", "BuildStarted"]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()

    second = solver_process(settings, artifact_dir, delay=0)
    try:
        outcome = await wait_outcome(event_store, build_id, timeout=60)
        assert outcome.type == "Solved"
        await asyncio.sleep(3)  # longer than the ack wait: any redelivery would show by now
        # the second attempt found the build started: still one BuildStarted
        assert await types_of(event_store, build_id) == ["SpecSubmitted", "BuildStarted", "Solved"]
        assert "attempt 2" in await log.text()
        lock = LocalArtifactStore(artifact_dir, "/storage", secret=b"x" * 32)
        assert await lock.exists(f"builds/{build_id}/conda-lock.yml")
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(15)
        except subprocess.TimeoutExpired:
            second.kill()
            second.wait()
            raise AssertionError("the solver did not stop on SIGTERM") from None
            second.wait()


async def test_solve_cache_entries_unused_past_the_max_age_are_pruned(
    solver: Running, event_store: EventStore, tiny_channel: ServedChannel
) -> None:
    first = await submit(event_store, spec_text(tiny_channel.url, "bar"))
    second = await submit(event_store, spec_text(tiny_channel.url, "baz"))
    for build_id in (first, second):
        assert (await wait_outcome(event_store, build_id)).type == "Solved"
    assert solver.resolver.solver.solve_count == 2
    keys = [
        r["cache_key"] for r in await event_store.pool.fetch("SELECT cache_key FROM solve_cache")
    ]
    assert len(keys) == 2
    await event_store.pool.execute(  # one entry made and last used 40 days ago
        "UPDATE solve_cache SET created_at = now() - interval '40 days',"
        " last_hit_at = now() - interval '35 days' WHERE cache_key = $1",
        keys[0],
    )
    assert await solver.resolver.cache.prune(30) == 1
    left = await event_store.pool.fetch("SELECT cache_key FROM solve_cache")
    assert [r["cache_key"] for r in left] == [keys[1]]
    assert await solver.resolver.cache.prune(30) == 0

    # Both specs again: the pruned one is solved anew, the kept one is still a hit.
    again = [await submit(event_store, spec_text(tiny_channel.url, d)) for d in ("bar", "baz")]
    hits = [(await wait_outcome(event_store, b)).data["cache_hit"] for b in again]
    assert sorted(hits) == [False, True]
    assert solver.resolver.solver.solve_count == 3


@pytest.fixture(scope="module")
def gpu_channel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedChannel]:
    """``gpu-lib`` 1.0 twice: a CUDA build (``__cuda >=12``, higher build number, so preferred
    where CUDA is there) and a CPU one, as conda-forge publishes such packages."""
    root = tmp_path_factory.mktemp("gpu-channel")
    staging = root / "staging"
    for meta in (
        PackageMeta("gpu-lib", "1.0", "cuda12_1", build_number=1, depends=["__cuda >=12"]),
        PackageMeta("gpu-lib", "1.0", "cpu_0", build_number=0),
    ):
        build_package(meta, staging, root / "channel")
    (root / "channel" / "noarch").mkdir(exist_ok=True)
    index_channel(root / "channel")
    with ChannelServer(root / "channel") as server:
        yield ServedChannel(root / "channel", server.url, server)


def gpu_spec(channel: str, variables: dict[str, str] | None = None) -> str:
    doc: dict[str, Any] = {"name": "gpu", "channels": [channel], "dependencies": ["gpu-lib"]}
    if variables is not None:
        doc["variables"] = variables
    return yaml.safe_dump(doc)


async def test_cuda_builds_follow_the_override_variable_and_the_setting(
    solver: Running, event_store: EventStore, gpu_channel: ServedChannel, tmp_path: Path
) -> None:
    async def solved_build(text: str, settings: RuntimeSettings | None = None) -> str:
        submitted = await submit_specification(
            event_store, parse_specification(text), "default", settings=settings
        )
        outcome = await wait_outcome(event_store, submitted.build_id)
        assert outcome.type == "Solved", outcome.data
        [pkg] = outcome.data["packages"]
        return pkg["build"]

    # no CUDA on a machine-independent solve: the CPU build
    assert await solved_build(gpu_spec(gpu_channel.url)) == "cpu_0"
    # conda's override variable in the spec: the CUDA build, recorded in the lockfile
    cuda = await submit_specification(
        event_store,
        parse_specification(gpu_spec(gpu_channel.url, {"CONDA_OVERRIDE_CUDA": "12.4"})),
        "default",
    )
    assert cuda.event.virtual_packages == {"__cuda": "12.4"}
    outcome = await wait_outcome(event_store, cuda.build_id)
    assert [p["build"] for p in outcome.data["packages"]] == ["cuda12_1"]
    path = await lockfile_on_disk(solver.worker.artifacts, cuda.build_id, tmp_path)
    document = json.loads(path.read_text())
    assert document["metadata"]["custom_metadata"] == {"virtual_packages": "__cuda=12.4"}
    check_lockfile_readers(path)
    assert "virtual packages: __cuda=12.4" in await BuildLog(event_store.pool, cuda.build_id).text()
    # too old a CUDA for the CUDA build's constraint: the CPU build again
    old = gpu_spec(gpu_channel.url, {"CONDA_OVERRIDE_CUDA": "11.8"})
    assert await solved_build(old) == "cpu_0"

    # the setting makes every build of a namespace a CUDA build; a spec can still opt out
    gpu_settings = RuntimeSettings(conda_virtual_packages=["__cuda=12.4"])
    assert await solved_build(gpu_spec(gpu_channel.url), gpu_settings) == "cuda12_1"
    opt_out = gpu_spec(gpu_channel.url, {"CONDA_OVERRIDE_CUDA": ""})
    assert await solved_build(opt_out, gpu_settings) == "cpu_0"

    with pytest.raises(SpecificationError, match="CONDA_OVERRIDE_CUDA"):
        await submit_specification(
            event_store,
            parse_specification(gpu_spec(gpu_channel.url, {"CONDA_OVERRIDE_CUDA": "12 .4"})),
            "default",
        )

"""The packer's and the registry's handlers against the in-memory event log: the decisions
they take from a build's stream before (or instead of) installing anything, with no database,
NATS or channel. The installs themselves are tested against real servers elsewhere."""

from __future__ import annotations

from pathlib import Path

from services.packer.worker import PackerWorker
from services.registry.builder import ImageBuilder, ImageJob
from shared.artifacts import LocalArtifactStore
from shared.bus.consumer import HandlerContext
from shared.events import (
    BuildCanceled,
    BuildDeleted,
    EventData,
    ImagePushed,
    Packed,
    RecordedEvent,
    Solved,
    new_event,
    stream_of_build,
)
from shared.eventstore import InMemoryEventStore
from shared.projections.build_state import build_from_stream
from shared.runtime_settings import RuntimeSettings
from shared.settings import Settings
from shared.spec import parse_specification
from shared.submission import submit_specification

SPEC = "name: analysis\nchannels: [conda-forge]\ndependencies: [numpy]\n"
SETTINGS = RuntimeSettings(conda_solve_platforms=["linux-64"])


async def _submitted(log: InMemoryEventStore) -> tuple[int, str]:
    submitted = await submit_specification(
        log, parse_specification(SPEC), "team", settings=SETTINGS
    )  # type: ignore[arg-type]
    return submitted.build_id, submitted.event.build_key


async def _append(log: InMemoryEventStore, build_id: int, data: EventData) -> RecordedEvent:
    [recorded] = await log.append(stream_of_build(build_id), [new_event(data)])
    return recorded


def _ctx(event: RecordedEvent, log: InMemoryEventStore, attempt: int = 1) -> HandlerContext:
    return HandlerContext(event, attempt, 5, log, None)  # type: ignore[arg-type]


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", store_directory=tmp_path / "store")


def _solved(build_id: int) -> Solved:
    key = f"builds/{build_id}/conda-lock.yml"
    return Solved(build_id=build_id, lockfile_key=key, yaml_key=key, packages=[])


async def test_the_packer_skips_a_build_canceled_before_it_packs(tmp_path: Path) -> None:
    log = InMemoryEventStore()
    build_id, _ = await _submitted(log)
    solved = await _append(log, build_id, _solved(build_id))
    await _append(log, build_id, BuildCanceled(build_id=build_id))
    packer = PackerWorker(
        _settings(tmp_path), LocalArtifactStore(tmp_path / "a", secret=b"k"), None
    )  # type: ignore[arg-type]
    assert await packer.handle(solved, _ctx(solved, log)) == []
    assert not (tmp_path / "store").exists()  # nothing was installed
    types = [e.type for e in await log.read_stream(stream_of_build(build_id))]
    assert types == ["SpecSubmitted", "Solved", "BuildCanceled"]


async def test_the_packer_fails_the_build_once_its_attempts_are_spent(tmp_path: Path) -> None:
    log = InMemoryEventStore()
    build_id, _ = await _submitted(log)
    solved = await _append(log, build_id, _solved(build_id))
    packer = PackerWorker(
        _settings(tmp_path), LocalArtifactStore(tmp_path / "a", secret=b"k"), None
    )  # type: ignore[arg-type]
    [append] = packer.exhausted(solved, "rattler: no space left on device")
    await log.append(append.stream, append.events)
    history = await log.read_stream(stream_of_build(build_id))
    failed = history[-1].payload()
    assert history[-1].type == "BuildFailed" and failed.phase == "pack"  # type: ignore[union-attr]
    assert failed.reason == "rattler: no space left on device"  # type: ignore[union-attr]
    assert history[-1].metadata.causation_id == str(solved.event_id)
    build = build_from_stream(history)
    assert build is not None and build.status == "FAILED"


async def test_the_packer_installs_into_the_store_under_the_build_key(tmp_path: Path) -> None:
    log = InMemoryEventStore()
    build_id, build_key = await _submitted(log)
    solved = await _append(log, build_id, _solved(build_id))
    settings = _settings(tmp_path)
    packer = PackerWorker(settings, LocalArtifactStore(tmp_path / "a", secret=b"k"), None)  # type: ignore[arg-type]
    target = await packer._target(solved.payload(), _ctx(solved, log, attempt=3))  # type: ignore[arg-type]
    assert target.prefix == settings.store_root / "team" / build_key
    assert target.workdir == settings.scratch_root / f"{build_id}.3.work"


async def _packed_v1(log: InMemoryEventStore, build_id: int) -> RecordedEvent:
    await _append(log, build_id, _solved(build_id))
    return await _append(
        log, build_id, Packed(build_id=build_id, archive_key=None, logs_key="l", size=1)
    )


async def test_the_registry_reads_a_version_1_packed_from_its_stream(tmp_path: Path) -> None:
    log = InMemoryEventStore()
    build_id, build_key = await _submitted(log)
    packed = await _packed_v1(log, build_id)
    assert ImageJob.of(packed.payload()) is None  # type: ignore[arg-type]  # too little in it
    job = await ImageJob.from_stream(log, packed.stream, packed.payload())  # type: ignore[arg-type]
    assert (job.namespace, job.environment, job.build_key) == ("team", "analysis", build_key)
    assert job.lockfile_key == f"builds/{build_id}/conda-lock.yml" and job.make_image


async def test_the_registry_makes_no_image_for_a_deleted_canceled_or_imaged_build(
    tmp_path: Path,
) -> None:
    log = InMemoryEventStore()
    builder = ImageBuilder(LocalArtifactStore(tmp_path / "a", secret=b"k"), _settings(tmp_path))
    for ending in (
        lambda b: BuildDeleted(build_id=b),
        lambda b: BuildCanceled(build_id=b),
        lambda b: ImagePushed(build_id=b, manifest_digest="sha256:" + "0" * 64, manifest_key="k"),
    ):
        build_id, _ = await _submitted(log)
        packed = await _packed_v1(log, build_id)
        await _append(log, build_id, ending(build_id))
        before = await log.stream_version(packed.stream)
        # the lockfile was never stored: reaching the install would raise
        assert await builder.handle(packed, _ctx(packed, log)) == []
        assert await log.stream_version(packed.stream) == before


async def test_an_image_that_cannot_be_made_fails_the_image_not_the_build(
    tmp_path: Path,
) -> None:
    log = InMemoryEventStore()
    build_id, _ = await _submitted(log)
    packed = await _packed_v1(log, build_id)
    builder = ImageBuilder(LocalArtifactStore(tmp_path / "a", secret=b"k"), _settings(tmp_path))
    [append] = builder.exhausted(packed, "no space for layers")
    await log.append(append.stream, append.events)
    build = build_from_stream(await log.read_stream(stream_of_build(build_id)))
    assert build is not None and build.status == "COMPLETED"
    assert build.image_status == "FAILED" and "no space for layers" in (build.image_reason or "")

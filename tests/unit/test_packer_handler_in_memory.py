"""The packer's handler against the in-memory event log and the local artifact store: the same
``PackerWorker.handle``/``exhausted`` the service runs, with no Postgres, NATS or S3.

The builds are empty environments (a lockfile with no packages), so ``handle`` runs every
phase for real (rattler install, conda-pack, SBOM, the store prefix) in a fraction of a second.
The one stand-in is the live build log, a Postgres table: ``MemoryLines`` keeps its lines.
Results are committed as ``ConsumerRunner._finish`` commits them: ``append_many`` with the
consumer's tracking record for the message."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import rattler

from services.packer.logs import PackerLog
from services.packer.store import is_complete, prefix_of_build
from services.packer.worker import PackerWorker
from services.registry.builder import ImageJob
from shared.artifacts import ArtifactNotFound, LocalArtifactStore
from shared.bus.consumer import HandlerContext
from shared.events import (
    BuildCanceled,
    BuildFailed,
    BuildStarted,
    Packed,
    RecordedEvent,
    Solved,
    SpecSubmitted,
    new_event,
    stream_of_build,
)
from shared.eventstore import Append, ConcurrencyError, InMemoryEventStore
from shared.logging import get_logger
from shared.projections.build_state import build_from_stream
from shared.runtime_settings import BuildArtifactType, RuntimeSettings
from shared.settings import Settings
from shared.spec import parse_specification
from shared.submission import submit_specification

SPEC = "name: analysis\nchannels: [conda-forge]\ndependencies: []\n"
PLATFORM = str(rattler.Subdir.current())
EMPTY_LOCKFILE = f"""version: 1
metadata:
  content_hash: {{{PLATFORM}: none}}
  channels: [{{url: conda-forge, used_env_vars: []}}]
  platforms: [{PLATFORM}]
  sources: [environment.yaml]
package: []
"""


class MemoryLines:
    """The build log's two calls (``BuildLog.write``/``text``) on a list instead of a table."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    async def write(self, phase: str, *lines: str) -> None:
        self.lines += [f"[{phase}] {line}" for line in lines]

    async def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)


class Packer(PackerWorker):
    def __init__(self, settings: Settings, artifacts: LocalArtifactStore, **kw: float) -> None:
        super().__init__(settings, artifacts, None, **kw)  # type: ignore[arg-type]
        self.logs: dict[int, MemoryLines] = {}

    def build_log(self, build_id: int) -> PackerLog:
        plog = super().build_log(build_id)
        plog.blog = self.logs.setdefault(build_id, MemoryLines())  # type: ignore[assignment]
        return plog


class World:
    def __init__(self, tmp_path: Path, **kw: float) -> None:
        self.log = InMemoryEventStore()
        self.settings = Settings(data_dir=tmp_path, store_directory=tmp_path / "store")
        self.artifacts = LocalArtifactStore(tmp_path / "artifacts", secret=b"test", fsync=False)
        self.packer = Packer(self.settings, self.artifacts, **kw)

    async def solved(self, *, lockfile: str | None = EMPTY_LOCKFILE, **kw: object) -> RecordedEvent:
        """A submitted, started and solved build (its lockfile stored, unless None): the
        ``Solved`` event the packer's consumer is delivered."""
        kw = {"conda_solve_platforms": [PLATFORM], "storage_threshold": 0, **kw}
        settings = RuntimeSettings(**kw)  # type: ignore[arg-type]
        submitted = await submit_specification(
            self.log,  # type: ignore[arg-type]
            parse_specification(SPEC),
            "team",
            settings=settings,
        )
        build_id = submitted.build_id
        key = f"builds/{build_id}/"
        if lockfile is not None:
            await self.artifacts.put_bytes(key + "conda-lock.yml", lockfile.encode())
        solved = Solved(
            build_id=build_id,
            lockfile_key=key + "conda-lock.yml",
            yaml_key=key + "environment.yaml",
            packages=[],
        )
        stream = stream_of_build(build_id)
        *_, event = await self.log.append(
            stream, [new_event(BuildStarted(build_id=build_id)), new_event(solved)]
        )
        return event

    def context(self, event: RecordedEvent, attempt: int = 1) -> HandlerContext:
        return HandlerContext(event, attempt, 3, self.log, get_logger("test"))  # type: ignore[arg-type]

    async def commit(
        self, event: RecordedEvent, appends: list[Append]
    ) -> list[RecordedEvent] | None:
        return await self.log.append_many(appends, tracking=(self.packer.name, str(event.event_id)))

    async def types(self, build_id: int) -> list[str]:
        return [e.type for e in await self.log.read_stream(stream_of_build(build_id))]

    async def prefix(self, build_id: int) -> Path:
        [first, *_] = await self.log.read_stream(stream_of_build(build_id))
        submitted = first.payload()
        assert isinstance(submitted, SpecSubmitted)
        return prefix_of_build(self.settings.store_root, submitted)


async def test_a_solved_build_is_packed_into_the_store_and_recorded_once(tmp_path: Path) -> None:
    w = World(tmp_path)
    solved = await w.solved()
    build_id = int(solved.data["build_id"])
    appends = list(await w.packer.handle(solved, w.context(solved)))
    [append] = appends
    assert append.stream == stream_of_build(build_id)
    assert append.expected_version == 3  # the stream as the packer last read it
    [recorded] = await w.commit(solved, appends) or []
    assert (recorded.type, recorded.version, recorded.stream) == ("Packed", 4, f"build-{build_id}")
    assert recorded.metadata.causation_id == str(solved.event_id)

    packed = recorded.payload()
    assert isinstance(packed, Packed)
    prefix = await w.prefix(build_id)
    key = f"builds/{build_id}/"
    assert (packed.namespace, packed.environment, packed.make_image) == ("team", "analysis", True)
    assert packed.directory == str(prefix) and packed.lockfile_key == key + "conda-lock.yml"
    assert packed.archive_key == key + "archive.tar.gz" and packed.size > 0
    assert packed.build_key and prefix == tmp_path / "store" / "team" / packed.build_key
    assert is_complete(prefix)  # the store prefix is finished and marked so
    for artifact in (packed.archive_key, packed.logs_key, packed.sbom_key):
        assert artifact is not None and await w.artifacts.exists(artifact)
    log_text = (await w.artifacts.get_bytes(packed.logs_key)).decode()
    assert f"build {build_id} packed in" in log_text
    # a version 2 Packed carries all the image builder needs, without reading the stream
    job = ImageJob.of(packed)
    assert job == ImageJob(
        build_id, "team", "analysis", packed.build_key, key + "conda-lock.yml", True,
        key + "sbom.cdx.json",
    )  # fmt: skip
    folded = build_from_stream(await w.log.read_stream(stream_of_build(build_id)))
    assert folded is not None and folded.status == "COMPLETED" and folded.size == packed.size

    # A redelivery: the consumer finds the message tracked and does not run it again; and an
    # attempt that ran anyway (its lease had expired) cannot record a second Packed.
    assert await w.log.is_tracked("packer", str(solved.event_id))
    again = list(await w.packer.handle(solved, w.context(solved, attempt=2)))
    assert [e.type for a in again for e in a.events] == ["Packed"]
    assert await w.commit(solved, again) is None
    assert await w.types(build_id) == ["SpecSubmitted", "BuildStarted", "Solved", "Packed"]


async def test_a_cancel_that_lands_as_the_build_ends_wins_over_its_packed(
    tmp_path: Path,
) -> None:
    """A cancel recorded after the last cancel watch, but before the result is committed,
    fails the commit (the stream moved on); the message is handled again, skips the canceled
    build and removes the complete prefix the first attempt left. No Packed is ever recorded,
    so the build stays CANCELED and the registry never images it."""
    w = World(tmp_path)
    solved = await w.solved()
    build_id = int(solved.data["build_id"])
    appends = list(await w.packer.handle(solved, w.context(solved)))
    prefix = await w.prefix(build_id)
    assert is_complete(prefix)
    await w.log.append(stream_of_build(build_id), [new_event(BuildCanceled(build_id=build_id))])
    with pytest.raises(ConcurrencyError):
        await w.commit(solved, appends)
    assert not await w.log.is_tracked("packer", str(solved.event_id))

    assert await w.packer.handle(solved, w.context(solved, attempt=2)) == []
    assert not prefix.exists()
    assert await w.types(build_id) == ["SpecSubmitted", "BuildStarted", "Solved", "BuildCanceled"]
    folded = build_from_stream(await w.log.read_stream(stream_of_build(build_id)))
    assert folded is not None and folded.status == "CANCELED"


async def test_a_cancel_read_at_the_end_of_the_build_undoes_it(tmp_path: Path) -> None:
    """The packer reads the stream once more before its result: a cancel found there removes
    the finished prefix and records nothing."""

    class CanceledAsItFinishes(Packer):
        async def _build(self, solved: Solved, plog: PackerLog, ctx: HandlerContext):  # type: ignore[no-untyped-def]
            outcome = await super()._build(solved, plog, ctx)
            cancel = new_event(BuildCanceled(build_id=solved.build_id))
            await ctx.store.append(stream_of_build(solved.build_id), [cancel])
            return outcome

    w = World(tmp_path)
    w.packer = CanceledAsItFinishes(w.settings, w.artifacts)
    solved = await w.solved()
    build_id = int(solved.data["build_id"])
    assert await w.packer.handle(solved, w.context(solved)) == []
    assert not (await w.prefix(build_id)).exists()
    assert "marked as CANCELED" in w.packer.logs[build_id].lines[-1]
    assert await w.types(build_id) == ["SpecSubmitted", "BuildStarted", "Solved", "BuildCanceled"]


async def test_without_conda_pack_the_build_is_packed_without_an_archive(tmp_path: Path) -> None:
    w = World(tmp_path)
    artifacts = [BuildArtifactType.LOCKFILE, BuildArtifactType.YAML]
    solved = await w.solved(build_artifacts=artifacts)
    build_id = int(solved.data["build_id"])
    [append] = await w.packer.handle(solved, w.context(solved))
    [event] = append.events
    assert isinstance(event.data, Packed)
    assert event.data.archive_key is None and event.data.make_image is False
    assert not await w.artifacts.exists(f"builds/{build_id}/archive.tar.gz")
    assert is_complete(await w.prefix(build_id))
    assert any("no archive" in line for line in w.packer.logs[build_id].lines)


async def test_a_build_canceled_before_packing_is_skipped(tmp_path: Path) -> None:
    w = World(tmp_path)
    solved = await w.solved()
    build_id = int(solved.data["build_id"])
    await w.log.append(stream_of_build(build_id), [new_event(BuildCanceled(build_id=build_id))])
    assert await w.packer.handle(solved, w.context(solved)) == []
    assert not (await w.prefix(build_id)).exists()  # nothing was installed
    assert w.packer.logs[build_id].lines == []  # not even a log line
    await w.commit(solved, [])
    assert await w.types(build_id) == ["SpecSubmitted", "BuildStarted", "Solved", "BuildCanceled"]


async def test_a_cancel_recorded_while_packing_stops_the_build(tmp_path: Path) -> None:
    """The poll of the build's stream (the fallback for the NATS cancel listener) cancels the
    running handler; the half-made prefix is removed and nothing is appended."""
    w = World(tmp_path, test_delay_s=30.0)
    solved = await w.solved()
    build_id = int(solved.data["build_id"])
    handling = asyncio.create_task(w.packer.handle(solved, w.context(solved)))
    lines = w.packer.logs.setdefault(build_id, MemoryLines())
    async with asyncio.timeout(10):
        while not any("test delay" in line for line in lines.lines):  # installed, waiting
            await asyncio.sleep(0.01)
    prefix = await w.prefix(build_id)
    assert prefix.is_dir() and w.packer.cancels.running == [build_id]
    await w.log.append(stream_of_build(build_id), [new_event(BuildCanceled(build_id=build_id))])
    async with asyncio.timeout(5):  # the poll runs every second, the delay is 30 s
        assert await handling == []
    assert not prefix.exists() and w.packer.cancels.running == []
    assert "marked as CANCELED: canceled while packing" in lines.lines[-1]
    assert await w.artifacts.exists(f"builds/{build_id}/logs.txt")


async def test_user_errors_fail_the_build_at_once(tmp_path: Path) -> None:
    w = World(tmp_path)
    full = await w.solved(storage_threshold=2**62)  # more than any volume has free
    [append] = await w.packer.handle(full, w.context(full))
    [event] = append.events
    assert isinstance(event.data, BuildFailed) and event.data.phase == "download"
    assert event.data.reason.startswith("not enough free storage in the store directory")
    assert event.data.logs_key == f"builds/{full.data['build_id']}/logs.txt"

    broken = await w.solved(lockfile="this is: [not a lockfile\n")
    build_id = int(broken.data["build_id"])
    appends = list(await w.packer.handle(broken, w.context(broken)))
    [recorded] = await w.commit(broken, appends) or []
    failed = recorded.payload()
    assert isinstance(failed, BuildFailed) and failed.reason.startswith("invalid lockfile")
    assert not (await w.prefix(build_id)).exists()  # a failed build leaves no prefix
    folded = build_from_stream(await w.log.read_stream(stream_of_build(build_id)))
    assert folded is not None and folded.status == "FAILED" and folded.status_info == failed.reason


async def test_an_infrastructure_error_is_retried_then_exhausted_records_the_failure(
    tmp_path: Path,
) -> None:
    w = World(tmp_path)
    solved = await w.solved(lockfile=None)  # the lockfile artifact is missing: not a user error
    build_id = int(solved.data["build_id"])
    with pytest.raises(ArtifactNotFound):  # raised, so the consumer retries
        await w.packer.handle(solved, w.context(solved, attempt=1))
    assert await w.types(build_id) == ["SpecSubmitted", "BuildStarted", "Solved"]
    with pytest.raises(ArtifactNotFound):
        await w.packer.handle(solved, w.context(solved, attempt=3))  # the last attempt
    assert any("build failed: ArtifactNotFound" in line for line in w.packer.logs[build_id].lines)

    [append] = w.packer.exhausted(solved, "gave up after 3 attempts")
    [recorded] = await w.commit(solved, [append]) or []
    failed = recorded.payload()
    assert isinstance(failed, BuildFailed) and recorded.version == 4
    assert (failed.phase, failed.reason) == ("pack", "gave up after 3 attempts")
    assert failed.logs_key == f"builds/{build_id}/logs.txt"  # the last attempt's saved log
    assert recorded.metadata.causation_id == str(solved.event_id)
    assert await w.commit(solved, list(w.packer.exhausted(solved, "again"))) is None  # once
    folded = build_from_stream(await w.log.read_stream(stream_of_build(build_id)))
    assert folded is not None and folded.status == "FAILED"
    # without a saved log (the process died), the failure has no log key
    [append] = w.packer.exhausted(solved, "worker died")
    [event] = append.events
    assert isinstance(event.data, BuildFailed) and event.data.logs_key is None

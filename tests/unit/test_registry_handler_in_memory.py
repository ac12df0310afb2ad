"""The registry's image builder decisions against the in-memory event log and the local artifact
store: the image job from ``Packed`` (version 2 alone, version 1 upcast from the stream), which
``Packed`` events make no image, the ``ImageFailed`` that ``exhausted`` records, and the image
status the registry folds from a build's stream (``repository.build_image``).

Building an image itself needs Postgres (the blob GC lock) and is left to the integration
tests; here a ``Packed`` that does need an image is shown to reach the build (its lockfile is
fetched from the artifact store), so each skip below is a decision, not a failure."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from services.registry.builder import ImageBuilder, ImageJob
from services.registry.repository import BuildImage, build_image
from shared.artifacts import ArtifactNotFound, LocalArtifactStore
from shared.bus.consumer import HandlerContext
from shared.events import (
    NO_IMAGE_REASON,
    BuildCanceled,
    BuildDeleted,
    BuildStarted,
    EventData,
    ImageFailed,
    ImagePushed,
    PackageRef,
    Packed,
    RecordedEvent,
    Solved,
    new_event,
    stream_of_build,
)
from shared.eventstore import InMemoryEventStore
from shared.logging import get_logger
from shared.projections.build_state import build_from_stream
from shared.runtime_settings import BuildArtifactType, RuntimeSettings
from shared.settings import Settings
from shared.spec import parse_specification
from shared.submission import submit_specification

SPEC = "name: analysis\nchannels: [conda-forge]\ndependencies: [numpy]\n"
NUMPY = PackageRef(name="numpy", version="2.1.0", build="py311_0")


def pushed(build_id: int) -> ImagePushed:
    digest = f"sha256:{build_id:064x}"
    return ImagePushed(build_id=build_id, manifest_digest=digest, manifest_key=f"blobs/{digest}")


NO_IMAGE = [BuildArtifactType.LOCKFILE, BuildArtifactType.YAML, BuildArtifactType.CONDA_PACK]


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.log = InMemoryEventStore()
        self.artifacts = LocalArtifactStore(tmp_path / "artifacts", secret=b"test", fsync=False)
        self.builder = ImageBuilder(self.artifacts, Settings(data_dir=tmp_path))

    async def packed(
        self,
        *,
        version: int = 2,
        make_image: bool = True,
        then: Callable[[int], Sequence[EventData]] = lambda build_id: (),
        before: Callable[[int], Sequence[EventData]] = lambda build_id: (),
    ) -> RecordedEvent:
        """A build submitted, solved and packed (``Packed`` of the given shape), with
        ``before`` appended ahead of the ``Packed`` and ``then`` after it: the ``Packed`` event
        the builder's consumer is delivered."""
        settings = RuntimeSettings() if make_image else RuntimeSettings(build_artifacts=NO_IMAGE)
        submitted = await submit_specification(
            self.log,  # type: ignore[arg-type]
            parse_specification(SPEC),
            "team",
            settings=settings,
        )
        spec, build_id = submitted.event, submitted.build_id
        key = f"builds/{build_id}/"
        lockfile = key + "conda-lock.yml"
        solved = Solved(
            build_id=build_id, lockfile_key=lockfile, yaml_key=key + "environment.yaml",
            packages=[NUMPY],
        )  # fmt: skip
        common = {
            "build_id": build_id,
            "archive_key": None,
            "logs_key": key + "logs.txt",
            "size": 1,
        }
        if version == 2:
            packed = Packed(
                **common, namespace=spec.namespace, environment=spec.environment,  # type: ignore[arg-type]
                build_key=spec.build_key, lockfile_key=lockfile, make_image=spec.make_image,
                sbom_key=key + "sbom.cdx.json",
            )  # fmt: skip
        else:  # what packers wrote before version 2: Solved's packages, nothing for the image
            packed = Packed(**common, packages=[NUMPY])  # type: ignore[arg-type]
        stream = stream_of_build(build_id)
        *_, event = await self.log.append(
            stream, [new_event(BuildStarted(build_id=build_id)), new_event(solved)]
        )
        await self.log.append(stream, [new_event(e) for e in before(build_id)])
        [event] = await self.log.append(stream, [new_event(packed, causation=event)])
        await self.log.append(stream, [new_event(e) for e in then(build_id)])
        return event

    def context(self, event: RecordedEvent) -> HandlerContext:
        return HandlerContext(event, 1, 3, self.log, get_logger("test"))  # type: ignore[arg-type]

    async def types(self, event: RecordedEvent) -> list[str]:
        return [e.type for e in await self.log.read_stream(event.stream)]


async def test_a_version_2_packed_is_the_image_job_and_a_version_1_is_upcast_from_its_stream(
    tmp_path: Path,
) -> None:
    w = World(tmp_path)
    v2 = await w.packed()
    build_id = int(v2.data["build_id"])
    [submitted, *_] = await w.log.read_stream(v2.stream)
    build_key = submitted.data["build_key"]
    packed = v2.payload()
    assert isinstance(packed, Packed) and build_key
    expected = ImageJob(
        build_id, "team", "analysis", build_key, f"builds/{build_id}/conda-lock.yml", True,
        f"builds/{build_id}/sbom.cdx.json",
    )  # fmt: skip
    assert ImageJob.of(packed) == expected

    v1 = await w.packed(version=1, make_image=False)
    old = v1.payload()
    assert isinstance(old, Packed) and ImageJob.of(old) is None  # not enough in the event
    history = [e.payload() for e in await w.log.read_stream(v1.stream)]
    job = ImageJob.of_history(history, old.build_id, old.sbom_key)
    [submitted, *_] = await w.log.read_stream(v1.stream)
    assert job == ImageJob(
        int(v1.data["build_id"]), "team", "analysis", submitted.data["build_key"],
        f"builds/{v1.data['build_id']}/conda-lock.yml", False, None,
    )  # fmt: skip  # from SpecSubmitted and Solved

    # a version 1 Packed whose stream has no Solved has no lockfile to build from
    [submitted_only, *_] = await w.log.read_stream(v1.stream)
    await w.log.append("build-99", [new_event(submitted_only.payload())])
    with pytest.raises(ValueError, match="no Solved event"):
        ImageJob.of_history([e.payload() for e in await w.log.read_stream("build-99")], 99)


async def test_a_packed_build_needing_an_image_goes_on_to_build_it(tmp_path: Path) -> None:
    """The control for the skips below: nothing in the stream says no, so the builder fetches
    the lockfile (absent from the artifact store here, so the attempt fails and is retried)."""
    w = World(tmp_path)
    for version in (2, 1):
        event = await w.packed(version=version)
        with pytest.raises(ArtifactNotFound, match="conda-lock.yml"):
            await w.builder.handle(event, w.context(event))


async def test_no_image_for_a_build_pushed_deleted_or_canceled_since_or_without_one(
    tmp_path: Path,
) -> None:
    w = World(tmp_path)
    cases = {
        "pushed since": await w.packed(then=lambda b: [pushed(b)]),
        "deleted since": await w.packed(then=lambda b: [BuildDeleted(build_id=b)]),
        "canceled since": await w.packed(then=lambda b: [BuildCanceled(build_id=b)]),
        # what an older packer could commit: a Packed after the cancel it raced with
        "canceled before its Packed": await w.packed(before=lambda b: [BuildCanceled(build_id=b)]),
        "make_image false (v2)": await w.packed(make_image=False),
        "make_image false (v1, from SpecSubmitted)": await w.packed(version=1, make_image=False),
    }
    for case, event in cases.items():
        before = await w.types(event)
        assert await w.builder.handle(event, w.context(event)) == [], case
        assert await w.types(event) == before, case  # the handler itself appends nothing


async def test_exhausted_records_image_failed_once_and_the_build_stays_completed(
    tmp_path: Path,
) -> None:
    w = World(tmp_path)
    event = await w.packed()
    build_id = int(event.data["build_id"])
    assert (await build_image(w.log, build_id)).status == "pending"  # type: ignore[arg-type]
    [append] = w.builder.exhausted(event, "RuntimeError: no busybox")
    assert append.stream == event.stream
    tracking = (w.builder.name, str(event.event_id))
    [recorded] = await w.log.append_many([append], tracking=tracking) or []
    failed = recorded.payload()
    assert isinstance(failed, ImageFailed) and recorded.version == event.version + 1
    assert failed == ImageFailed(
        build_id=build_id, reason="image build failed: RuntimeError: no busybox"
    )
    assert recorded.metadata.causation_id == str(event.event_id)
    again = w.builder.exhausted(event, "again")
    assert await w.log.append_many(again, tracking=tracking) is None  # a redelivery: once
    assert await w.types(event) == [
        "SpecSubmitted",
        "BuildStarted",
        "Solved",
        "Packed",
        "ImageFailed",
    ]

    build = build_from_stream(await w.log.read_stream(event.stream))
    assert build is not None and build.status == "COMPLETED"  # the build itself is usable
    assert (build.image_status, build.image_reason) == ("FAILED", failed.reason)
    image = await build_image(w.log, build_id)  # type: ignore[arg-type]
    assert image == BuildImage(
        build_id, "failed", "team", "analysis", build.build_key, reason=failed.reason
    )


async def test_the_registry_reads_each_image_status_from_the_build_stream(tmp_path: Path) -> None:
    w = World(tmp_path)

    async def status(event: RecordedEvent) -> tuple[str, str, str]:
        image = await build_image(w.log, int(event.data["build_id"]))  # type: ignore[arg-type]
        return image.status, image.digest, image.reason

    event = await w.packed()
    build_id = int(event.data["build_id"])
    assert await status(event) == ("pending", "", "")
    await w.log.append(event.stream, [new_event(pushed(build_id))])
    assert await status(event) == ("pushed", f"sha256:{build_id:064x}", "")
    await w.log.append(event.stream, [new_event(ImageFailed(build_id=build_id, reason="late"))])
    assert await status(event) == ("pushed", f"sha256:{build_id:064x}", "")  # stays pushed
    await w.log.append(event.stream, [new_event(BuildDeleted(build_id=build_id))])
    assert await status(event) == ("deleted", "", "")

    skipped = await w.packed(make_image=False)
    assert await status(skipped) == ("failed", "", NO_IMAGE_REASON)
    assert (await build_image(w.log, 12345)).status == "unknown"  # type: ignore[arg-type]

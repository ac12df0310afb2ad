"""Handlers' decisions and the submission command against the in-memory event log: the same
code the services run, with no database, NATS or solver."""

from __future__ import annotations

from pathlib import Path

from services.solver.worker import SolverWorker
from shared.events import BuildCanceled, new_event, stream_of_build
from shared.eventstore import InMemoryEventStore
from shared.runtime_settings import RuntimeSettings
from shared.spec import parse_specification
from shared.submission import submit_rejected, submit_specification

SPEC = "name: analysis\nchannels: [conda-forge]\ndependencies: [numpy]\n"


def solver() -> SolverWorker:
    return SolverWorker(None, None, None, store_root=Path("/store"))  # type: ignore[arg-type]


async def test_submission_appends_one_stream_and_returns_its_position() -> None:
    log = InMemoryEventStore()
    submitted = await submit_specification(
        log,  # type: ignore[arg-type]
        parse_specification(SPEC),
        "team",
        settings=RuntimeSettings(conda_solve_platforms=["linux-64"]),
        actor="alice",
    )
    [event] = await log.read_stream(stream_of_build(submitted.build_id))
    assert event.type == "SpecSubmitted" and submitted.position == event.global_position == 1
    assert event.data["channels"] == ["https://conda.anaconda.org/conda-forge"]
    assert event.metadata.actor == "alice" and submitted.event.namespace == "team"


async def test_the_solver_starts_a_build_once_and_never_a_canceled_or_failed_one() -> None:
    log = InMemoryEventStore()
    settings = RuntimeSettings(conda_solve_platforms=["linux-64"])
    worker = solver()
    ok = await submit_specification(log, parse_specification(SPEC), "team", settings=settings)  # type: ignore[arg-type]
    [event] = await log.read_stream(stream_of_build(ok.build_id))
    assert await worker._start(log, event, ok.build_id)  # type: ignore[arg-type]
    assert await worker._start(log, event, ok.build_id)  # type: ignore[arg-type]  # a redelivery
    types = [e.type for e in await log.read_stream(stream_of_build(ok.build_id))]
    assert types == ["SpecSubmitted", "BuildStarted"]  # started once

    canceled = await submit_specification(log, parse_specification(SPEC), "team", settings=settings)  # type: ignore[arg-type]

    await log.append(
        stream_of_build(canceled.build_id), [new_event(BuildCanceled(build_id=canceled.build_id))]
    )
    [first, *_] = await log.read_stream(stream_of_build(canceled.build_id))
    assert not await worker._start(log, first, canceled.build_id)  # type: ignore[arg-type]

    refused = await submit_rejected(log, "team", "bad", "bad.yaml: line 3: not YAML", "0" * 64)  # type: ignore[arg-type]
    [submitted, failed] = await log.read_stream(stream_of_build(refused.build_id))
    assert failed.type == "BuildFailed"
    assert not await worker._start(log, submitted, refused.build_id)  # type: ignore[arg-type]
    assert await log.stream_version(stream_of_build(refused.build_id)) == 2

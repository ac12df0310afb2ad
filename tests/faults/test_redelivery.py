"""Redelivery while a build is still running.

JetStream redelivers a message whose ack deadline passed, even while its first attempt is
still packing (in-progress acks could not reach the server in time). The redelivery must not
run beside that attempt: the consumer's lease in Postgres makes it wait, and fences the commit.

On its own, pausing nats-server (SIGSTOP) redelivers only sometimes: the in-progress acks the
packer sent meanwhile wait in the socket and race the server's ack timer when it resumes
(measured: 1 redelivery in 5 pauses). So the packer reaches NATS through a proxy that holds its
traffic for the pause and a second more, as a congested link would: the redelivery is certain.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from services.packer.install import scratch_dirs
from shared.buildlog import BuildLog
from shared.embedded.nats import NatsServer
from shared.embedded.processes import stop_child
from shared.eventstore import EventStore
from shared.settings import Settings
from shared.spec import parse_specification
from shared.submission import submit_specification
from tests.channels.server import ServedChannel
from tests.harness.fixtures_stack import Stack
from tests.harness.processes import paused, start_service
from tests.harness.proxy import StallableProxy

ACK_WAIT_S = 2.0
PAUSE_S = 4 * ACK_WAIT_S
PACK_DELAY_S = PAUSE_S + 6
LONG_LEASE_S = 10.0
"""Renewed every 3.3 s: a busy machine's scheduling delays cannot cost the holder its lease."""
SHORT_LEASE_S = 3.0
"""Shorter than the pause: the paused holder's lease runs out."""


def spec(name: str, channel: str, *deps: str) -> str:
    return yaml.safe_dump({"name": name, "channels": [channel], "dependencies": list(deps)})


async def wait_for_log(store: EventStore, build_id: int, text: str, timeout: float = 90) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while text not in await BuildLog(store.pool, build_id).text():
        assert loop.time() < deadline, f"{text!r} never appeared in build {build_id}'s log"
        await asyncio.sleep(0.1)


def records(log: Path, build_id: int) -> list[dict]:
    """The JSON log lines services wrote about ``build_id``."""
    found = []
    for line in log.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("build_id") == build_id:
            found.append(record)
    return found


def max_delivery(log: Path, build_id: int) -> int:
    """The highest JetStream delivery count logged for the build's messages."""
    return max((int(r["delivery"]) for r in records(log, build_id) if "delivery" in r), default=0)


def lines_beside_a_later_attempt(log: Path, build_id: int) -> list[str]:
    """Build-log lines that an earlier delivery wrote after a later delivery began writing."""
    later_started: int | None = None
    beside = []
    for r in records(log, build_id):
        if "phase" not in r or "delivery" not in r:
            continue
        delivery = int(r["delivery"])
        if later_started is None and delivery > 1:
            later_started = delivery
        elif later_started is not None and delivery < later_started:
            beside.append(f"delivery {delivery}: {r['event']}")
    return beside


async def submit(store: EventStore, channel: ServedChannel, name: str) -> int:
    text = spec(name, channel.url, "bar")
    return (await submit_specification(store, parse_specification(text), "default")).build_id


@pytest.fixture
def fault_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "consumer_ack_wait_s": ACK_WAIT_S,
            "artifact_dir": Path(settings.data_dir) / "artifacts",
        }
    )


async def test_nats_paused_past_the_ack_wait_does_not_start_a_second_attempt_beside_the_first(
    stack: Stack,
    event_store: EventStore,
    fault_settings: Settings,
    nats_server: NatsServer,
    tiny_channel: ServedChannel,
    tmp_path: Path,
) -> None:
    log = tmp_path / "services.log"
    proxy = await StallableProxy(nats_server.host, nats_server.port).start()
    via_proxy = fault_settings.model_copy(
        update={"nats_url": f"nats://127.0.0.1:{proxy.port}", "consumer_lease_s": LONG_LEASE_S}
    )
    solver = start_service("solver", fault_settings, log)
    packer = start_service("packer", via_proxy, log, packer_test_delay_s=PACK_DELAY_S)
    try:
        build_id = await submit(event_store, tiny_channel, "paused")
        await wait_for_log(event_store, build_id, "test delay")
        assert nats_server.proc is not None
        async with proxy.stalled():
            with paused(nats_server.proc.pid):
                await asyncio.sleep(PAUSE_S)
            await asyncio.sleep(1.0)  # the resumed server's ack timer fires first
        await stack.projected(timeout=30)
        row = await stack.wait_build(build_id, timeout=120)
        text = await BuildLog(event_store.pool, build_id).text()

        assert max_delivery(log, build_id) >= 2, "JetStream did not redeliver: no fault"
        assert row["status"] == "COMPLETED", (row["status_info"], text[-2000:])
        types = [e.type for e in await event_store.read_stream(f"build-{build_id}")]
        assert types.count("Packed") == 1 and "BuildFailed" not in types
        assert "(attempt 1 of" in text and "attempt 2" not in text, text
        assert scratch_dirs(fault_settings.scratch_root, build_id) == []
    finally:
        stop_child(packer)
        stop_child(solver)
        await proxy.close()


async def test_packer_paused_past_its_lease_gives_up_and_the_redelivery_packs_once(
    stack: Stack,
    event_store: EventStore,
    fault_settings: Settings,
    tiny_channel: ServedChannel,
    tmp_path: Path,
) -> None:
    """A holder frozen longer than its lease (a VM pause, a long GC) must not carry on beside
    the attempt that took over when it wakes up, nor commit after it."""
    log = tmp_path / "services.log"
    short = fault_settings.model_copy(update={"consumer_lease_s": SHORT_LEASE_S})
    solver = start_service("solver", short, log)
    packer = start_service("packer", short, log, packer_test_delay_s=PACK_DELAY_S)
    try:
        build_id = await submit(event_store, tiny_channel, "frozen")
        await wait_for_log(event_store, build_id, "test delay")
        with paused(packer.pid):
            await asyncio.sleep(PAUSE_S)
        await stack.projected(timeout=30)
        row = await stack.wait_build(build_id, timeout=120)
        text = await BuildLog(event_store.pool, build_id).text()

        assert row["status"] == "COMPLETED", (row["status_info"], text[-2000:])
        types = [e.type for e in await event_store.read_stream(f"build-{build_id}")]
        assert types.count("Packed") == 1 and "BuildFailed" not in types
        assert "(attempt 2 of" in text, text
        assert lines_beside_a_later_attempt(log, build_id) == []  # attempt 1 stopped
        assert text.count("packed in") == 1, text
        abandoned = [r for r in records(log, build_id) if r["event"].startswith("lease lost")]
        assert [r["attempt"] for r in abandoned] == [1], abandoned
        assert scratch_dirs(fault_settings.scratch_root, build_id) == []
    finally:
        stop_child(packer)
        stop_child(solver)


async def test_a_local_file_error_while_installing_is_retried_not_blamed_on_the_user(
    stack: Stack,
    event_store: EventStore,
    settings: Settings,
    tiny_channel: ServedChannel,
    tmp_path: Path,
) -> None:
    """A file that vanished from the package cache (as when another attempt wiped it) is the
    machine's fault: retried, and never reported as "a package could not be fetched"."""
    s = settings.model_copy(update={"artifact_dir": Path(settings.data_dir) / "artifacts"})
    log = tmp_path / "services.log"
    solver = start_service("solver", s, log)
    packer = start_service("packer", s, log)
    try:
        first = await submit(event_store, tiny_channel, "fills-the-cache")
        await stack.projected(timeout=30)
        assert (await stack.wait_build(first, timeout=120))["status"] == "COMPLETED"
        for path in s.package_cache_dir.glob("libfoo-1.0-*/lib/*"):
            path.unlink()
        text = spec("links-libfoo-again", tiny_channel.url, "bar", "baz")
        second = (
            await submit_specification(event_store, parse_specification(text), "default")
        ).build_id
        await stack.projected(timeout=30)
        row = await stack.wait_build(second, timeout=120)
        log_text = await BuildLog(event_store.pool, second).text()
    finally:
        stop_child(packer)
        stop_child(solver)
    assert row["status"] == "FAILED"
    assert "attempt 1 failed: InstallerError" in log_text and "No such file" in log_text
    assert f"(attempt {s.consumer_max_deliver} of" in log_text  # retried as a local fault
    assert "could not be fetched" not in row["status_info"], row["status_info"]

"""Helpers for the registry tests: lockfiles from a real rattler solve, builds fed straight
into the event log (SpecSubmitted → Solved → Packed), a registry served on a free port, and
real OCI clients (skopeo, umoci, runc) run as subprocesses."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rattler
from conda_lock.lockfile import write_conda_lock_file
from conda_lock.lockfile.v1.models import HashModel, LockMeta
from conda_lock.lockfile.v2prelim.models import LockedDependency, Lockfile
from conda_lock.models.channel import Channel

from shared.artifacts import ArtifactStore
from shared.events import ImagePushed, Packed, Solved, new_event
from shared.eventstore import EventStore
from shared.spec import CondaSpecification
from shared.submission import submit_specification


async def solve_lockfile(
    channel_url: str, specs: list[str], cache: Path, wheels: Sequence[Path] = ()
) -> str:
    """A conda-lock v1 lockfile (text) for ``specs`` solved with rattler on linux-64, with
    ``wheels`` (files named ``<name>-<version>-…``) as its pip pins."""
    records = await rattler.solve(
        sources=[rattler.Channel(channel_url)],
        specs=[rattler.MatchSpec(s) for s in specs],
        gateway=rattler.Gateway(cache_dir=cache),
        platforms=["linux-64", "noarch"],
        timeout=dt.timedelta(seconds=60),
    )
    packages = []
    for r in records:
        deps: dict[str, str] = {}
        for d in r.depends:
            name, _, constraint = d.partition(" ")
            deps[name] = constraint.strip() or "*"
        packages.append(
            LockedDependency(
                name=r.name.normalized,
                version=str(r.version),
                manager="conda",
                platform="linux-64",
                dependencies=deps,
                url=r.url,
                hash=HashModel(md5=r.md5.hex(), sha256=r.sha256.hex() if r.sha256 else None),
                build=str(r.build),
                categories={"main"},
            )
        )
    for wheel in wheels:
        name, version = wheel.name.split("-")[:2]
        packages.append(
            LockedDependency(
                name=name,
                version=version,
                manager="pip",
                platform="linux-64",
                dependencies={},
                url=wheel.as_uri(),
                hash=HashModel(sha256=hashlib.sha256(wheel.read_bytes()).hexdigest()),
                categories={"main"},
            )
        )
    lock = Lockfile(
        package=packages,
        metadata=LockMeta(
            content_hash={"linux-64": "x"},
            channels=[Channel.from_string(channel_url)],
            platforms=["linux-64"],
            sources=["environment.yaml"],
        ),
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "conda-lock.yml"
        write_conda_lock_file(lock, path, metadata_choices=None)
        return path.read_text()


async def submit_solved(
    store: EventStore,
    artifacts: ArtifactStore,
    namespace: str,
    name: str,
    channel_url: str,
    specs: list[str],
    lockfile: str,
) -> int:
    """A build whose solve is faked (its lockfile stored, ``Solved`` appended): what the
    image preparer starts from."""
    spec = CondaSpecification(name=name, channels=[channel_url], dependencies=specs)
    submitted = await submit_specification(store, spec, namespace)
    build_id = submitted.build_id
    key = f"builds/{build_id}/conda-lock.yml"
    await artifacts.put_bytes(key, lockfile.encode())
    solved = Solved(build_id=build_id, lockfile_key=key, yaml_key=key, packages=[])
    await store.append(f"build-{build_id}", [new_event(solved)])
    return build_id


async def submit_packed(
    store: EventStore,
    artifacts: ArtifactStore,
    namespace: str,
    name: str,
    channel_url: str,
    specs: list[str],
    lockfile: str,
    sbom: bytes | None = None,
) -> int:
    """A build whose solve and pack are faked (events appended), so the builder runs next;
    with ``sbom``, a version 2 ``Packed`` names it as the packer's does."""
    build_id = await submit_solved(store, artifacts, namespace, name, channel_url, specs, lockfile)
    await append_packed(store, artifacts, build_id, sbom)
    return build_id


async def append_packed(
    store: EventStore, artifacts: ArtifactStore, build_id: int, sbom: bytes | None = None
) -> None:
    """The faked ``Packed`` of a build ``submit_solved`` made (version 1 without ``sbom``)."""
    stream = f"build-{build_id}"
    submitted = (await store.read_stream(stream))[0].payload()
    key = f"builds/{build_id}/conda-lock.yml"
    packed = Packed(build_id=build_id, archive_key=key, logs_key=key, size=1)
    if sbom is not None:
        sbom_key = f"builds/{build_id}/sbom.cdx.json"
        await artifacts.put_bytes(sbom_key, sbom)
        packed = packed.model_copy(
            update={
                "namespace": submitted.namespace,  # type: ignore[attr-defined]
                "environment": submitted.environment,  # type: ignore[attr-defined]
                "build_key": submitted.build_key,  # type: ignore[attr-defined]
                "lockfile_key": key,
                "sbom_key": sbom_key,
            }
        )
    await store.append(stream, [new_event(packed)])


async def wait_image(store: EventStore, build_id: int, timeout: float = 60.0) -> ImagePushed:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for event in await store.read_stream(f"build-{build_id}"):
            if event.type == "ImagePushed":
                return ImagePushed.model_validate(event.data)
            if event.type in ("ImageFailed", "BuildFailed"):
                raise AssertionError(f"build {build_id}: {event.data}")
        await asyncio.sleep(0.1)
    raise TimeoutError(f"no image for build {build_id}")


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


async def run(*args: str, timeout: float = 120.0) -> Run:
    """A subprocess that does not block the event loop the registry runs in."""
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return Run(proc.returncode or 0, out.decode(), err.decode())


def skopeo(*args: str) -> list[str]:
    return ["skopeo", "--insecure-policy", *args]


async def run_in_runc(
    host: str, image: str, args: list[str], tmp_path: Path, creds: str | None = None
) -> str:
    """skopeo copy → OCI layout, umoci unpack, runc run; returns stdout."""
    layout = tmp_path / "layout"
    auth = ["--src-creds", creds] if creds else []
    copied = await run(
        *skopeo(
            "copy", "--src-tls-verify=false", *auth, f"docker://{host}/{image}", f"oci:{layout}:img"
        ),
        timeout=600,
    )
    assert copied.code == 0, copied.err
    bundle = tmp_path / "bundle"
    unpacked = await run("umoci", "unpack", "--image", f"{layout}:img", str(bundle))
    assert unpacked.code == 0, unpacked.err
    config_path = bundle / "config.json"
    config = json.loads(config_path.read_text())
    config["process"]["args"] = args
    config["process"]["terminal"] = False
    config_path.write_text(json.dumps(config))
    ran = await run("runc", "run", "--bundle", str(bundle), f"cs-test-{tmp_path.name}"[:60])
    assert ran.code == 0, ran.err + ran.out
    return ran.out

"""The ``conda-store`` CLI as a subprocess against the real API (uvicorn on a free port).

The ``stack`` fixture runs relay and projector; the solver and packer workers run in-process
when a test needs real builds. Read-path tests seed their world with events (the same
``submit_specification`` the API uses, then the workers' outcome events), so they are fast and
still go through projection and the real HTTP API.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from shared.events import BuildStarted, PackageRef, Packed, Solved, new_event, utcnow
from shared.eventstore import EventStore
from shared.sbom import SbomSubject, build_sbom
from shared.settings import Settings
from shared.spec import parse_specification
from shared.submission import submit_specification
from tests.channels.server import ServedChannel
from tests.harness.fixtures_stack import Stack
from tests.harness.processes import Result, run_process

SECRET = "cli-test-secret-long-enough-for-hs256!"
PASSWORD = "password"  # the API's DummyAuthenticator default


@dataclass
class Server:
    """The running API, a recorder of request paths, and a way to run the CLI against it."""

    url: str
    state: Any
    stack: Stack
    bin_dir: Path
    cache_dir: Path
    paths: list[str] = field(default_factory=list)

    @property
    def scratch_dir(self) -> Path:
        return self.cache_dir.parent / "tmp"

    def env(self, url: str | None = None, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONDA_STORE_")}
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        env["CONDA_STORE_URL"] = url or self.url
        env["CONDA_STORE_CACHE_DIR"] = str(self.cache_dir)
        scratch = self.scratch_dir  # where `run --no-cache` unpacks (and must clean up)
        scratch.mkdir(exist_ok=True)
        env["TMPDIR"] = str(scratch)
        env.update(extra)
        return env

    async def cli(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 180.0,
        stdin: bytes | None = None,
    ) -> Result:
        return await run_process(["conda-store", *args], env or self.env(), timeout, stdin)

    def token(self, primary: str = "alice", bindings: dict[str, list[str]] | None = None) -> str:
        from shared.auth import AuthenticationToken
        from shared.auth.tokens import utcnow

        token = AuthenticationToken(
            exp=utcnow() + _hours(1),
            primary_namespace=primary,
            role_bindings=bindings if bindings is not None else {"*/*": ["admin"]},
        )
        return self.state.codec.encode(token)

    def admin_env(self) -> dict[str, str]:
        return self.env(CONDA_STORE_AUTH="token", CONDA_STORE_TOKEN=self.token())

    def hits(self, fragment: str) -> int:
        return sum(fragment in p for p in self.paths)


def _hours(n: int):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    return timedelta(hours=n)


def _cli_bin(tmp_path: Path) -> Path:
    """A directory with ``conda-store``: the installed script, or a wrapper when not installed."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    installed = Path(sys.executable).parent / "conda-store"
    target = bin_dir / "conda-store"
    if installed.exists():
        target.symlink_to(installed)
    else:
        target.write_text(f"#!{sys.executable}\nfrom client.cli import main\nmain()\n")
        target.chmod(0o755)
    return bin_dir


class _Recorder:
    """ASGI middleware noting every request path, to prove what the CLI did (not) fetch."""

    def __init__(self, app: Any, paths: list[str]) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


@pytest.fixture
async def server(stack: Stack, settings: Settings, tmp_path: Path) -> AsyncIterator[Server]:
    import uvicorn

    from services.api.app import create_app
    from shared.embedded.ports import free_port

    api_settings = settings.model_copy(
        update={"secret": SECRET, "predefined_tokens": {}, "enable_ui": False}
    )
    app = create_app(api_settings, store=stack.store)
    paths: list[str] = []
    app.add_middleware(_Recorder, paths=paths)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    uv = uvicorn.Server(config)
    task = asyncio.create_task(uv.serve())
    deadline = time.monotonic() + 30
    while not uv.started:
        if task.done():
            task.result()
        assert time.monotonic() < deadline, "uvicorn did not start"
        await asyncio.sleep(0.05)
    try:
        yield Server(
            url=f"http://127.0.0.1:{port}",
            state=app.state.api,
            stack=stack,
            bin_dir=_cli_bin(tmp_path),
            cache_dir=tmp_path / "cache",
            paths=paths,
        )
    finally:
        uv.should_exit = True
        await asyncio.wait_for(task, 30)


# --- seeding through the event log -------------------------------------------------------------


def _packages(*names: str) -> list[PackageRef]:
    return [
        PackageRef(
            name=n, version="1.0", build="0", channel="https://example.org/ch", subdir="noarch"
        )
        for n in names
    ]


async def seed_build(
    server: Server,
    namespace: str,
    name: str,
    deps: list[str],
    complete: bool = True,
    sbom: bool = True,
) -> int:
    """Submit like the API does; when ``complete``, append the solver's and packer's outcomes
    with artifacts that exist in the API's store (an SBOM of its packages unless ``sbom`` is
    False, as in builds packed before SBOMs were made)."""
    store: EventStore = server.stack.store
    text = yaml.safe_dump({"name": name, "channels": ["conda-forge"], "dependencies": deps})
    build_id = (await submit_specification(store, parse_specification(text), namespace)).build_id
    if not complete:
        return build_id
    arts = server.state.artifacts
    keys = {k: f"seed/{build_id}/{k}" for k in ("lock.yml", "env.yaml", "a.tar.gz", "log.txt")}
    await arts.put_bytes(keys["lock.yml"], f"lockfile of {build_id}\n".encode())
    await arts.put_bytes(keys["env.yaml"], f"name: {name}\n".encode())
    await arts.put_bytes(keys["a.tar.gz"], b"\x1f\x8b" + bytes(range(256)) * 8)
    await arts.put_bytes(keys["log.txt"], f"log of build {build_id}\n".encode())
    packages = _packages(*deps)
    sbom_key = f"seed/{build_id}/sbom.cdx.json" if sbom else None
    if sbom_key is not None:
        subject = SbomSubject(namespace, name, build_id, "", utcnow())
        await arts.put_bytes(sbom_key, build_sbom(subject, packages))
    outcome = [
        BuildStarted(build_id=build_id),
        Solved(
            build_id=build_id,
            lockfile_key=keys["lock.yml"],
            yaml_key=keys["env.yaml"],
            packages=packages,
        ),
        Packed(
            build_id=build_id,
            archive_key=keys["a.tar.gz"],
            logs_key=keys["log.txt"],
            size=2050,
            packages=packages,
            sbom_key=sbom_key,
        ),
    ]
    await store.append(f"build-{build_id}", [new_event(e, actor="seed") for e in outcome])
    return build_id


def _jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# --- tests that need only the API --------------------------------------------------------------


async def test_version_and_unreachable_server(server: Server) -> None:
    done = await server.cli("--version")
    assert done.code == 0 and done.out.startswith("conda-store, version ")
    gone = await server.cli("--conda-store-url", "http://127.0.0.1:9", "info")
    assert gone.code == 1
    assert gone.err.count("\n") == 1 and "cannot reach" in gone.err
    assert "Traceback" not in gone.err


async def test_auth_none_token_and_basic(server: Server) -> None:
    anonymous = await server.cli("info", "--output", "json")
    assert anonymous.code == 0, anonymous.err
    assert json.loads(anonymous.out)["authenticated"] is False

    with_token = await server.cli("info", "--output", "json", env=server.admin_env())
    assert with_token.code == 0, with_token.err
    info = json.loads(with_token.out)
    assert info["authenticated"] is True and info["primary_namespace"] == "alice"

    port = server.url.rsplit(":", 1)[1]
    for host in ("127.0.0.1", "localhost"):
        env = server.env(
            url=f"http://{host}:{port}",
            CONDA_STORE_AUTH="basic",
            CONDA_STORE_USERNAME="bob",
            CONDA_STORE_PASSWORD=PASSWORD,
        )
        basic = await server.cli("info", "--output", "json", env=env)
        assert basic.code == 0, basic.err
        info = json.loads(basic.out)
        assert info["authenticated"] is True, host
        assert info["primary_namespace"] == "bob"
    table = await server.cli("info", env=env)
    assert "Default namespace is bob" in table.out and "Authenticated True" in table.out

    bad = server.env(
        CONDA_STORE_AUTH="basic", CONDA_STORE_USERNAME="bob", CONDA_STORE_PASSWORD="wrong"
    )
    refused = await server.cli("info", env=bad)
    assert refused.code == 1 and "login failed" in refused.err and "Traceback" not in refused.err


async def test_token_sends_expiration_and_bindings(server: Server) -> None:
    before = time.time()
    done = await server.cli(
        "token",
        "--expiration",
        "600",
        "--permission",
        "default/*:viewer",
        "--namespace",
        "carol",
        env=server.admin_env(),
    )
    assert done.code == 0, done.err
    claims = _jwt_claims(done.out.strip())
    assert before + 590 <= claims["exp"] <= time.time() + 610
    assert claims["primary_namespace"] == "carol"
    assert claims["role_bindings"] == {"default/*": ["viewer"]}
    # the new token works as --auth token
    env = server.env(CONDA_STORE_AUTH="token", CONDA_STORE_TOKEN=done.out.strip())
    info = json.loads((await server.cli("info", "--output", "json", env=env)).out)
    assert info["authenticated"] is True and info["primary_namespace"] == "carol"


async def test_list_filters_with_more_than_a_page(server: Server) -> None:
    """130 environments: every 10th still queued, every 10th+1 without numpy, 104 match."""
    expected = set()
    for i in range(130):
        name = f"env{i:03d}"
        if i % 10 == 0:
            await seed_build(server, "default", name, ["numpy"], complete=False)
        elif i % 10 == 1:
            await seed_build(server, "default", name, ["six"])
        else:
            await seed_build(server, "default", name, ["numpy", "six"])
            expected.add(name)
    await server.stack.projected()
    assert len(expected) == 104

    done = await server.cli(
        "list", "environment", "--status", "COMPLETED", "--package", "numpy", "--output", "json"
    )
    assert done.code == 0, done.err
    rows = json.loads(done.out)
    assert {r["name"] for r in rows} == expected
    assert len(rows) == len(expected)  # no duplicates across pages
    assert set(rows[0]) == {
        "id",
        "namespace",
        "namespace_id",
        "name",
        "current_build_id",
        "description",
    }
    everything = json.loads((await server.cli("list", "environment", "--output", "json")).out)
    assert len(everything) == 130
    queued = json.loads(
        (await server.cli("list", "build", "--status", "QUEUED", "--output", "json")).out
    )
    assert len(queued) == 13 and {b["status"] for b in queued} == {"QUEUED"}
    both = await server.cli(
        "list", "environment", "--package", "numpy", "--package", "six", "--output", "json"
    )
    assert {r["name"] for r in json.loads(both.out)} == expected
    numpy_builds = await server.cli(
        "list", "build", "--status", "COMPLETED", "--package", "numpy", "--output", "json"
    )
    assert len(json.loads(numpy_builds.out)) == 104
    packed = await server.cli("list", "environment", "--artifact", "CONDA_PACK", "--output", "json")
    assert len(json.loads(packed.out)) == 117
    table = await server.cli("list", "namespace")
    assert table.code == 0 and "default" in table.out
    bad = await server.cli("list", "build", "--status", "NOPE")
    assert bad.code == 2  # click's usage error, before any request


async def test_diff_of_two_builds_as_json_and_as_a_table(server: Server) -> None:
    first = await seed_build(server, "default", "cmp", ["numpy"])
    second = await seed_build(server, "default", "cmp", ["numpy", "six"])
    await server.stack.projected()
    out = await server.cli("diff", str(first), f"default/cmp:{second}", "--output", "json")
    assert out.code == 0, out.err
    data = json.loads(out.out)
    assert (data["from"]["id"], data["to"]["id"]) == (first, second)
    assert [(p["kind"], p["name"]) for p in data["packages"]] == [("added", "six")]
    assert data["specification"]["dependencies_added"] == ["six"]
    previous = json.loads((await server.cli("diff", str(second), "--output", "json")).out)
    assert previous["from"]["id"] == first and previous["counts"] == data["counts"]
    table = await server.cli("diff", str(second), str(first))
    assert table.code == 0 and "removed" in table.out and "six" in table.out
    assert "1 removed" in table.out and "-- six" in table.out
    alone = await server.cli("diff", str(first))
    assert alone.code == 1 and "no earlier completed build" in alone.err


async def test_download_every_artifact_and_uri_forms(server: Server, tmp_path: Path) -> None:
    build_id = await seed_build(server, "default", "dl", ["numpy"])
    other = await seed_build(server, "default", "other", ["six"])
    await server.stack.projected()
    arts = server.state.artifacts
    expect = {
        "lockfile": (f"build-{build_id}.lock", f"seed/{build_id}/lock.yml"),
        "yaml": (f"build-{build_id}.yaml", f"seed/{build_id}/env.yaml"),
        "archive": (f"build-{build_id}.tar.gz", f"seed/{build_id}/a.tar.gz"),
        "logs": (f"build-{build_id}.log", f"seed/{build_id}/log.txt"),
        "sbom": (f"build-{build_id}.cdx.json", f"seed/{build_id}/sbom.cdx.json"),
    }
    workdir = tmp_path / "downloads"
    workdir.mkdir()
    for artifact, (filename, key) in expect.items():
        done = await run_process(
            [
                "bash",
                "-c",
                f'cd "{workdir}" && conda-store download default/dl --artifact {artifact}',
            ],
            server.env(),
            60,
        )
        assert done.code == 0, done.err
        assert done.out == str(workdir / filename)
        assert (workdir / filename).read_bytes() == await arts.get_bytes(key)
    named = tmp_path / "named.yml"
    done = await server.cli(
        "download", f"default/dl:{build_id}", "--artifact", "yaml", "--output-filename", str(named)
    )
    assert done.code == 0 and named.read_text() == "name: dl\n"
    assert (await server.cli("download", str(build_id), "--output-filename", str(named))).code == 0
    mismatch = await server.cli("download", f"default/dl:{other}")
    assert mismatch.code == 1
    assert f"build {other} does not belong to environment default/dl" in mismatch.err
    sbom = json.loads((workdir / f"build-{build_id}.cdx.json").read_text())
    assert [c["name"] for c in sbom["components"]] == ["numpy"]
    old = await seed_build(server, "default", "old", ["six"], sbom=False)
    await server.stack.projected()
    none = await server.cli("download", str(old), "--artifact", "sbom")
    assert none.code == 1 and f"Build {old} doesn't have an SBOM" in none.err, none.err
    missing = await server.cli("download", "default/nope")
    assert missing.code == 1 and "environment does not exist" in missing.err
    logs = await server.cli("logs", "default/dl")
    assert logs.code == 0 and logs.out == f"log of build {build_id}\n"
    waited = await server.cli("wait", "default/dl", "--artifact", "archive", "--interval", "0.2")
    assert waited.code == 0, waited.err
    if shutil.which("script"):  # on a terminal: progress bars render and go away
        out = tmp_path / "tty.tar.gz"
        command = (
            f"conda-store download {build_id} --artifact archive --output-filename {out}"
            f" && conda-store wait {build_id} --interval 0.2"
        )
        tty = await run_process(["script", "-qec", command, "/dev/null"], server.env(), 60)
        assert tty.code == 0, tty.out
        assert out.read_bytes() == await arts.get_bytes(f"seed/{build_id}/a.tar.gz")
        assert str(out) in tty.out and "Error" not in tty.out


# --- tests with the real solver (tiny channel) ---------------------------------------------------


async def _start_solver(server: Server, settings: Settings) -> None:
    from services.solver.resolve import Resolver
    from services.solver.worker import SolverWorker

    resolver = Resolver.from_settings(settings, server.stack.store.pool)
    worker = SolverWorker(resolver, server.state.artifacts, server.stack.store.pool)
    await server.stack.run_workers(worker)


async def test_wait_on_a_failing_spec_exits_1_with_the_reason(
    server: Server, settings: Settings, tiny_channel: ServedChannel, tmp_path: Path
) -> None:
    await _start_solver(server, settings)
    spec = tmp_path / "conflict.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "clash",
                "channels": [tiny_channel.url],
                "dependencies": ["conflict-a", "conflict-b"],
            }
        )
    )
    created = await server.cli(
        "create", str(spec), "--namespace", "default", env=server.admin_env()
    )
    assert created.code == 0, created.err
    build_id = int(created.out.strip())
    waited = await server.cli("wait", "default/clash", "--interval", "0.2", "--timeout", "120")
    assert waited.code == 1
    row = await server.stack.build(build_id)
    assert row is not None and row["status"] == "FAILED" and row["status_info"]
    # one red line with the reason's first line; the solver's explanation follows it
    first_line = waited.err.splitlines()[0]
    assert first_line == f"Error: Build {build_id} failed: {row['status_info'].splitlines()[0]}"
    assert row["status_info"].strip() in waited.err and "conflict-a" in waited.err
    again = await server.cli(
        "create", str(spec), "--wait", "--interval", "0.2", env=server.admin_env()
    )
    assert again.code == 1 and "conflict-a" in again.err
    logs = await server.cli("logs", str(build_id), "--follow")
    assert logs.code == 0 and "conflict-a" in logs.out


async def test_wait_reports_a_canceled_build(server: Server) -> None:
    from shared.events import BuildCanceled

    build_id = await seed_build(server, "default", "stopped", ["numpy"], complete=False)
    await server.stack.store.append(
        f"build-{build_id}",
        [new_event(BuildCanceled(build_id=build_id, reason="canceled by tester"))],
    )
    await server.stack.projected()
    waited = await server.cli("wait", str(build_id), "--interval", "0.2", "--timeout", "5")
    assert waited.code == 1
    assert f"Build {build_id} was canceled: canceled by tester" in waited.err


# --- the whole flow with the realistic channel ---------------------------------------------------


async def _start_packer(server: Server, settings: Settings) -> None:
    from services.packer.worker import PackerWorker

    worker = PackerWorker(settings, server.state.artifacts, server.stack.store.pool)
    await server.stack.run_workers(worker)


@pytest.mark.slow
async def test_create_wait_run_twice_shebang_and_downloads(
    server: Server, settings: Settings, realistic_channel: ServedChannel, tmp_path: Path
) -> None:
    assert realistic_channel.wheels_dir is not None
    settings = settings.model_copy(
        update={"pip_no_index": True, "pip_find_links": str(realistic_channel.wheels_dir)}
    )
    await _start_solver(server, settings)
    await _start_packer(server, settings)
    spec = tmp_path / "environment.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "science",
                "channels": [realistic_channel.url],
                "dependencies": ["python=3.11", "numpy"],
            }
        )
    )
    created = await server.cli(
        "create", str(spec), "--namespace", "default", env=server.admin_env()
    )
    assert created.code == 0, created.err
    build_id = int(created.out.strip())
    follow = asyncio.create_task(server.cli("logs", str(build_id), "--follow"))
    waited = await server.cli("wait", "default/science", "--interval", "0.5", "--timeout", "600")
    assert waited.code == 0, waited.err
    followed = await asyncio.wait_for(follow, 60)  # the live stream ends with the build
    assert followed.code == 0, followed.err
    assert "pinned" in followed.out and "numpy" in followed.out

    code = "import numpy; print(1+3)"
    first = await server.cli("run", "default/science", "--", "python", "-c", code)
    assert first.code == 0, first.err
    assert first.out.strip() == "4"
    assert server.hits(f"/build/{build_id}/archive/") == 1
    cached = server.cache_dir / str(build_id)
    assert (cached / "bin" / "activate").is_file()
    marker = (cached / ".conda-store-ready").stat().st_mtime_ns
    second = await server.cli("run", "default/science", "--", "python", "-c", code)
    assert second.code == 0 and second.out.strip() == "4"
    assert server.hits(f"/build/{build_id}/archive/") == 1  # from the cache: no new download
    assert (cached / ".conda-store-ready").stat().st_mtime_ns == marker
    default_python = await server.cli("run", str(build_id), stdin=b"print(2 * 3)\n")
    assert default_python.code == 0 and default_python.out.strip() == "6"
    fresh = await server.cli("run", "--no-cache", str(build_id), "--", "python", "-c", code)
    assert fresh.code == 0 and fresh.out.strip() == "4"
    assert server.hits(f"/build/{build_id}/archive/") == 2
    assert list(server.scratch_dir.iterdir()) == []  # the throwaway unpack is gone
    failing = await server.cli("run", "--no-cache", str(build_id), "--", "python", "-c", "exit(3)")
    assert failing.code == 3 and list(server.scratch_dir.iterdir()) == []

    script = tmp_path / "hello.py"
    script.write_text(
        "#!/usr/bin/env conda-store\n"
        f"#! conda-store run default/science:{build_id} -- python\n"
        "import sys, numpy\n"
        "print('shebang', numpy.__version__.split('.')[0], sys.argv[1:])\n"
    )
    script.chmod(0o755)
    ran = await run_process([str(script), "x"], server.env(), 120)
    assert ran.code == 0, ran.err
    assert ran.out.startswith("shebang 2 ['x']")

    for artifact, suffix in (
        ("lockfile", "lock"),
        ("yaml", "yaml"),
        ("archive", "tar.gz"),
        ("logs", "log"),
        ("sbom", "cdx.json"),
    ):
        out = tmp_path / f"artifact.{suffix}"
        done = await server.cli(
            "download", "default/science", "--artifact", artifact, "--output-filename", str(out)
        )
        assert done.code == 0, done.err
        assert out.stat().st_size > 0
    assert "numpy" in (tmp_path / "artifact.yaml").read_text()
    assert "numpy" in (tmp_path / "artifact.lock").read_text()
    sbom = (tmp_path / "artifact.cdx.json").read_text()
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(sbom) is None
    assert any(c["name"] == "numpy" for c in json.loads(sbom)["components"])
    shutil.rmtree(server.cache_dir)


async def test_solve_remotely(
    server: Server, settings: Settings, tiny_channel: ServedChannel, tmp_path: Path
) -> None:
    from services.solver.remote import serve
    from services.solver.resolve import Resolver
    from shared.bus.jetstream import connect_nats

    nc = await connect_nats(settings.nats_url, "test-remote-solve")
    stop = asyncio.Event()
    resolver = Resolver.from_settings(settings, server.stack.store.pool)
    serving = asyncio.create_task(serve(nc, resolver, settings, stop))
    try:
        spec = tmp_path / "environment.yaml"
        spec.write_text(
            yaml.safe_dump({"name": "s", "channels": [tiny_channel.url], "dependencies": ["bar"]})
        )
        done = await server.cli("solve", str(spec), "--output", "json", env=server.admin_env())
        assert done.code == 0, done.err
        rows = {r["name"]: r for r in json.loads(done.out)}
        assert rows["bar"]["version"] == "2.0" and rows["libfoo"]["version"] == "1.0"
        assert set(rows["bar"]) == {"name", "version", "build", "channel", "subdir", "manager"}
        table = await server.cli("solve", str(spec), env=server.admin_env())
        assert table.code == 0 and "libfoo" in table.out and "Channel" in table.out
        spec.write_text(
            yaml.safe_dump(
                {
                    "name": "s",
                    "channels": [tiny_channel.url],
                    "dependencies": ["conflict-a", "conflict-b"],
                }
            )
        )
        failed = await server.cli("solve", str(spec), env=server.admin_env())
        assert failed.code == 1 and "conflict-a" in failed.err
    finally:
        stop.set()
        await serving
        await nc.close()

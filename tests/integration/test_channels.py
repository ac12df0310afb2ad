"""The test channels are real: rattler solves them over HTTP, installs them, and they run."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from rattler import RepoDataRecord
from rattler.exceptions import SolverError
from rattler.package import IndexJson, PathsJson

from tests.channels.condapkg import PREFIX_PLACEHOLDER
from tests.channels.envs import install, solve
from tests.channels.realistic import build_realistic_channel
from tests.channels.server import ChannelServer, ServedChannel
from tests.harness.kernels import run_in_kernel


@pytest.fixture(scope="module")
def rattler_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One repodata + package cache for this module (rattler needs an explicit one)."""
    return tmp_path_factory.mktemp("rattler-cache")


def pins(records: list[RepoDataRecord]) -> dict[str, str]:
    return {r.name.normalized: str(r.version) for r in records}


def run_clean(*argv: str | Path) -> str:
    """Run a command with an empty environment (`env -i`): nothing leaks in from the venv."""
    done = subprocess.run(
        ["env", "-i", *map(str, argv)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_tiny_channel_solves_expected_pins_over_http(
    tiny_channel: ServedChannel, rattler_cache: Path
) -> None:
    records = await solve(tiny_channel.url, ["bar"], rattler_cache)
    assert pins(records) == {"bar": "2.0", "libfoo": "1.0"}
    assert all(r.url.startswith(tiny_channel.url + "/linux-64/") for r in records)
    assert any("linux-64/repodata" in p for p in tiny_channel.server.requested)

    records = await solve(tiny_channel.url, ["baz", "conflict-a"], rattler_cache)
    assert pins(records) == {"baz": "1.0", "conflict-a": "1.0", "libfoo": "0.9"}
    libfoo = next(r for r in records if r.name.normalized == "libfoo")
    assert libfoo.url.endswith(".tar.bz2")


async def test_tiny_conflicting_pair_is_explained(
    tiny_channel: ServedChannel, rattler_cache: Path
) -> None:
    with pytest.raises(SolverError) as caught:
        await solve(tiny_channel.url, ["conflict-a", "conflict-b"], rattler_cache)
    message = str(caught.value)
    assert "libfoo" in message
    assert "conflict-a" in message and "conflict-b" in message


async def test_tiny_install_links_entry_point_and_replaces_placeholder(
    tiny_channel: ServedChannel, rattler_cache: Path, tmp_path: Path
) -> None:
    records = await solve(tiny_channel.url, ["hello-cli", "withprefix", "bar"], rattler_cache)
    assert pins(records)["python"] == "3.11.0"
    prefix = tmp_path / "env"
    await install(records, prefix, rattler_cache)

    site = prefix / "lib" / "python3.11" / "site-packages"
    assert (site / "hello_cli" / "__init__.py").is_file()
    assert (prefix / "bin" / "hello").read_text().startswith(f"#!{prefix}/bin/python3.11\n")
    assert run_clean(prefix / "bin" / "hello").startswith("hello from hello-cli 0.1.0")

    assert (prefix / "etc/withprefix/prefix.txt").read_text() == f"installed at {prefix}\n"
    assert run_clean(prefix / "bin" / "withprefix-where").strip() == str(prefix)
    assert (prefix / "lib" / "libfoo-version.txt").read_text() == "1.0\n"
    installed = {json.loads(p.read_text())["name"] for p in (prefix / "conda-meta").glob("*.json")}
    assert installed == {"hello-cli", "withprefix", "bar", "libfoo", "python"}


def test_tiny_archives_carry_complete_metadata(tiny_channel: ServedChannel) -> None:
    archives = sorted(tiny_channel.path.glob("*/*.conda")) + sorted(
        tiny_channel.path.glob("*/*.tar.bz2")
    )
    assert len(archives) == 9
    assert any(a.name.endswith(".tar.bz2") for a in archives)
    assert any(a.name.endswith(".conda") for a in archives)
    for archive in archives:
        index = IndexJson.from_package_archive(archive)
        assert archive.name.startswith(f"{index.name.normalized}-{index.version}-{index.build}")
        assert index.subdir == archive.parent.name
    paths = PathsJson.from_package_archive(
        tiny_channel.path / "linux-64/withprefix-1.0-h0_0.tar.bz2"
    )
    placeholders = {
        e.relative_path.as_posix(): e.prefix_placeholder.placeholder
        for e in paths.paths
        if e.prefix_placeholder is not None
    }
    assert placeholders == {
        "etc/withprefix/prefix.txt": PREFIX_PLACEHOLDER,
        "bin/withprefix-where": PREFIX_PLACEHOLDER,
    }
    hello = IndexJson.from_package_archive(
        tiny_channel.path / "noarch/hello-cli-0.1.0-pyh0_0.conda"
    )
    assert hello.noarch.python


def test_channel_server_serves_and_releases_port(tmp_path: Path) -> None:
    (tmp_path / "noarch").mkdir()
    (tmp_path / "noarch" / "repodata.json").write_text('{"packages": {}}')
    server = ChannelServer(tmp_path)
    url = server.start()
    with urllib.request.urlopen(f"{url}/noarch/repodata.json", timeout=5) as response:
        assert json.load(response) == {"packages": {}}
        etag, last_modified = response.headers["ETag"], response.headers["Last-Modified"]
    assert etag and last_modified
    # Conditional requests get a 304 that repeats the validators (rattler needs them).
    for header, value in (("If-None-Match", etag), ("If-Modified-Since", last_modified)):
        request = urllib.request.Request(f"{url}/noarch/repodata.json", headers={header: value})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5)
        assert caught.value.code == 304
        assert caught.value.headers["ETag"] == etag
        assert caught.value.headers["Last-Modified"] == last_modified
    server.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/noarch/repodata.json", timeout=5)


async def test_channel_server_takes_a_burst_of_connections(tmp_path: Path) -> None:
    # rattler fetches a large channel's repodata shards over ~100 connections at once; a
    # listen backlog of 5 dropped their SYNs and the solve died on "Connection timed out".
    burst = 100
    for i in range(burst):
        (tmp_path / f"shard{i}").write_bytes(b"x" * 1000)

    async def fetch(port: int, i: int) -> bytes:
        # below the kernel's first SYN retransmission (1 s): a dropped SYN fails the connect
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 0.9)
        writer.write(f"GET /shard{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        body = await asyncio.wait_for(reader.read(), 30)
        writer.close()
        return body

    with ChannelServer(tmp_path) as server:
        port = int(server.url.rsplit(":", 1)[1])
        answers = await asyncio.gather(
            *(fetch(port, i) for i in range(burst)), return_exceptions=True
        )
    failed = [a for a in answers if not isinstance(a, bytes)]
    assert not failed, f"{len(failed)} of {burst} connections failed: {failed[:3]}"
    assert all(a.startswith(b"HTTP/1.0 200") and a.endswith(b"x" * 1000) for a in answers)


@pytest.mark.slow
async def test_realistic_channel_runs_numpy_and_requests(
    realistic_channel: ServedChannel, rattler_cache: Path, tmp_path: Path
) -> None:
    records = await solve(realistic_channel.url, ["python", "numpy", "requests"], rattler_cache)
    got = pins(records)
    assert got["python"].startswith("3.11.")
    assert got["numpy"] == "2.4.6" and got["requests"] == "2.34.2"
    assert {"python_abi", "urllib3", "idna", "certifi", "charset-normalizer"} <= got.keys()
    subdirs = {r.name.normalized: r.subdir for r in records}
    assert subdirs["numpy"] == "linux-64" and subdirs["requests"] == "noarch"

    prefix = tmp_path / "env"
    await install(records, prefix, rattler_cache)
    code = (
        "import numpy, requests, sysconfig; "
        "print(numpy.__version__, int(numpy.arange(4).sum()), sysconfig.get_config_var('prefix'))"
    )
    assert run_clean(prefix / "bin" / "python", "-c", code).split() == ["2.4.6", "6", str(prefix)]

    wheels = sorted(p.name for p in realistic_channel.wheels_dir.glob("*.whl"))
    assert [w.split("-")[0] for w in wheels] == ["packaging", "requests_toolbelt", "tomli"]
    names_in_channel = set()
    for subdir in ("linux-64", "noarch"):
        repodata = json.loads((realistic_channel.path / subdir / "repodata.json").read_text())
        for group in ("packages", "packages.conda"):
            names_in_channel |= {r["name"] for r in repodata.get(group, {}).values()}
    assert names_in_channel.isdisjoint({"packaging", "tomli", "requests-toolbelt"})


@pytest.mark.slow
def test_realistic_channel_second_build_comes_from_cache(
    realistic_channel: ServedChannel, tmp_path: Path
) -> None:
    started = time.monotonic()
    channel = build_realistic_channel(tmp_path / "channel")
    elapsed = time.monotonic() - started
    assert elapsed < 3.0, f"cached build took {elapsed:.2f} s"
    expected = sorted(p.name for p in realistic_channel.path.glob("*/*.conda"))
    assert sorted(p.name for p in channel.glob("*/*.conda")) == expected


@pytest.mark.slow
async def test_jupyter_channel_environment_runs_as_a_kernel(
    jupyter_channel: ServedChannel, rattler_cache: Path, tmp_path: Path
) -> None:
    records = await solve(jupyter_channel.url, ["python", "ipykernel", "numpy"], rattler_cache)
    got = pins(records)
    assert got["numpy"] == "2.4.6"
    assert {"jupyter-client", "jupyter-core", "traitlets", "tornado", "pyzmq", "ipython"} <= set(
        got
    )
    prefix = tmp_path / "env"
    await install(records, prefix, rattler_cache)

    code = "import numpy, sys; print(numpy.__version__, sys.prefix)"
    output = await run_in_kernel(prefix, code, tmp_path / "kernel")
    assert output.split() == ["2.4.6", str(prefix)]

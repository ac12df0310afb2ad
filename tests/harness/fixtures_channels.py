"""Session fixtures serving the test conda channels over HTTP on free ports of 127.0.0.1.

`tiny_channel` is rebuilt per session (well under a second); `realistic_channel` and
`jupyter_channel` come from a cache shared between runs (the first build on a machine needs
PyPI and takes up to a minute or so); tests that use them should be marked `slow`. All yield
a `ServedChannel` with `.path` and `.url` (no trailing slash; use it as a channel URL), and for
the realistic one `.wheels_dir`.

`large_channel` (~160 packages, 1.2 GB installed; minutes to build the first time) is for
benchmarks only: tests marked `large` run only when `CONDA_STORE_TEST_LARGE=1` is set, and the
fixture refuses tests without the marker, so the default run never builds it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.channels.jupyter import build_jupyter_channel
from tests.channels.large import build_large_channel
from tests.channels.realistic import build_realistic_channel, wheels_dir_for
from tests.channels.server import ChannelServer, ServedChannel
from tests.channels.tiny import build_tiny_channel

LARGE_OPT_IN = "CONDA_STORE_TEST_LARGE"


def _large_opted_in() -> bool:
    return os.environ.get(LARGE_OPT_IN) == "1"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("large") is not None and not _large_opted_in():
        pytest.skip(f"large channel benchmark test: opt in with {LARGE_OPT_IN}=1")


def _served(path: Path, wheels_dir: Path | None = None) -> Iterator[ServedChannel]:
    with ChannelServer(path) as server:
        yield ServedChannel(path=path, url=server.url, server=server, wheels_dir=wheels_dir)


@pytest.fixture(scope="session")
def tiny_channel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedChannel]:
    """The tiny channel (see `tests.channels.tiny`), built once per session and served."""
    yield from _served(build_tiny_channel(tmp_path_factory.mktemp("tiny-channel") / "channel"))


@pytest.fixture(scope="session")
def realistic_channel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedChannel]:
    """The realistic channel (see `tests.channels.realistic`): cached build, served over HTTP."""
    path = build_realistic_channel(tmp_path_factory.mktemp("realistic-channel") / "channel")
    yield from _served(path, wheels_dir_for(path))


@pytest.fixture(scope="session")
def jupyter_channel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedChannel]:
    """The jupyter channel (see `tests.channels.jupyter`): cached build, served over HTTP."""
    yield from _served(build_jupyter_channel(tmp_path_factory.mktemp("jupyter") / "channel"))


@pytest.fixture(scope="session")
def large_channel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedChannel]:
    """The large channel (see `tests.channels.large`), for tests marked `large` only."""
    if not _large_opted_in():
        raise pytest.UsageError(
            f"large_channel is for tests marked `large` (they run with {LARGE_OPT_IN}=1)"
        )
    yield from _served(build_large_channel(tmp_path_factory.mktemp("large") / "channel"))

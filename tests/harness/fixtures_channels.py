"""Session fixtures serving the test conda channels over HTTP on free ports of 127.0.0.1.

`tiny_channel` is rebuilt per session (well under a second); `realistic_channel` comes from a
cache shared between runs (the first build on a machine needs PyPI and takes up to a minute or
so); tests that use it should be marked `slow`. Both yield a `ServedChannel` with `.path` and
`.url` (no trailing slash; use it as a channel URL), and for the realistic one `.wheels_dir`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.channels.realistic import build_realistic_channel, wheels_dir_for
from tests.channels.server import ChannelServer, ServedChannel
from tests.channels.tiny import build_tiny_channel


@pytest.fixture(scope="session")
def tiny_channel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedChannel]:
    """The tiny channel (see `tests.channels.tiny`), built once per session and served."""
    path = build_tiny_channel(tmp_path_factory.mktemp("tiny-channel") / "channel")
    with ChannelServer(path) as server:
        yield ServedChannel(path=path, url=server.url, server=server)


@pytest.fixture(scope="session")
def realistic_channel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedChannel]:
    """The realistic channel (see `tests.channels.realistic`): cached build, served over HTTP."""
    path = build_realistic_channel(tmp_path_factory.mktemp("realistic-channel") / "channel")
    with ChannelServer(path) as server:
        yield ServedChannel(
            path=path, url=server.url, server=server, wheels_dir=wheels_dir_for(path)
        )

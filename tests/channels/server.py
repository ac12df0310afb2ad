"""A throwaway static HTTP server for a channel directory, on a free port of 127.0.0.1.

Solvers and installers fetch channels over HTTP in production, so the tests do too (with
conditional requests and all), instead of using `file://` URLs that skip that code path.
"""

from __future__ import annotations

import email.utils
import functools
import http
import http.server
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any


class _ChannelHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with validators like a real web server; quiet; remembers request paths.

    The stdlib handler answers `If-Modified-Since` with a bare 304 (no `ETag`, no
    `Last-Modified`), which rattler rejects for sharded repodata (conda/rattler#2719) while
    nginx or S3 send both. Here every file response carries an `ETag` and `Last-Modified`,
    and conditional requests (`If-None-Match` first, else `If-Modified-Since`) get a 304 with
    both validators.
    """

    requested: list[str]
    _etag: str | None = None

    def send_head(self) -> Any:
        self._etag = None
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            return super().send_head()
        st = path.stat()
        etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
        if_none_match = self.headers.get("If-None-Match")
        if_modified_since = self.headers.get("If-Modified-Since")
        if if_none_match is not None:
            fresh = etag in (tag.strip() for tag in if_none_match.split(","))
        elif if_modified_since is not None:
            try:
                since = email.utils.parsedate_to_datetime(if_modified_since).timestamp()
            except (TypeError, ValueError):
                since = -1.0
            fresh = int(st.st_mtime) <= since
        else:
            fresh = False
        if fresh:
            self.send_response(http.HTTPStatus.NOT_MODIFIED)
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", self.date_time_string(int(st.st_mtime)))
            self.end_headers()
            return None
        self._etag = etag
        return super().send_head()

    def end_headers(self) -> None:
        if self._etag is not None:
            self.send_header("ETag", self._etag)
            self._etag = None
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # stdlib signature
        self.requested.append(self.path)


class _ChannelHTTPServer(http.server.ThreadingHTTPServer):
    """A listen backlog for bursts: rattler fetches a large channel's repodata shards over
    ~100 connections at once, and the stdlib default of 5 drops their SYNs (the client sees
    "Connection timed out" once retransmissions give up)."""

    request_queue_size = 1024
    daemon_threads = True


class ChannelServer:
    """Serve `directory` at `http://127.0.0.1:<port>/` from a daemon thread.

    `start()` binds port 0 so the OS picks a free port (no races between parallel sessions);
    `stop()` shuts the server down and closes the socket. Usable as a context manager.
    `requested` lists the paths clients asked for, for tests about caching.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.requested: list[str] = []
        self._httpd: _ChannelHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. `http://127.0.0.1:41234`."""
        if self._httpd is None:
            raise RuntimeError("server not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> str:
        """Bind a free port, start serving and return the base URL."""
        if self._httpd is not None:
            return self.url
        handler = type("Handler", (_ChannelHandler,), {"requested": self.requested})
        factory = functools.partial(handler, directory=str(self.directory))
        httpd = _ChannelHTTPServer(("127.0.0.1", 0), factory)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() waits at most this long
            name=f"channel-server-{self.directory.name}",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> ChannelServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass(frozen=True)
class ServedChannel:
    """A channel on disk and the URL it is served at (what the channel fixtures yield).

    `wheels_dir` is a flat directory of wheels that are *not* in the channel (for pip-section
    tests, e.g. `uv pip compile --no-index --find-links <wheels_dir>`); None for the tiny one.
    """

    path: Path
    url: str
    server: ChannelServer
    wheels_dir: Path | None = None

"""A webhook receiver for tests and benchmarks: a real HTTP server on a free port, in a thread,
whose behaviour is switched while it runs: accept (204), fail (500) or stall (answer only
after the sender's timeout, or when released)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

Mode = Literal["ok", "fail", "stall"]


@dataclass
class Received:
    at: float
    """``time.time()`` when the body was read."""
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    mode: Mode = "ok"
    stall_s: float = 30.0
    accepted: list[Received] = field(default_factory=list)
    """Requests answered 2xx at once, in arrival order: what the sender saw delivered."""
    attempts: int = 0
    _release: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                got = Received(time.time(), dict(self.headers.items()), body)
                receiver.attempts += 1
                mode = receiver.mode
                if mode == "stall":
                    receiver._release.wait(receiver.stall_s)
                code = 500 if mode == "fail" else 204
                if mode == "ok":
                    receiver.accepted.append(got)
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

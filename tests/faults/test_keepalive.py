"""Keep-alive: a client that reuses an idle connection must never find it closed under it.

uvicorn closes idle connections after 5 s by default, the same idle timeout many clients and
proxies use, so a client that reuses a connection after ~5 s races the server's close and sees
a reset (5 in 2 minutes of load). Every HTTP server of the stack (API, ui, registry) must keep
idle connections well beyond common client timeouts (``CONDA_STORE_HTTP_KEEP_ALIVE_S``, 75 s).
"""

from __future__ import annotations

import http.client
import time
from concurrent.futures import ThreadPoolExecutor

from tests.harness.embedded_stack import EmbeddedStack

IDLE_S = (5.2, 6.0, 8.0)  # past uvicorn's default 5 s, well under 75 s
PATHS = {"api": "/api/v1/", "ui": "/health", "registry": "/health"}


def reuse_after_idle(port: int, path: str, idle: float) -> str | None:
    """One request, ``idle`` seconds of silence, a second request on the same connection.
    Returns the error the second request met, or None."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        first = connection.getresponse()
        first.read()
        if first.status != 200 or first.will_close:
            return f"first request: {first.status}, will_close={first.will_close}"
        time.sleep(idle)
        try:
            connection.request("GET", path)
            second = connection.getresponse()
            second.read()
        except (ConnectionError, http.client.HTTPException, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return None if second.status == 200 else f"second request: {second.status}"
    finally:
        connection.close()


def test_idle_connections_are_reusable_after_five_seconds(embedded_stack: EmbeddedStack) -> None:
    ports = {
        "api": embedded_stack.api_port,
        "ui": embedded_stack.ui_port,
        "registry": embedded_stack.registry_port,
    }
    jobs = [(service, idle) for service in ports for idle in IDLE_S]
    with ThreadPoolExecutor(len(jobs)) as pool:
        outcomes = list(
            pool.map(lambda job: reuse_after_idle(ports[job[0]], PATHS[job[0]], job[1]), jobs)
        )
    failures = [
        f"{service} after {idle}s idle: {error}"
        for (service, idle), error in zip(jobs, outcomes, strict=True)
        if error is not None
    ]
    assert not failures, "\n".join(failures)

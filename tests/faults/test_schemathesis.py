"""schemathesis over the API's own ``/openapi.json``, against the real stack (``conda-store-server
up``: Postgres, NATS, every service), as an anonymous caller and as an admin: not one answer
may be a 5xx, and no request may end in a connection error.

The run is bounded (``MAX_EXAMPLES`` per operation and phase) and derandomized
(``--generation-deterministic``), so CI sees the same cases each time. Path parameters are drawn
half the time from what the stack really holds (a namespace, an environment, a completed
build), so the fuzzer reaches past the 404s into real rows.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.embedded_stack import EmbeddedStack

MAX_EXAMPLES = 20
CONFIG = """
[dictionaries.namespaces]
values = ["fuzz", "default"]
[dictionaries.environments]
values = ["target"]
[dictionaries.builds]
values = [{build_id}]

[parameters]
"path.namespace" = {{ dictionary = "namespaces", probability = 0.5 }}
"path.name" = {{ dictionary = "environments", probability = 0.5 }}
"path.environment" = {{ dictionary = "environments", probability = 0.5 }}
"path.build_id" = {{ dictionary = "builds", probability = 0.5 }}
"query.environment_id" = {{ dictionary = "builds", probability = 0.5 }}
"""


@pytest.fixture(scope="module")
def fuzzed_stack(tiny_channel: Any) -> Iterator[tuple[EmbeddedStack, str, int]]:
    """A stack of its own (the fuzzer creates, deletes and builds), with one real build."""
    with EmbeddedStack.start() as stack:
        token = stack.login_token("admin")
        spec = f"name: target\nchannels: [{tiny_channel.url}]\ndependencies: [libfoo]\n"
        build = stack.build({"Authorization": f"Bearer {token}"}, "fuzz", spec)
        assert build["status"] == "COMPLETED", build
        yield stack, token, build["id"]


def run_schemathesis(
    stack: EmbeddedStack, build_id: int, headers: list[str], out: Path
) -> dict[str, Any]:
    config = out / "schemathesis.toml"
    config.write_text(CONFIG.format(build_id=build_id))
    report = out / "report.json"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{stack.api_url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--generation-deterministic",
        "--continue-on-failure",
        "--workers",
        "2",
        "--request-timeout",
        "60",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    for header in headers:
        command += ["--header", header]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=out)
    assert report.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(report.read_text())
    result["output"] = done.stdout
    return result


@pytest.mark.parametrize("caller", ["anonymous", "admin"])
def test_no_5xx_and_no_connection_error_over_the_openapi_schema(
    fuzzed_stack: tuple[EmbeddedStack, str, int], caller: str, tmp_path: Path
) -> None:
    stack, token, build_id = fuzzed_stack
    headers = [f"Authorization: Bearer {token}"] if caller == "admin" else []
    result = run_schemathesis(stack, build_id, headers, tmp_path)
    cases = result["test_cases"]
    print(
        f"schemathesis ({caller}): {cases['generated']} cases over "
        f"{result['operations']['tested']} operations in {result['running_time']:.1f}s"
    )
    summary = result["output"][-12000:]
    assert result["operations"]["tested"] >= 50, summary
    assert cases["generated"] >= 1000, summary
    assert not result["failures"], summary  # ST101: a response >= 500
    assert not result["errors"] and not cases["errored"], summary  # connection errors, timeouts
    assert result["exit_code"] == 0 and result["complete"], summary

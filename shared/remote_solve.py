"""The remote-solve contract: a NATS request/reply on ``<subject_prefix>.solve``.

The solver service answers it; the API (``GET /api/v1/specification/``) and benchmarks ask.
Request JSON: ``{"channels", "conda", "pip", "platforms", "use_cache"}``; reply:
``{"status": "ok", "cache_hit", "platform", "packages": [PackageRef...], "other_platforms"}``
or ``{"status": "error", "message"}``.
"""

from __future__ import annotations

import json
from typing import Any

from nats.aio.client import Client
from pydantic import BaseModel

from shared.settings import Settings


def solve_subject(subject_prefix: str) -> str:
    return f"{subject_prefix}.solve"


async def request_solve(
    nc: Client, settings: Settings, request: BaseModel | dict[str, Any], timeout: float = 60.0
) -> dict[str, Any]:
    """Ask any solver replica; returns the reply document."""
    body = (
        request.model_dump_json().encode()
        if isinstance(request, BaseModel)
        else json.dumps(request).encode()
    )
    msg = await nc.request(solve_subject(settings.subject_prefix), body, timeout=timeout)
    return json.loads(msg.data)

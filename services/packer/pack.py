"""conda-pack archives and prefix sizes.

Packing runs in a child process (``python -m services.packer.pack``) rather than a thread: it
is CPU- and GIL-heavy for seconds, which would starve the event loop (heartbeats, live logs,
other builds), and a child can be killed when a build is cancelled, where a thread cannot.
The archive is conda-pack's, assembled from per-package members (``segments``): gzip runs on
``n_threads`` threads and a package compressed for one build is reused by the next.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
from pathlib import Path

from shared.aio import communicate_or_kill

from .segments import PackStats, pack_segmented


def pack_threads() -> int:
    return max(1, os.cpu_count() or 1)


def segment_cache_dir(cache_root: Path) -> Path:
    """Compressed package members, beside the package cache they are made from."""
    return cache_root / "pack-segments"


async def pack_prefix(
    prefix: Path, output: Path, segments: Path, n_threads: int | None = None
) -> PackStats:
    """Write the archive to ``output`` (a temporary path; the caller uploads it).

    conda-pack's own message is raised as RuntimeError on failure; cancellation kills the
    child and waits for it, so the caller may delete the prefix right after.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.packer.pack",
        str(prefix),
        str(output),
        str(segments),
        str(n_threads or pack_threads()),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await communicate_or_kill(proc)
    if proc.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        raise RuntimeError("conda-pack failed: " + ("\n".join(lines[-15:]) or "no output"))
    return PackStats(**json.loads(out.decode().strip().splitlines()[-1]))


if __name__ == "__main__":
    prefix, output, segments, threads = sys.argv[1:5]
    stats = pack_segmented(Path(prefix), Path(output), Path(segments), int(threads))
    print(json.dumps(dataclasses.asdict(stats)))

"""The tiny channel plus numbered packages, for batches of builds that must all really build.

A packer reuses the archive of an identical package set, so a batch of environments that all
asked for the tiny channel's few packages would mostly skip installing and packing. Here
environment *i* asks for `batch-<i>` (noarch, depending on `libfoo >=1.0`), so every one of them
has a package set of its own.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tests.channels.condapkg import PackageMeta, build_package, index_channel, write_file
from tests.channels.tiny import build_tiny_channel


def batch_package(i: int) -> str:
    return f"batch-{i}"


def build_batch_channel(root: Path, count: int) -> Path:
    """Build the tiny channel in `root` with `batch-0` … `batch-<count-1>` added; return `root`."""
    build_tiny_channel(root)
    with tempfile.TemporaryDirectory(prefix="batch-stage-") as tmp:
        for i in range(count):
            staging = Path(tmp) / str(i)
            write_file(staging, f"share/batch/{i}.txt", f"batch package {i}\n")
            meta = PackageMeta(
                batch_package(i),
                "1.0",
                "0",
                subdir="noarch",
                noarch="generic",
                depends=["libfoo >=1.0"],
            )
            build_package(meta, staging, root, ".conda")
            shutil.rmtree(staging)
    index_channel(root)
    return root

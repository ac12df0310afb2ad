"""File operations: copying contents inside the kernel, and atomic small writes.

Archives and blobs are tens to hundreds of megabytes; passing them through Python buffers cost
a measurable share of a build's CPU. ``copy_file_range`` (or ``sendfile``) moves the bytes
without copying them into user space, and may share extents on filesystems that support it.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO

_CHUNK = 1 << 30
_KERNEL_REFUSED = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF}


def copy_into(src: BinaryIO, out: BinaryIO) -> None:
    """Append the rest of ``src`` (from its position) to ``out`` (at its position).

    Objects that are not plain files (sockets, HTTP bodies, BytesIO) are copied through a
    buffer.
    """
    try:
        in_fd, out_fd = src.fileno(), out.fileno()
        start = src.tell()  # a reader's read-ahead puts its fd further on: copy by offset
    except (AttributeError, OSError, io.UnsupportedOperation):
        shutil.copyfileobj(src, out, 1 << 20)
        return
    out.flush()
    copied = _kernel_copy(in_fd, out_fd, start)
    if copied is None:
        shutil.copyfileobj(src, out, 1 << 20)
    else:
        src.seek(start + copied)


def _kernel_copy(in_fd: int, out_fd: int, offset: int) -> int | None:
    """Bytes copied from ``offset`` to the end, or None when the kernel refuses these files
    (before copying anything)."""
    for call in (_copy_file_range, _sendfile):
        done = 0
        try:
            while n := call(in_fd, out_fd, offset + done):
                done += n
            return done
        except OSError as exc:
            if exc.errno not in _KERNEL_REFUSED or done:
                raise
    return None


def _copy_file_range(in_fd: int, out_fd: int, offset: int) -> int:
    return os.copy_file_range(in_fd, out_fd, _CHUNK, offset)


def _sendfile(in_fd: int, out_fd: int, offset: int) -> int:
    return os.sendfile(out_fd, in_fd, offset, _CHUNK)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``path`` so readers see the old content or the new one, never a part (a temp
    file in the same directory, then ``rename``); creates the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()

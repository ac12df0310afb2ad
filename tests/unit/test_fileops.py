"""copy_into: kernel copies land at the right offsets; non-files fall back to a buffer."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import pytest

from shared import fileops
from shared.fileops import copy_into, write_text_atomic


def _cross_device(*args: object) -> int:
    raise OSError(errno.EXDEV, "cross-device copy refused")


@pytest.mark.parametrize("kernel_call", ["copy_file_range", "sendfile"])
def test_copies_the_rest_of_a_partly_read_file_after_what_was_written(
    tmp_path: Path, kernel_call: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if kernel_call == "sendfile":  # as on filesystems where copy_file_range cannot work
        monkeypatch.setattr(fileops, "_copy_file_range", _cross_device)
    data = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "src").write_bytes(data)
    with open(tmp_path / "src", "rb") as src, open(tmp_path / "out", "wb") as out:
        src.read(100)  # the reader has buffered far more than it returned
        out.write(b"head")  # still in the writer's buffer
        copy_into(src, out)
        out.write(b"tail")
        assert src.read() == b""
    assert (tmp_path / "out").read_bytes() == b"head" + data[100:] + b"tail"


def test_streams_that_are_not_files_are_copied_through_a_buffer(tmp_path: Path) -> None:
    data = os.urandom(2 * 1024 * 1024)
    with open(tmp_path / "out", "wb") as out:
        copy_into(io.BytesIO(data), out)
    assert (tmp_path / "out").read_bytes() == data
    target = io.BytesIO()
    with open(tmp_path / "out", "rb") as src:
        copy_into(src, target)
    assert target.getvalue() == data


def test_write_text_atomic_replaces_whole_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "new" / "dir" / "doc.json"
    write_text_atomic(target, "first")
    write_text_atomic(target, "second")
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["doc.json"]

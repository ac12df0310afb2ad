"""The one gzip writer: standard gzip any reader takes, the same bytes for the same input."""

from __future__ import annotations

import gzip
import io
import os

from shared.gzip_stream import gzip_writer


def _compressed(data: bytes) -> bytes:
    out = io.BytesIO()
    with gzip_writer(out) as gz:
        gz.write(data)
    assert not out.closed  # the caller's file stays open (a layer hashes past the end)
    return out.getvalue()


def test_output_is_plain_gzip_and_depends_on_the_input_only() -> None:
    data = os.urandom(4096) + b"conda " * 100_000
    first = _compressed(data)
    assert gzip.decompress(first) == data
    assert _compressed(data) == first  # no name, no time in the header
    assert first[4:8] == bytes(4)  # MTIME field is zero
    assert len(first) < len(data) // 10

"""The layer writer's tar is Python's ``tarfile`` PAX output byte for byte, whatever the
entries (long and non-ASCII names, symlinks, empty and multi-chunk files, explicit data), and
its gzip and digests are reproducible."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from services.registry import layers
from services.registry.layers import CHUNK, Entry, with_parents, write_layer


def tarfile_bytes(entries: list[Entry]) -> bytes:
    """What ``tarfile`` writes for the same entries: the reference the writer must match."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for entry in with_parents(entries):
            info, stream = layers._tarinfo(entry)
            tar.addfile(info, stream)
            if stream is not None:
                stream.close()
    return out.getvalue()


@pytest.fixture
def entries(tmp_path: Path) -> list[Entry]:
    src = tmp_path / "src"
    src.mkdir()
    big = src / "big.bin"
    big.write_bytes(os.urandom(CHUNK) * 2 + os.urandom(777))  # spans three pieces
    (src / "empty").write_bytes(b"")
    (src / "exact").write_bytes(b"x" * 512)
    deep = src / ("d" * 120)
    deep.mkdir()
    long_name = deep / ("f" * 150 + ".py")
    long_name.write_text("print('long')\n")
    (src / "naïve-ünïcode.txt").write_text("é\n")
    os.symlink("big.bin", src / "link")
    os.symlink("t" * 200, src / "long-link")
    os.link(big, src / "hard")
    (src / "script").write_text("#!/bin/sh\n")
    (src / "script").chmod(0o755)
    prefix = "opt/conda/"
    listed = [
        Entry(prefix + p.relative_to(src).as_posix(), p)
        for p in sorted(src.rglob("*"))
        if not p.is_dir() or p.is_symlink()
    ]
    return [
        *listed,
        Entry(prefix + "etc/made", data=b"made here\n", mode=0o600),
        Entry(prefix + "etc/link-to-made", symlink="made"),
        Entry(prefix + "var/empty-dir"),
    ]


def test_the_tar_is_tarfile_pax_output_byte_for_byte(entries: list[Entry], tmp_path: Path) -> None:
    blob = write_layer(entries, tmp_path / "layer.tar.gz")
    plain = gzip.decompress(blob.path.read_bytes())
    assert plain == tarfile_bytes(entries)
    assert blob.diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()
    assert blob.digest == "sha256:" + hashlib.sha256(blob.path.read_bytes()).hexdigest()
    assert blob.size == blob.path.stat().st_size
    with tarfile.open(blob.path) as tar:
        names = tar.getnames()
        assert any(n.endswith("f" * 150 + ".py") for n in names)
        assert "opt/conda/naïve-ünïcode.txt" in names
        big = tar.extractfile("opt/conda/big.bin")
        assert big is not None and len(big.read()) == 2 * CHUNK + 777
        assert tar.getmember("opt/conda/long-link").linkname == "t" * 200
        assert tar.getmember("opt/conda/hard").isfile()  # hard links written as plain files


def test_the_same_entries_give_the_same_bytes(entries: list[Entry], tmp_path: Path) -> None:
    first = write_layer(entries, tmp_path / "a.tar.gz")
    second = write_layer(list(reversed(entries)), tmp_path / "b.tar.gz")
    assert (first.digest, first.diff_id, first.size) == (second.digest, second.diff_id, second.size)
    assert first.path.read_bytes() == second.path.read_bytes()


def test_a_file_that_shrank_while_written_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tarfile's rule: a member shorter than its header says is refused, never padded."""
    source = tmp_path / "f"
    source.write_bytes(b"y" * 4096)
    entry = Entry("opt/conda/f", source)
    info, stream = layers._tarinfo(entry)  # its size read now
    assert stream is not None
    stream.close()
    source.write_bytes(b"y" * 10)  # then it shrinks before its bytes are copied
    monkeypatch.setattr(layers, "_tarinfo", lambda e: (info, open(source, "rb")))
    with pytest.raises(OSError, match="changed size"):
        write_layer([entry], tmp_path / "out.tar.gz")

"""pip's console scripts in an image staging prefix are pointed at the image prefix."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
from pathlib import Path

from services.registry.retarget import retarget_pip_scripts, retarget_script

BODY = b"import sys\nfrom tool import main\nsys.exit(main())\n"


def test_plain_shebang_is_moved_to_the_image_prefix() -> None:
    script = b"#!/stage/prefix/bin/python3.11\n" + BODY
    assert retarget_script(script, b"/stage/prefix", b"/opt/conda") == (
        b"#!/opt/conda/bin/python3.11\n" + BODY
    )


def test_long_path_trampoline_becomes_a_plain_shebang() -> None:
    for quote in (b'"', b"'"):
        exe = b"/very/long/stage/prefix/bin/python"
        script = b"#!/bin/sh\n'''exec' " + quote + exe + quote + b' "$0" "$@"\n' + b"' '''\n" + BODY
        assert retarget_script(script, b"/very/long/stage/prefix", b"/opt/conda") == (
            b"#!/opt/conda/bin/python\n" + BODY
        )


def test_scripts_of_other_interpreters_are_left_alone() -> None:
    assert retarget_script(b"#!/opt/conda/bin/python\n" + BODY, b"/stage", b"/opt/c") is None
    assert retarget_script(b"#!/stage-other/bin/python\n" + BODY, b"/stage", b"/opt/c") is None
    assert retarget_script(b"#!/bin/sh\necho hi\n", b"/stage", b"/opt/c") is None


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def test_prefix_scripts_and_their_record_rows_are_rewritten(tmp_path: Path) -> None:
    staging = tmp_path / "prefix"
    bin_dir = staging / "bin"
    bin_dir.mkdir(parents=True)
    pip_script = f"#!{staging}/bin/python\n".encode() + BODY
    (bin_dir / "tool").write_bytes(pip_script)
    (bin_dir / "tool").chmod(0o755)
    conda_script = b"#!/opt/conda/bin/python\n" + BODY
    (bin_dir / "from-conda").write_bytes(conda_script)
    (bin_dir / "python").symlink_to("python3.11")
    (bin_dir / "python3.11").write_bytes(b"\x7fELF binary")
    dist = staging / "lib/python3.11/site-packages/tool-1.0.dist-info"
    dist.mkdir(parents=True)
    rows = [
        ["../../../bin/tool", _record_hash(pip_script), str(len(pip_script))],
        ["tool.py", _record_hash(b"x"), "1"],
        ["tool-1.0.dist-info/RECORD", "", ""],
    ]
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    (dist / "RECORD").write_bytes(out.getvalue().encode())

    assert retarget_pip_scripts(staging, "/opt/conda") == ["tool"]

    expected = b"#!/opt/conda/bin/python\n" + BODY
    assert (bin_dir / "tool").read_bytes() == expected
    assert (bin_dir / "tool").stat().st_mode & 0o777 == 0o755
    assert (bin_dir / "from-conda").read_bytes() == conda_script
    record = (dist / "RECORD").read_bytes()
    assert b"\r\n" in record
    got = list(csv.reader(io.StringIO(record.decode())))
    assert got[0] == ["../../../bin/tool", _record_hash(expected), str(len(expected))]
    assert got[1:] == rows[1:]

"""Point pip's scripts at the image prefix after pip installed into the staging prefix.

rattler patches conda packages for the image prefix, but pip writes the interpreter it ran
as, i.e. the staging path, into every console script: as a ``#!`` line, or (when that path
is long) as a ``/bin/sh`` trampoline. Both become ``#!<image prefix>/bin/python…``, and the
scripts' sha256 and size in their ``RECORD`` are updated so ``pip uninstall``/``pip check``
inside the image still agree with the files. The result no longer depends on where the
staging directory was, so the same lockfile keeps giving the same image digest.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import re
from pathlib import Path

_SHEBANG = re.compile(rb"#!(?P<exe>[^\s'\"]+)[ \t]*\n")
_TRAMPOLINE = re.compile(
    rb"#!/bin/sh\n'''exec' (?P<q>[\"'])(?P<exe>.+?)(?P=q) \"\$0\" \"\$@\"\n' '''\n"
)


def retarget_script(data: bytes, staging: bytes, image_prefix: bytes) -> bytes | None:
    """The script with its interpreter moved from ``staging`` to ``image_prefix``, or None
    when it does not run an interpreter from ``staging``."""
    for pattern in (_TRAMPOLINE, _SHEBANG):
        found = pattern.match(data)
        if found and found["exe"].startswith(staging + b"/"):
            exe = image_prefix + found["exe"][len(staging) :]
            return b"#!" + exe + b"\n" + data[found.end() :]
    return None


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def _update_record(record: Path, changed: dict[Path, bytes]) -> None:
    text = record.read_bytes().decode()  # keeps pip's \r\n line ends
    rows = list(csv.reader(io.StringIO(text)))
    touched = False
    for row in rows:
        if not row:
            continue
        target = Path(os.path.normpath(record.parent.parent / row[0]))
        if target in changed:
            data = changed[target]
            row[1:3] = [_record_hash(data), str(len(data))]
            touched = True
    if touched:
        out = io.StringIO()
        newline = "\r\n" if "\r\n" in text else "\n"
        csv.writer(out, lineterminator=newline).writerows(rows)
        record.write_bytes(out.getvalue().encode())


def retarget_pip_scripts(staging: Path, image_prefix: str) -> list[str]:
    """Rewrite the scripts in ``staging/bin`` that run the staging interpreter, and their
    RECORD rows; returns the rewritten scripts' names."""
    staging = staging.absolute()  # the form the interpreter reports as sys.executable
    bin_dir = staging / "bin"
    old, new = str(staging).encode(), image_prefix.encode()
    changed: dict[Path, bytes] = {}
    for path in sorted(bin_dir.iterdir()) if bin_dir.is_dir() else []:
        if path.is_symlink() or not path.is_file():
            continue
        with path.open("rb") as f:
            if f.read(2) != b"#!":
                continue
        rewritten = retarget_script(path.read_bytes(), old, new)
        if rewritten is not None:
            path.write_bytes(rewritten)
            changed[Path(os.path.normpath(path))] = rewritten
    if changed:
        for record in staging.glob("lib/python*/site-packages/*.dist-info/RECORD"):
            _update_record(record, changed)
    return [p.name for p in changed]

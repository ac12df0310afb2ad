"""Small pure-Python wheels made on the spot, for tests that need a console script."""

from __future__ import annotations

import zipfile
from pathlib import Path

from tests.channels.wheelrepack import record_line


def make_wheel(
    dest: Path,
    name: str,
    version: str,
    module_source: str,
    scripts: dict[str, str],
    *,
    metadata: tuple[str, ...] = (),
) -> Path:
    """``<name>-<version>-py3-none-any.whl`` in ``dest``: one module named ``name`` and the
    console ``scripts`` (script name → ``module:function``); ``metadata`` adds `METADATA`
    header lines (e.g. ``Requires-Dist: six>=1.5``)."""
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": module_source.encode(),
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            + "".join(f"{line}\n" for line in metadata)
        ).encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
        f"{dist_info}/entry_points.txt": (
            "[console_scripts]\n" + "".join(f"{k} = {v}\n" for k, v in scripts.items())
        ).encode(),
    }
    record = [",".join(record_line(k, v)) for k, v in files.items()] + [f"{dist_info}/RECORD,,"]
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for arcname, data in files.items():
            zf.writestr(zipfile.ZipInfo(arcname, (1980, 1, 1, 0, 0, 0)), data)
    return wheel

"""Turn a PyPI wheel into a conda package, the way conda-forge's wheel repacks do.

Pure wheels (`*-none-any`) become `noarch: python` packages (payload under `site-packages/`,
console scripts as `link.json` entry points the installer writes); binary cp3XY wheels become
linux-64 packages (payload under `lib/pythonX.Y/site-packages/`, console scripts written here
with a placeholder shebang). Dependencies come from `Requires-Dist` (extras dropped, markers
evaluated for Linux/CPython X.Y) with names normalised the conda way (`charset_normalizer` ->
`charset-normalizer`); `Requires-Python` becomes the noarch `python` lower bound.

The wheel is unpacked directly (no pip run, no `.pyc` compilation): it is only a zip file.
"""

from __future__ import annotations

import base64
import configparser
import csv
import email.parser
import hashlib
import io
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from tests.channels.condapkg import (
    PREFIX_PLACEHOLDER,
    PackageFormat,
    PackageMeta,
    build_package,
    write_file,
)


def conda_name(name: str) -> str:
    """PEP 503-normalised project name, which is also how conda-forge names repacks."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class WheelInfo:
    """What a wheel's `.dist-info` says that matters for a conda recipe."""

    name: str
    version: str
    pure: bool
    requires_dist: tuple[str, ...]
    requires_python: str
    console_scripts: tuple[str, ...]
    license: str
    summary: str
    dist_info: str


def read_wheel(wheel: Path) -> WheelInfo:
    """Parse `METADATA`, `WHEEL` and `entry_points.txt` from a wheel file."""
    with zipfile.ZipFile(wheel) as zf:
        dist_info = next(
            n.split("/")[0] for n in zf.namelist() if n.split("/")[0].endswith(".dist-info")
        )
        # METADATA is UTF-8; parsed as bytes, non-ASCII headers come back as `Header` objects.
        meta = email.parser.Parser().parsestr(zf.read(f"{dist_info}/METADATA").decode())
        wheel_meta = email.parser.BytesParser().parsebytes(zf.read(f"{dist_info}/WHEEL"))
        scripts: tuple[str, ...] = ()
        if f"{dist_info}/entry_points.txt" in zf.namelist():
            parser = configparser.ConfigParser(delimiters=("=",))
            parser.optionxform = str  # type: ignore[assignment,method-assign]
            parser.read_string(zf.read(f"{dist_info}/entry_points.txt").decode())
            if parser.has_section("console_scripts"):
                scripts = tuple(
                    f"{k} = {v.strip()}" for k, v in sorted(parser.items("console_scripts"))
                )
    tags = wheel_meta.get_all("Tag") or []
    return WheelInfo(
        name=meta["Name"],
        version=meta["Version"],
        pure=all(t.endswith("-none-any") for t in tags),
        requires_dist=tuple(meta.get_all("Requires-Dist") or ()),
        requires_python=meta.get("Requires-Python", "") or "",
        console_scripts=scripts,
        license=(meta.get("License-Expression") or meta.get("License") or "unknown")[:80],
        summary=meta.get("Summary", "") or "",
        dist_info=dist_info,
    )


def conda_depends(info: WheelInfo, python_xy: str) -> list[str]:
    """Run dependencies in conda syntax: `Requires-Dist` for CPython `python_xy` on Linux."""
    env = {
        "python_version": python_xy,
        "python_full_version": f"{python_xy}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": "",
    }
    depends = []
    for line in info.requires_dist:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        spec = ",".join(sorted(str(s) for s in req.specifier))
        depends.append(f"{conda_name(req.name)} {spec}".strip())
    if info.pure:
        lower = [s for s in SpecifierSet(info.requires_python) if s.operator in (">=", ">")]
        depends.append(f"python {','.join(str(s) for s in lower)}".strip())
    else:
        major, minor = python_xy.split(".")
        cp = f"cp{major}{minor}"
        depends.append(f"python >={python_xy},<{major}.{int(minor) + 1}.0a0")
        depends.append(f"python_abi {python_xy}.* *_{cp}")
    return sorted(depends)


def _entry_point_script(spec: str, python_xy: str) -> str:
    """A console script like the ones conda writes for `name = module:attr.sub`."""
    _, target = (part.strip() for part in spec.split("=", 1))
    module, _, attr = target.partition(":")
    head = attr.split(".")[0]
    return (
        f"#!{PREFIX_PLACEHOLDER}/bin/python{python_xy}\n"
        "# -*- coding: utf-8 -*-\n"
        "import re\n"
        "import sys\n\n"
        f"from {module} import {head}\n\n"
        "if __name__ == '__main__':\n"
        "    sys.argv[0] = re.sub(r'(-script\\.pyw?|\\.exe)?$', '', sys.argv[0])\n"
        f"    sys.exit({attr}())\n"
    )


def record_line(rel: str, data: bytes) -> list[str]:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return [rel, f"sha256={digest}", str(len(data))]


def stage_wheel(wheel: Path, staging: Path, python_xy: str) -> WheelInfo:
    """Unpack `wheel` into `staging` with the conda layout for its kind (see module docstring).

    `INSTALLER` becomes `conda` and `RECORD` is rewritten for the files as staged, so pip sees
    the package as installed by conda (and can list it and check it).
    """
    info = read_wheel(wheel)
    site = "site-packages" if info.pure else f"lib/python{python_xy}/site-packages"
    scripts_dir = "python-scripts" if info.pure else "bin"
    data_prefix = f"{info.dist_info[: -len('.dist-info')]}.data/"
    written: dict[str, bytes] = {}
    with zipfile.ZipFile(wheel) as zf:
        for member in zf.infolist():
            if member.is_dir():
                continue
            name = member.filename
            data = zf.read(member)
            if name.startswith(data_prefix):
                kind, _, rest = name[len(data_prefix) :].partition("/")
                if kind in ("purelib", "platlib"):
                    rel = f"{site}/{rest}"
                elif kind == "scripts":
                    rel = f"{scripts_dir}/{rest}"
                    if data.startswith(b"#!python"):
                        shebang = f"#!{PREFIX_PLACEHOLDER}/bin/python{python_xy}".encode()
                        data = shebang + data[len(b"#!python") :].lstrip(b"w")
                elif kind == "headers":
                    rel = f"include/python{python_xy}/{info.name}/{rest}"
                else:
                    rel = rest
            elif name in (f"{info.dist_info}/RECORD", f"{info.dist_info}/INSTALLER"):
                continue
            else:
                rel = f"{site}/{name}"
            mode = (member.external_attr >> 16) & 0o777
            write_file(staging, rel, data, executable=bool(mode & 0o111) or rel.startswith("bin/"))
            written[rel] = data
    installer = b"conda\n"
    write_file(staging, f"{site}/{info.dist_info}/INSTALLER", installer)
    written[f"{site}/{info.dist_info}/INSTALLER"] = installer
    if not info.pure:
        for spec in info.console_scripts:
            script_name = spec.split("=", 1)[0].strip()
            body = _entry_point_script(spec, python_xy).encode()
            write_file(staging, f"bin/{script_name}", body, executable=True)
            written[f"bin/{script_name}"] = body
    rows = []
    for rel, data in sorted(written.items()):
        rel_to_site = rel[len(site) + 1 :] if rel.startswith(site + "/") else None
        if rel_to_site is None:
            if info.pure:
                continue  # outside site-packages the installer decides; not listed, as conda
            rel_to_site = "../../../" + rel
        rows.append(record_line(rel_to_site, data))
    rows.append([f"{info.dist_info}/RECORD", "", ""])
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    write_file(staging, f"{site}/{info.dist_info}/RECORD", buf.getvalue())
    return info


def wheel_meta(info: WheelInfo, python_xy: str, build_number: int = 0) -> PackageMeta:
    """Package metadata for a staged wheel: noarch python (`py_N`) or linux-64 (`pyXY_N`)."""
    depends = conda_depends(info, python_xy)
    name = conda_name(info.name)
    if info.pure:
        return PackageMeta(
            name,
            info.version,
            f"py_{build_number}",
            subdir="noarch",
            noarch="python",
            build_number=build_number,
            depends=depends,
            entry_points=list(info.console_scripts),
            license=info.license,
            summary=info.summary,
        )
    return PackageMeta(
        name,
        info.version,
        f"py{python_xy.replace('.', '')}_{build_number}",
        build_number=build_number,
        depends=depends,
        license=info.license,
        summary=info.summary,
    )


def repack_wheel(
    wheel: Path, channel: Path, python_xy: str, fmt: PackageFormat = ".conda"
) -> PackageMeta:
    """Write `wheel` as a conda package into `channel/<subdir>/` (staged in a temporary
    directory) and return its metadata; a top-level function so that a process pool can run it.
    """
    with tempfile.TemporaryDirectory(prefix="repack-") as tmp:
        info = stage_wheel(wheel, Path(tmp), python_xy)
        meta = wheel_meta(info, python_xy)
        build_package(meta, Path(tmp), channel, fmt)
    return meta

"""The shared libraries an ELF file asks for (its ``DT_NEEDED`` entries), read from the file.

Reading them is a pure function of the file's bytes, so the answer for a package's files can be
kept with the package's layer and reused by every image that holds the package; ``ldd`` (which
runs the loader) is then needed only for the few libraries the environment lacks.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ELF_MAGIC = b"\x7fELF"
SHT_DYNAMIC = 6
DT_NULL, DT_NEEDED = 0, 1


class NotReadable(ValueError):
    """An ELF file whose dynamic section cannot be found from its section headers."""


def is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == ELF_MAGIC
    except OSError:
        return False


def needed_libraries(path: Path) -> list[str]:
    """The sonames ``path`` links (``[]`` for a static file); :class:`NotReadable` when the
    file has no section headers to find them by (the caller asks ``ldd`` instead). The file
    is mapped, not read: only its headers and dynamic section are touched."""
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size < 64:
            raise NotReadable(f"{path}: not an ELF file")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _needed(path, data)


def _needed(path: Path, data: mmap.mmap) -> list[str]:
    if data[:4] != ELF_MAGIC:
        raise NotReadable(f"{path}: not an ELF file")
    wide, order = data[4] == 2, "<" if data[5] == 1 else ">"
    if wide:
        (shoff,) = struct.unpack_from(order + "Q", data, 0x28)
        shentsize, shnum = struct.unpack_from(order + "HH", data, 0x3A)
        section, entry = order + "IIQQQQIIQQ", order + "qQ"
    else:
        (shoff,) = struct.unpack_from(order + "I", data, 0x20)
        shentsize, shnum = struct.unpack_from(order + "HH", data, 0x2E)
        section, entry = order + "IIIIIIIIII", order + "iI"
    if shoff == 0 or shnum == 0 or shoff + shnum * shentsize > len(data):
        raise NotReadable(f"{path}: no section headers")
    headers = [struct.unpack_from(section, data, shoff + i * shentsize) for i in range(shnum)]
    dynamic = [h for h in headers if h[1] == SHT_DYNAMIC]
    if not dynamic:
        return []  # statically linked
    _name, _type, _flags, _addr, offset, size, link, *_ = dynamic[0]
    if link >= shnum:
        raise NotReadable(f"{path}: dynamic section names no string table")
    strtab = headers[link][4]
    step = struct.calcsize(entry)
    needed = []
    for at in range(offset, min(offset + size, len(data) - step + 1), step):
        tag, value = struct.unpack_from(entry, data, at)
        if tag == DT_NULL:
            break
        if tag == DT_NEEDED:
            start = strtab + value
            needed.append(data[start : data.find(b"\0", start)].decode(errors="replace"))
    return needed


@dataclass
class ElfNeeds:
    """What a set of files asks the loader for: each soname with one file that needs it, and
    the ELF files this module could not read (``ldd`` reads those itself)."""

    needs: dict[str, str] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)

    def add(self, other: ElfNeeds) -> None:
        for soname, path in other.needs.items():
            self.needs.setdefault(soname, path)
        self.unreadable.extend(other.unreadable)

    def as_json(self) -> dict[str, Any]:
        return {"needs": self.needs, "unreadable": self.unreadable}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ElfNeeds:
        return cls(dict(data["needs"]), list(data["unreadable"]))


def scan(root: Path, files: Iterable[str]) -> ElfNeeds:
    """The needs of the regular ELF files among ``files`` (paths relative to ``root``)."""
    found = ElfNeeds()
    for rel in sorted(files):
        path = root / rel
        if path.is_symlink() or not is_elf(path):
            continue
        try:
            sonames = needed_libraries(path)
        except (NotReadable, OSError, struct.error, ValueError):
            found.unreadable.append(rel)
            continue
        for soname in sonames:
            found.needs.setdefault(soname, rel)
    return found

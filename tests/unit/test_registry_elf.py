"""The registry's ELF reading and the host-library layer it feeds, on the host's own binaries:
``ldd`` runs only for the sonames a prefix lacks, with the same libraries as a full scan."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from services.registry import base, elf
from services.registry.image import LayerCache
from services.registry.plan import PackageLayer

LS = Path(shutil.which("ls") or "/bin/ls").resolve()


def test_the_needed_libraries_are_the_ones_the_loader_loads_first() -> None:
    needed = elf.needed_libraries(LS)
    loaded = {os.path.basename(p) for p in base.linked_libraries([LS])}
    assert "libc.so.6" in needed
    assert set(needed) <= loaded  # ldd adds the loader and what those libraries link


def test_a_file_without_section_headers_is_left_to_ldd(tmp_path: Path) -> None:
    stripped = tmp_path / "bin" / "tool"
    stripped.parent.mkdir()
    data = bytearray(LS.read_bytes())
    data[0x28:0x30] = bytes(8)  # e_shoff = 0: the headers are gone
    stripped.write_bytes(bytes(data))
    (tmp_path / "bin" / "script").write_text("#!/bin/sh\n")
    with pytest.raises(elf.NotReadable):
        elf.needed_libraries(stripped)
    found = elf.scan(tmp_path, ["bin/tool", "bin/script"])
    assert found.unreadable == ["bin/tool"] and found.needs == {}


def _prefix(tmp_path: Path) -> Path:
    root = tmp_path / "prefix"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(LS, root / "bin" / "ls")
    return root


def test_host_libraries_match_a_full_ldd_scan_and_skip_what_the_prefix_has(
    tmp_path: Path,
) -> None:
    root = _prefix(tmp_path)
    full = {
        base.image_path(p)
        for p in base.linked_libraries([root / "bin" / "ls"])
        if not p.startswith(str(root))
    }
    needs = elf.scan(root, ["bin/ls"])
    got = {e.arcname for e in base.library_entries(root, needs, {"ls"}, set())}
    assert got == full and got

    provided = set(needs.needs)  # the prefix ships every library ls names: ldd is not asked
    assert base.library_entries(root, needs, provided, set()) == []
    taken = set(full)  # what the core layer already has is not repeated
    assert base.library_entries(root, needs, {"ls"}, taken) == []


def test_a_package_is_read_once_then_its_needs_come_from_the_layer_cache(
    tmp_path: Path,
) -> None:
    root = _prefix(tmp_path)
    package = PackageLayer("coreutils", "9", "0", ("bin/ls",), 1, "k" * 64)
    cache = LayerCache(tmp_path / "layers")
    first = cache.needs(root, package)
    assert "libc.so.6" in first.needs
    (root / "bin" / "ls").write_text("not an ELF file any more\n")
    assert cache.needs(root, package) == first  # not read again
    other = PackageLayer("coreutils", "9", "0", ("bin/ls",), 1, "j" * 64)
    assert cache.needs(root, other).needs == {}  # another key reads the files

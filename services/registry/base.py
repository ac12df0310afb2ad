"""The offline base of every image: static busybox, the host's glibc and the libraries the
environment's binaries link, plus ``/etc/passwd`` and ``/etc/group``.

No base image can be pulled on an offline machine, and conda packages do not ship glibc, so
the image borrows the host's: the same host that installed (and tested) the environment. Files
are placed at the host's resolved directories and the host's top-level symlinks (``/lib ->
usr/lib`` on merged-/usr systems) are mirrored, so ``PT_INTERP`` and the loader's default
search paths resolve inside the image exactly as they do on the host.

Two layers come out of this module: ``core`` (busybox, glibc, users; identical for every
image built on one host, so it is one shared blob) and ``libs`` (whatever else ``ldd`` found,
typically libssl/libffi/libsqlite for Python; shared by environments that need the same set).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

from .elf import ElfNeeds
from .layers import Entry

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
BUSYBOX_PACKAGE = "busybox-static"
"""The Debian package that provides a static busybox (``./dev up`` and the image install it)."""
GLIBC_CORE = ("libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1")
TOP_LEVEL_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = b"root:x:0:\nnogroup:x:65534:\n"
LDD_BATCH = 200


def image_path(host_path: str) -> str:
    """Where a host file goes in the image: its directory resolved, its own name kept."""
    directory, name = os.path.split(host_path)
    return os.path.join(os.path.realpath(directory), name).lstrip("/")


def find_busybox() -> Path:
    for candidate in BUSYBOX_CANDIDATES:
        path = Path(candidate)
        if path.is_file() and _is_static(path):
            return path
    raise FileNotFoundError(f"a static busybox is needed for the image base ({BUSYBOX_PACKAGE})")


def _is_static(path: Path) -> bool:
    result = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=False)
    return result.returncode != 0 or "not a dynamic executable" in result.stdout + result.stderr


def _busybox_applets(busybox: Path) -> list[str]:
    out = subprocess.run(
        [str(busybox), "--list-full"], capture_output=True, text=True, check=True
    ).stdout
    return sorted({line.strip() for line in out.splitlines() if line.strip()})


def _top_level_links() -> list[Entry]:
    entries = []
    for name in TOP_LEVEL_LINKS:
        path = Path("/", name)
        if path.is_symlink():
            entries.append(Entry(name, symlink=os.readlink(path)))
    return entries


def _host_file(host_path: str) -> Entry:
    """A host file copied (symlinks followed) to its image path."""
    return Entry(image_path(host_path), source=Path(os.path.realpath(host_path)))


def _loader_and_core() -> list[str]:
    """Host paths of the dynamic loader and glibc's core libraries, found via ``ldd``."""
    wanted = set(GLIBC_CORE)
    paths = []
    for host_path in linked_libraries([Path("/bin/sh"), Path("/usr/bin/env")]):
        if os.path.basename(host_path) in wanted or "ld-linux" in host_path:
            paths.append(host_path)
    libc_dir = next((os.path.dirname(p) for p in paths if p.endswith("/libc.so.6")), None)
    if libc_dir:
        for name in GLIBC_CORE:
            candidate = os.path.join(libc_dir, name)
            if os.path.exists(candidate) and candidate not in paths:
                paths.append(candidate)
    return sorted(set(paths))


def core_entries() -> list[Entry]:
    """busybox with its applets, glibc, users and the usual empty directories."""
    busybox = find_busybox()
    busybox_at = image_path(str(busybox))
    entries = [*_top_level_links(), Entry(busybox_at, source=busybox, mode=0o755)]
    taken = {busybox_at}
    for applet in _busybox_applets(busybox):
        at = image_path("/" + applet)
        if at not in taken:
            taken.add(at)
            entries.append(Entry(at, symlink="/" + busybox_at))
    entries += [_host_file(p) for p in _loader_and_core()]
    entries += [
        Entry("etc/passwd", data=PASSWD),
        Entry("etc/group", data=GROUP),
        Entry("tmp", mode=0o1777),
        Entry("root", mode=0o700),
        Entry("proc"),
        Entry("sys"),
        Entry("dev"),
    ]
    return entries


def linked_libraries(binaries: Iterable[Path]) -> list[str]:
    """Absolute host paths ``ldd`` resolves for ``binaries`` (in batches, one process each)."""
    found: set[str] = set()
    batch = list(binaries)
    for i in range(0, len(batch), LDD_BATCH):
        result = subprocess.run(
            ["ldd", *map(str, batch[i : i + LDD_BATCH])],
            capture_output=True,
            text=True,
            check=False,
        )
        for line in result.stdout.splitlines():
            line = line.strip()
            if "=>" in line:
                target = line.split("=>", 1)[1].strip().split(" (", 1)[0].strip()
                if target.startswith("/"):
                    found.add(target)
            elif line.startswith("/") and " (0x" in line:
                found.add(line.split(" (", 1)[0])
    return sorted(found)


def library_entries(
    prefix_root: Path, needs: ElfNeeds, provided: set[str], exclude: set[str]
) -> list[Entry]:
    """Host libraries the environment's ELF files link, minus what the prefix itself provides
    and what the core layer already has (``exclude``: image paths).

    ``ldd`` runs only on one file per soname the prefix lacks (``provided``: the base names of
    its files) and on the files ``needs`` could not read: the host libraries the whole prefix
    reaches are those those files reach, as host libraries link no environment library.
    """
    root = str(prefix_root.resolve())
    wanted = {path for soname, path in needs.needs.items() if soname not in provided}
    entries = []
    for host_path in linked_libraries(
        prefix_root / p for p in sorted({*wanted, *needs.unreadable})
    ):
        if os.path.realpath(host_path).startswith(root + os.sep):
            continue
        at = image_path(host_path)
        if at not in exclude:
            exclude.add(at)
            entries.append(_host_file(host_path))
    return entries

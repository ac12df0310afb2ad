"""conda-store's ``watch_paths``: which files are watched and what each one asks for.

Pure apart from reading the files, so what a scan decides is easy to test: a watched file is a
``.yml``/``.yaml`` file named in a watch path or lying directly in a watched directory (not in
its subdirectories, and not hidden, as editors' swap files are); its build goes to the
``filesystem`` namespace under the name it gives itself.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from shared.spec import (
    MAX_NAME_LENGTH,
    MAX_SPECIFICATION_BYTES,
    NAME_PATTERN,
    CondaSpecification,
    SpecificationError,
    parse_specification,
)
from shared.spec.model import ALLOWED_CHARACTERS, load_yaml

WATCH_NAMESPACE = "filesystem"
YAML_SUFFIXES = (".yml", ".yaml")


@dataclass(frozen=True)
class WatchedFile:
    """One watched file as read in one scan."""

    path: Path
    text: str
    sha256: str

    @property
    def stream(self) -> str:
        return stream_of_watched_file(self.path)


@dataclass(frozen=True)
class Rejected:
    """A watched file that cannot be built: its build fails with ``reason``."""

    name: str
    reason: str


def stream_of_watched_file(path: Path) -> str:
    return f"watched-file-{path}"


def is_watched_name(path: Path) -> bool:
    return path.suffix in YAML_SUFFIXES and not path.name.startswith(".")


def discover(paths: Iterable[Path]) -> list[Path]:
    """The watched files now present, each once, in a stable order."""
    found: dict[Path, None] = {}
    for root in paths:
        root = root.absolute()
        if root.is_file() and is_watched_name(root):
            found[root] = None
        elif root.is_dir():
            for child in sorted(root.iterdir()):
                if child.is_file() and is_watched_name(child):
                    found[child] = None
    return list(found)


def read_watched(path: Path) -> WatchedFile:
    """The file's content; an OSError (gone since the listing, unreadable) is the caller's.

    A file over the submission limit is read only up to just past it: enough to refuse it."""
    with path.open("rb") as f:
        raw = f.read(MAX_SPECIFICATION_BYTES + 1)
    return WatchedFile(path, raw.decode("utf-8", errors="replace"), hashlib.sha256(raw).hexdigest())


def fallback_name(path: Path) -> str:
    """A valid environment name from the file name, for a file whose own name is unusable."""
    stem = re.sub(f"[^{ALLOWED_CHARACTERS}]", "-", path.stem)[:MAX_NAME_LENGTH]
    return stem or "environment"


def _declared_name(text: str) -> str | None:
    try:
        data = load_yaml(text)
    except SpecificationError:
        return None
    name = data.get("name") if isinstance(data, dict) else None
    if isinstance(name, str) and re.fullmatch(NAME_PATTERN, name) and len(name) <= MAX_NAME_LENGTH:
        return name
    return None


def parse_watched(file: WatchedFile) -> CondaSpecification | Rejected:
    """The file's specification, or why it cannot be built (under the best name it has)."""
    if "\x00" in file.text:
        return Rejected(fallback_name(file.path), f"{file.path.name}: the file holds NUL bytes")
    try:
        return parse_specification(file.text)
    except SpecificationError as exc:
        name = _declared_name(file.text) or fallback_name(file.path)
        return Rejected(name, f"{file.path.name}: {_detail(exc)}")


def _detail(exc: SpecificationError) -> str:
    """conda-store's message, with where the YAML broke when it did (a file has lines)."""
    cause = exc.__cause__
    if not isinstance(cause, yaml.YAMLError):
        return exc.message
    return f"{exc.message}: {' '.join(str(cause).split())}"

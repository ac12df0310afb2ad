"""What changed between two builds: packages added, removed, upgraded, downgraded or rebuilt
(conda and pip), and the specification's own changes.

Pure: the packages and specs come in as values, and version order is a function passed in
(conda's and pip's orders differ, and both come from native parsers the adapters own), so the
diff of two 300-package builds is a dictionary walk.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import yaml

ChangeKind = Literal["added", "removed", "upgraded", "downgraded", "rebuilt"]
VersionOrder = Callable[[str, str, str], int]
"""(manager, a, b) → negative when a < b, 0 when equal, positive when a > b."""


@dataclass(frozen=True, slots=True)
class Pin:
    manager: str
    name: str
    version: str
    build: str = ""
    channel: str = ""


@dataclass(frozen=True, slots=True)
class PackageChange:
    kind: ChangeKind
    manager: str
    name: str
    old: Pin | None = None
    new: Pin | None = None


@dataclass(frozen=True, slots=True)
class SpecChange:
    channels_added: list[str] = field(default_factory=list)
    channels_removed: list[str] = field(default_factory=list)
    dependencies_added: list[str] = field(default_factory=list)
    dependencies_removed: list[str] = field(default_factory=list)
    pip_added: list[str] = field(default_factory=list)
    pip_removed: list[str] = field(default_factory=list)
    other_keys_changed: list[str] = field(default_factory=list)
    text: str = ""
    """A unified diff of the two specifications as YAML, for people."""


@dataclass(frozen=True, slots=True)
class BuildDiff:
    packages: list[PackageChange]
    specification: SpecChange

    def counts(self) -> dict[str, int]:
        kinds: tuple[ChangeKind, ...] = ("added", "removed", "upgraded", "downgraded", "rebuilt")
        return {k: sum(1 for c in self.packages if c.kind == k) for k in kinds}

    def to_json(self) -> dict[str, Any]:
        return {
            "counts": self.counts(),
            "packages": [asdict(c) for c in self.packages],
            "specification": asdict(self.specification),
        }


def _by_key(pins: Iterable[Pin]) -> dict[tuple[str, str], Pin]:
    """One pin per (manager, name); a name listed twice (several platforms) keeps its first."""
    found: dict[tuple[str, str], Pin] = {}
    for pin in pins:
        found.setdefault((pin.manager, pin.name), pin)
    return found


def diff_packages(
    old: Iterable[Pin], new: Iterable[Pin], order: VersionOrder
) -> list[PackageChange]:
    """Changes by name, sorted by (manager, name); a pin that only changed build string or
    channel is ``rebuilt``."""
    before, after = _by_key(old), _by_key(new)
    changes: list[PackageChange] = []
    for key in sorted(before.keys() | after.keys()):
        a, b = before.get(key), after.get(key)
        if a is None:
            changes.append(PackageChange("added", *key, new=b))
        elif b is None:
            changes.append(PackageChange("removed", *key, old=a))
        elif a != b:
            step = order(key[0], a.version, b.version)
            kind: ChangeKind = "upgraded" if step < 0 else "downgraded" if step > 0 else "rebuilt"
            changes.append(PackageChange(kind, *key, old=a, new=b))
    return changes


def _conda_and_pip(spec: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    conda: list[str] = []
    pip: list[str] = []
    for dep in spec.get("dependencies") or []:
        if isinstance(dep, str):
            conda.append(dep)
        elif isinstance(dep, Mapping):
            pip += [str(p) for p in dep.get("pip") or []]
    return conda, pip


def _added_removed(old: list[str], new: list[str]) -> tuple[list[str], list[str]]:
    return [x for x in new if x not in old], [x for x in old if x not in new]


def diff_specs(old: Mapping[str, Any], new: Mapping[str, Any]) -> SpecChange:
    old_conda, old_pip = _conda_and_pip(old)
    new_conda, new_pip = _conda_and_pip(new)
    channels = _added_removed(list(old.get("channels") or []), list(new.get("channels") or []))
    conda = _added_removed(old_conda, new_conda)
    pip = _added_removed(old_pip, new_pip)
    others = sorted(
        k
        for k in (old.keys() | new.keys()) - {"channels", "dependencies"}
        if old.get(k) != new.get(k)
    )
    text = "".join(
        difflib.unified_diff(
            _yaml(old).splitlines(keepends=True),
            _yaml(new).splitlines(keepends=True),
            "old/environment.yaml",
            "new/environment.yaml",
        )
    )
    return SpecChange(*channels, *conda, *pip, others, text)


def _yaml(spec: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(spec), sort_keys=False, default_flow_style=False)


def diff_builds(
    old_pins: Iterable[Pin],
    new_pins: Iterable[Pin],
    old_spec: Mapping[str, Any],
    new_spec: Mapping[str, Any],
    order: VersionOrder,
) -> BuildDiff:
    return BuildDiff(diff_packages(old_pins, new_pins, order), diff_specs(old_spec, new_spec))

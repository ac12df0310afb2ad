"""Which virtual packages (``__cuda``, ``__glibc``, …) a build is solved with, beyond the
fixed, machine-independent ones the solver assumes for each platform.

conda reads ``CONDA_OVERRIDE_<NAME>`` environment variables for this; a spec says the same in
its ``variables``, and the ``conda_virtual_packages`` setting gives a namespace or environment
its GPU (``["__cuda=12.4"]``). The spec's variables win, and an empty value removes the
package (``CONDA_OVERRIDE_CUDA: ""`` is a CPU build even where the setting says CUDA), as
with conda. Pure: the solver turns the result into rattler's virtual packages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import SpecificationError

OVERRIDES = {
    "CONDA_OVERRIDE_CUDA": "__cuda",
    "CONDA_OVERRIDE_GLIBC": "__glibc",
    "CONDA_OVERRIDE_OSX": "__osx",
    "CONDA_OVERRIDE_LINUX": "__linux",
    "CONDA_OVERRIDE_WIN": "__win",
    "CONDA_OVERRIDE_ARCHSPEC": "__archspec",
}
"""conda's override variables and the virtual package each sets."""

_NAME = re.compile(r"^__[a-z0-9_-]+$")
_VERSION = re.compile(r"^[A-Za-z0-9_.+!*-]+$")


def parse_virtual_package(entry: str) -> tuple[str, str]:
    """``"__cuda=12.4"`` or ``"__archspec=1=x86_64"`` → (name, "version[=build]"); raises
    ValueError naming what is wrong."""
    name, _, rest = entry.strip().partition("=")
    if not _NAME.match(name):
        raise ValueError(f"{entry!r}: a virtual package name starts with '__' (e.g. __cuda=12.4)")
    version, _, build = rest.partition("=")
    if not _VERSION.match(version) or (build and not _VERSION.match(build)):
        raise ValueError(f"{entry!r}: expected <name>=<version>[=<build>], e.g. __cuda=12.4")
    return name, rest


def virtual_package_overrides(
    configured: Sequence[str], variables: Mapping[str, Any] | None
) -> dict[str, str]:
    """Name → "version[=build]", or "" for a virtual package the build must not have.

    ``configured`` is the ``conda_virtual_packages`` setting (validated when it was set);
    ``variables`` the spec's. A bad override value is a 400 naming the variable."""
    found = dict(parse_virtual_package(e) for e in configured)
    for variable, name in OVERRIDES.items():
        if not variables or variable not in variables:
            continue
        value = str(variables[variable]).strip()
        if not value:
            found[name] = ""
            continue
        if name == "__archspec":  # conda's archspec override names the microarchitecture
            value = f"1={value}"
        try:
            found[name] = parse_virtual_package(f"{name}={value}")[1]
        except ValueError as exc:
            raise SpecificationError(f"variables.{variable}: {exc}") from exc
    return dict(sorted(found.items()))

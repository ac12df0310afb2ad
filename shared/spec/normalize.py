"""Apply a namespace/environment's runtime settings to a submitted specification.

Reproduces conda-store 2025.2.2's ``validate_specification`` (reference §6.1 step 4), in its
order: channels, then pip packages, then conda packages. The order matters: a pip section added
by ``pypi_included_packages`` makes ``dependencies`` non-empty, so ``conda_default_packages``
no longer applies. Error messages are conda-store's, including its literal
``... packages False required and missing from specification`` (it formats a boolean).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.conda_formats import conda_package_name
from shared.runtime_settings import ResolvedSettings
from shared.spec.errors import SpecificationError
from shared.spec.hashing import specification_sha256
from shared.spec.model import (
    CondaSpecification,
    CondaSpecificationPip,
    pip_requirement_name,
)

from .virtual_packages import virtual_package_overrides


@dataclass(frozen=True)
class NormalizedSpec:
    """The outcome of normalization.

    ``spec`` is what is stored and hashed: channel names as the user (or the defaults) wrote
    them. ``channel_urls`` are the same channels resolved against ``conda_channel_alias``, in
    order, for the solver. ``virtual_packages``: what the solve assumes beyond the platform's
    own virtual packages (see :mod:`shared.spec.virtual_packages`).
    """

    spec: CondaSpecification
    channel_urls: list[str]
    virtual_packages: dict[str, str] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return specification_sha256(self.spec.model_dump())


def normalize_channel(channel_alias: str, channel: str) -> str:
    """``conda-forge`` -> ``{alias}/conda-forge``; URLs (``http...``, ``file:``) unchanged;
    an absolute local path becomes a ``file://`` URL (conda-store would fail on it)."""
    if channel.startswith(("http", "file:")):
        return channel
    if channel.startswith("/"):
        return f"file://{channel}"
    return f"{channel_alias.rstrip('/')}/{channel.lstrip('/')}"


def _set_repr(items: set[str]) -> str:
    # conda-store prints a Python set (hash order); sorted here for stable text.
    return "{" + ", ".join(repr(x) for x in sorted(items)) + "}"


def allowed_channel_urls(channels: list[str], settings: ResolvedSettings) -> list[str]:
    """The channels as URLs (in order, once each), after ``conda_allowed_channels``: a
    disallowed one is a :class:`SpecificationError` with conda-store's message. Builds and the
    remote solve both go through here, so nothing fetches a channel the policy refuses."""
    alias = settings.conda_channel_alias
    urls = [normalize_channel(alias, c) for c in channels]
    if settings.conda_allowed_channels:
        allowed = {normalize_channel(alias, c) for c in settings.conda_allowed_channels}
        rejected = set(urls) - allowed
        if rejected:
            raise SpecificationError(
                f"Conda channels {_set_repr(rejected)} not allowed in specification"
            )
    return list(dict.fromkeys(urls))


def _apply_channels(spec: CondaSpecification, settings: ResolvedSettings) -> list[str]:
    if not spec.channels:
        spec.channels = list(settings.conda_default_channels)
    return allowed_channel_urls(spec.channels, settings)


def _pip_key(entry: str) -> str:
    # Options are keyed by their whole text, requirements by project name (as written).
    if entry.startswith("--"):
        return entry
    name = pip_requirement_name(entry)
    if name is None:
        raise SpecificationError(f"Invalid pypi package {entry!r} in settings")
    return name


def _append_pip(spec: CondaSpecification, entries: list[str]) -> None:
    for dep in spec.dependencies:
        if isinstance(dep, CondaSpecificationPip):
            dep.pip.extend(entries)
            return
    spec.dependencies.append(CondaSpecificationPip(pip=list(entries)))


def _apply_pypi(spec: CondaSpecification, settings: ResolvedSettings) -> None:
    if not spec.pip_dependencies() and settings.pypi_default_packages:
        _append_pip(spec, list(settings.pypi_default_packages))
    present = {_pip_key(p) for p in spec.pip_dependencies()}
    for entry in settings.pypi_included_packages:
        key = _pip_key(entry)
        if key not in present:
            _append_pip(spec, [entry])
            present.add(key)
    if not {_pip_key(p) for p in settings.pypi_required_packages} <= present:
        raise SpecificationError("PyPi packages False required and missing from specification")


def _conda_key(spec_str: str) -> str:
    name = conda_package_name(spec_str)
    if name is None:
        raise SpecificationError(f"Invalid conda package {spec_str!r} in settings")
    return name


def _apply_conda(spec: CondaSpecification, settings: ResolvedSettings) -> None:
    if not spec.dependencies:
        spec.dependencies = list(settings.conda_default_packages)
    present = {_conda_key(d) for d in spec.conda_dependencies()}
    for entry in settings.conda_included_packages:
        key = _conda_key(entry)
        if key not in present:
            spec.dependencies.append(entry)
            present.add(key)
    if not {_conda_key(p) for p in settings.conda_required_packages} <= present:
        raise SpecificationError("Conda packages False required and missing from specification")


def normalize_specification(spec: CondaSpecification, settings: ResolvedSettings) -> NormalizedSpec:
    """Return the specification with the settings applied; the input is not modified.

    Raises :class:`SpecificationError` (a 400) for a disallowed channel or a missing required
    package.
    """
    result = spec.model_copy(deep=True)
    channel_urls = _apply_channels(result, settings)
    _apply_pypi(result, settings)
    _apply_conda(result, settings)
    virtual = virtual_package_overrides(settings.conda_virtual_packages, result.variables)
    return NormalizedSpec(spec=result, channel_urls=channel_urls, virtual_packages=virtual)

"""conda-store's runtime settings (the ``/api/v1/setting/`` keys), their scopes and merge rules.

These are distinct from :mod:`shared.settings` (process configuration from environment
variables): runtime settings are changed through the REST API, stored as events, and resolved
per namespace/environment when a specification is submitted.

Behaviour mirrors conda-store 2025.2.2 (reference §7.1, §1.3):

* deployment defaults < global layer < namespace layer < environment layer;
  values are replaced, never merged (a list in a higher layer replaces the whole list);
* global-only keys cannot be set below the global level, and any such value found in a
  namespace/environment layer is ignored;
* error texts are conda-store's, because clients display them verbatim.

The field annotations are deliberately the same types conda-store uses: pydantic's error text
for a bad value names the type (``1 validation error for list[str]``), so the annotation is part
of the contract.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shared.conda_formats import current_platform

SettingLevel = Literal["global", "namespace", "environment"]


class BuildArtifactType(str, enum.Enum):  # noqa: UP042 (pydantic names it str-enum[...] in errors)
    """Artifact kinds of a build, as conda-store names them (the deprecated ones included,
    because old data and settings may still carry them)."""

    DIRECTORY = "DIRECTORY"
    LOCKFILE = "LOCKFILE"
    LOGS = "LOGS"
    YAML = "YAML"
    CONDA_PACK = "CONDA_PACK"
    DOCKER_MANIFEST = "DOCKER_MANIFEST"
    CONSTRUCTOR_INSTALLER = "CONSTRUCTOR_INSTALLER"
    CONTAINER_REGISTRY = "CONTAINER_REGISTRY"
    DOCKER_BLOB = "DOCKER_BLOB"
    # an extension: the CycloneDX SBOM every completed build gets, like its LOCKFILE
    SBOM = "SBOM"


def _uid() -> int | None:
    return os.getuid() if hasattr(os, "getuid") else None


def _gid() -> int | None:
    return os.getgid() if hasattr(os, "getgid") else None


def _check_virtual_packages(entries: list[str]) -> list[str]:
    from shared.spec.virtual_packages import parse_virtual_package  # shared.spec imports us

    for entry in entries:
        parse_virtual_package(entry)
    return entries


VirtualPackages = Annotated[list[str], AfterValidator(_check_virtual_packages)]
"""``name=version[=build]`` entries, checked when the setting is changed."""


def _global(description: str) -> dict[str, Any]:
    return {"description": description, "json_schema_extra": {"scope": "global"}}


def _scoped(description: str) -> dict[str, Any]:
    return {"description": description, "json_schema_extra": {"scope": "namespace"}}


class RuntimeSettings(BaseModel):
    """Every runtime setting key with conda-store's default, in conda-store's key order
    (``GET /setting/`` returns them in this order)."""

    model_config = ConfigDict(use_enum_values=True, validate_default=True)

    default_namespace: str = Field(
        "default",
        **_global("namespace of new environments when none is named, and of anonymous users"),
    )
    filesystem_namespace: str = Field(
        "filesystem", **_global("namespace of the environments built from watch_paths")
    )
    default_uid: int | None = Field(
        default_factory=_uid, **_global("owner (uid) given to the files of built environments")
    )
    default_gid: int | None = Field(
        default_factory=_gid, **_global("group (gid) given to the files of built environments")
    )
    default_permissions: str | None = Field(
        "775", **_global("file mode (octal, e.g. 775) given to built environments")
    )
    storage_threshold: int = Field(
        5 * 1024**3, **_global("bytes of free storage required to accept a build")
    )
    conda_command: str = Field(
        "mamba", **_global("conda executable conda-store would run (informational here)")
    )
    conda_platforms: list[str] = Field(
        default_factory=lambda: [current_platform(), "noarch"],
        **_global("platforms whose packages are indexed for search"),
    )
    conda_max_solve_time: int = Field(300, **_global("seconds a remote solve may take"))
    conda_indexed_channels: list[str] = Field(
        default_factory=lambda: ["main", "conda-forge", "https://repo.anaconda.com/pkgs/main"],
        **_global("channels indexed for package search"),
    )
    build_artifacts_kept_on_deletion: list[BuildArtifactType] = Field(
        default_factory=lambda: [
            BuildArtifactType.LOGS,
            BuildArtifactType.LOCKFILE,
            BuildArtifactType.YAML,
        ],
        **_global("artifacts kept when a build is deleted"),
    )
    conda_solve_platforms: list[str] = Field(
        default_factory=lambda: [current_platform()],
        **_scoped("platforms a specification is solved for"),
    )
    conda_channel_alias: str = Field(
        "https://conda.anaconda.org",
        **_scoped("URL put before bare channel names (conda-forge becomes <alias>/conda-forge)"),
    )
    conda_default_channels: list[str] = Field(
        default_factory=lambda: ["conda-forge"],
        **_scoped("channels used when a specification names none"),
    )
    conda_allowed_channels: list[str] = Field(
        default_factory=list, **_scoped("channels a specification may use; empty allows all")
    )
    conda_default_packages: list[str] = Field(
        default_factory=list,
        **_scoped("conda packages used when a specification has no dependencies"),
    )
    conda_required_packages: list[str] = Field(
        default_factory=list, **_scoped("conda packages every specification must list")
    )
    conda_included_packages: list[str] = Field(
        default_factory=list,
        **_scoped("conda packages added to every specification that lacks them"),
    )
    pypi_default_packages: list[str] = Field(
        default_factory=list,
        **_scoped("pip packages used when a specification has no pip packages"),
    )
    pypi_required_packages: list[str] = Field(
        default_factory=list, **_scoped("pip packages every specification must list")
    )
    pypi_included_packages: list[str] = Field(
        default_factory=list, **_scoped("pip packages added to every specification that lacks them")
    )
    build_artifacts: list[BuildArtifactType] = Field(
        default_factory=lambda: [
            BuildArtifactType.LOCKFILE,
            BuildArtifactType.YAML,
            BuildArtifactType.CONDA_PACK,
            BuildArtifactType.CONSTRUCTOR_INSTALLER,
            # not in conda-store's default: every build here gets an OCI image unless this
            # setting leaves DOCKER_MANIFEST out
            BuildArtifactType.DOCKER_MANIFEST,
        ],
        **_scoped("artifacts a build makes; DOCKER_MANIFEST is its OCI image"),
    )
    # not a conda-store key (an extension, last so conda-store's order is kept)
    conda_virtual_packages: VirtualPackages = Field(
        default_factory=list,
        **_scoped(
            "virtual packages the solve assumes beyond the platform's own, e.g. "
            '["__cuda=12.4"] for CUDA builds; a spec\'s CONDA_OVERRIDE_* variables win'
        ),
    )


# A merged settings object is simply a complete RuntimeSettings; the alias names the intent.
ResolvedSettings = RuntimeSettings

SETTING_KEYS: tuple[str, ...] = tuple(RuntimeSettings.model_fields)
GLOBAL_SETTING_KEYS: frozenset[str] = frozenset(
    name
    for name, field in RuntimeSettings.model_fields.items()
    if (field.json_schema_extra or {}).get("scope") == "global"
)


class SettingsError(ValueError):
    """A rejected settings update; ``message`` is conda-store's 400 text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def is_global_setting(key: str) -> bool:
    """Whether ``key`` may only be set at the global level."""
    return key in GLOBAL_SETTING_KEYS


def _set_repr(items: Iterable[str]) -> str:
    # conda-store formats a Python set; its order is hash-random there, sorted here so the
    # text is stable. A single key (the common case) is byte-identical.
    return "{" + ", ".join(repr(x) for x in sorted(items)) + "}"


def validate_setting_update(level: SettingLevel, body: Mapping[str, Any]) -> dict[str, Any]:
    """Check a ``PUT /setting/...`` body the way conda-store does, in the same order, so the
    first error reported is the same one: unknown keys (all at once), then per key in body
    order the global-scope check and the value's type.

    Returns the values coerced to their types in JSON form, ready to be stored.
    Raises :class:`SettingsError` with conda-store's message.
    """
    unknown = set(body) - set(SETTING_KEYS)
    if unknown:
        raise SettingsError(f"Invalid setting keys {_set_repr(unknown)}")
    validated: dict[str, Any] = {}
    for key, value in body.items():
        if level != "global" and is_global_setting(key):
            raise SettingsError(
                f"Setting {key} is a global setting and cannot be set within a "
                "namespace or environment"
            )
        field = RuntimeSettings.model_fields[key]
        annotation = (
            Annotated.__class_getitem__((field.annotation, *field.metadata))  # type: ignore[attr-defined]
            if field.metadata
            else field.annotation
        )
        adapter = pydantic.TypeAdapter(annotation)
        try:
            coerced = adapter.validate_python(value)
        except pydantic.ValidationError as exc:
            raise SettingsError(str(exc)) from exc
        validated[key] = adapter.dump_python(coerced, mode="json")
    return validated


def setting_update_message(keys: Iterable[str]) -> str:
    """conda-store's success message; it says "global" at every level, faithfully."""
    return f"global setting keys {list(keys)} updated"


SettingSource = Literal["default", "deployment", "global", "namespace", "environment"]


def _layers(
    deployment_defaults: RuntimeSettings | Mapping[str, Any] | None,
    global_layer: Mapping[str, Any] | None,
    namespace_layer: Mapping[str, Any] | None,
    env_layer: Mapping[str, Any] | None,
) -> list[tuple[SettingSource, dict[str, Any]]]:
    """The layers that apply, lowest first, each cut to the keys it may set."""
    if isinstance(deployment_defaults, RuntimeSettings):
        deployment_defaults = deployment_defaults.model_dump()
    layers: list[tuple[SettingSource, dict[str, Any]]] = [
        ("deployment", _known(deployment_defaults or {})),
        ("global", _known(global_layer or {})),
    ]
    for source, layer in (("namespace", namespace_layer), ("environment", env_layer)):
        kept = {k: v for k, v in _known(layer or {}).items() if not is_global_setting(k)}
        layers.append((source, kept))  # type: ignore[arg-type]
    return layers


def merge_settings(
    deployment_defaults: RuntimeSettings | Mapping[str, Any] | None = None,
    global_layer: Mapping[str, Any] | None = None,
    namespace_layer: Mapping[str, Any] | None = None,
    env_layer: Mapping[str, Any] | None = None,
) -> ResolvedSettings:
    """Resolve the effective settings for a level.

    Pass ``namespace_layer``/``env_layer`` only for the levels being resolved (None for the
    global view). Unknown keys are ignored, as conda-store's model ignores them; global-only
    keys in the namespace/environment layers are dropped.
    """
    merged: dict[str, Any] = {}
    for _, layer in _layers(deployment_defaults, global_layer, namespace_layer, env_layer):
        merged.update(layer)
    return RuntimeSettings(**merged)


def setting_sources(
    deployment_defaults: Mapping[str, Any] | None = None,
    global_layer: Mapping[str, Any] | None = None,
    namespace_layer: Mapping[str, Any] | None = None,
    env_layer: Mapping[str, Any] | None = None,
) -> dict[str, SettingSource]:
    """Which layer gives each key its value in :func:`merge_settings` (same arguments), so an
    admin can see what to change where; ``default`` is conda-store's built-in value."""
    sources: dict[str, SettingSource] = dict.fromkeys(SETTING_KEYS, "default")
    for source, layer in _layers(deployment_defaults, global_layer, namespace_layer, env_layer):
        sources.update(dict.fromkeys(layer, source))
    return sources


def makes_image(settings: ResolvedSettings) -> bool:
    """Whether a build gets an OCI image: ``build_artifacts`` lists ``DOCKER_MANIFEST``."""
    return BuildArtifactType.DOCKER_MANIFEST.value in settings.build_artifacts


def _known(layer: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in layer.items() if k in RuntimeSettings.model_fields}
